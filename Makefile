# Entry points for a fresh machine; each target installs what it needs first.
.PHONY: demo stack test test-deploy test-fast lint bootstrap lock lock-upgrade

bootstrap:
	@infra/bootstrap.sh

## Run the whole pipeline here and watch its heat in the terminal (Ctrl-C stops it);
## e.g. make demo DEMO_ARGS="--replay data/binance-5m" for the real January 2018 bars.
demo: bootstrap
	.venv/bin/heat demo $(DEMO_ARGS)

## Start the local stack (Kafka KRaft + PostgreSQL), migrate the database, show its status.
stack: bootstrap
	.venv/bin/heat stack up
	eval "$$(.venv/bin/heat stack env)" && .venv/bin/heat db migrate
	.venv/bin/heat stack status

## The lock matches pyproject.toml, lint, import layers, types, then the whole test suite
## (unit + integration against real services), slowest tests listed at the end.
test: lint
	.venv/bin/python -m pytest -p no:cacheprovider -n 2 --dist loadfile --durations=15

## docker-compose.yml started for real (stand-in images built here, as no registry may be
## reachable): health, frames in TimescaleDB, failover, restarts, scaling, a three-broker
## Kafka losing a broker. Needs root (it starts dockerd when none runs).
test-deploy: bootstrap
	infra/docker-tools.sh
	.venv/bin/python -m pytest -p no:cacheprovider tests/deploy --durations=0

## The unit tier alone (no services), for the edit-test loop.
test-fast: bootstrap
	.venv/bin/python -m pytest -p no:cacheprovider -n 2 -m "unit and not slow" tests/unit

lint: bootstrap
	infra/lock.sh check
	.venv/bin/ruff check src tests benchmarks
	.venv/bin/lint-imports
	.venv/bin/mypy

## Re-lock after editing pyproject.toml's dependencies (other pins stay); commit uv.lock
## and requirements/. lock-upgrade moves every pin to the newest release.
lock:
	infra/lock.sh update

lock-upgrade:
	infra/lock.sh upgrade
