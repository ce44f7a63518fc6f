"""The deployment test: ``docker-compose.yml`` started for real (``make test-deploy``).

A Docker engine (started here when none runs), stand-in images for the third-party
images (no registry is reachable), the project's images built on them, and the stack up
under a project name of its own; ``down -v`` at the end. Nothing here skips: a machine
that cannot run containers fails these tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from heatmap.stack.settings import StackSettings
from support.compose_stack import ComposeStack, start_stack
from support.docker_images import DockerEngine, DockerUnavailableError, build_standins, scratch_dir

STATE_DIR = Path(os.environ.get("HEAT_DEPLOY_STATE_DIR", "/var/tmp/heat-deploy-test"))


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    try:
        engine = DockerEngine.ensure(STATE_DIR / "docker")
    except DockerUnavailableError as error:
        pytest.fail(f"Docker is needed for the deployment test: {error}")
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def standin_images(docker_engine: DockerEngine) -> dict[str, str]:
    bin_dir = os.environ.get("HEAT_TIMESCALEDB_BIN_DIR")
    if not bin_dir:
        pytest.fail("set HEAT_TIMESCALEDB_BIN_DIR to the TimescaleDB build's bin directory "
                    "(its install.sh prints it): the TimescaleDB stand-in image needs it")
    try:
        return build_standins(scratch_dir(STATE_DIR / "build"), Path(bin_dir),
                              StackSettings().cache_dir)
    except DockerUnavailableError as error:
        pytest.fail(f"the stand-in images could not be built: {error}")


@pytest.fixture(scope="module")
def compose(standin_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ComposeStack]:
    stack = start_stack("heat-deploy-test", standin_images, ("docker-compose.yml",),
                        tmp_path_factory.mktemp("compose"))
    yield stack
    stack.run("down", "-v", "--remove-orphans", check=False)
