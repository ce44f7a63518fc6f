"""A throwaway PostgreSQL cluster run with the Debian server binaries.

PostgreSQL refuses to run as root, so when we are root every server program
runs as an unprivileged OS user and the cluster lives in a directory that
user owns.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from heatmap.stack import tls
from heatmap.stack.kafka import StackError
from heatmap.stack.ports import LOOPBACK
from heatmap.stack.tls import TlsFiles

ADMIN_ROLE = "heat_admin"


@dataclass(frozen=True)
class PostgresClusterConfig:
    """Where the cluster lives and how it is reached.

    Parameters
    ----------
    root : Path
        Cluster directory (``data/``, ``postgres.log``, socket); owned by ``os_user`` when root.
    port : int
        Loopback TCP port.
    bin_dir : Path
        Directory of ``initdb`` and ``pg_ctl``.
    os_user : str or None
        Unprivileged user that runs the server programs (None: the current user).
    fsync : bool
        False only for throwaway test clusters: a killed server still keeps
        every committed row (the OS has it), only an OS crash could lose it.
    database : str
        The application database ``ensure_database`` creates.
    preload_timescaledb : bool or None
        Load TimescaleDB at server start (it must be preloaded to work). None: when
        this PostgreSQL installation has the extension (see ``has_timescaledb``).
    timescaledb_scheduler : bool
        Let TimescaleDB's scheduler run the policies in background workers. False for
        test clusters: tests run each policy in the foreground (``CALL run_job``), and
        a scheduled run of the same refresh at the same moment makes it fail.
    tls : bool
        Serve TLS (``ssl=on``) with a certificate made for the cluster at its first start
        with TLS (:mod:`heatmap.stack.tls`); clients choose whether to use it.
    tls_only : bool
        Take TCP clients over TLS only (``hostssl`` lines in ``pg_hba.conf``, no
        ``host``): a client with ``sslmode=disable`` is refused. Implies ``tls``.
    """

    root: Path
    port: int
    bin_dir: Path
    os_user: str | None
    fsync: bool
    database: str
    preload_timescaledb: bool | None = None
    timescaledb_scheduler: bool = True
    tls: bool = False
    tls_only: bool = False

    @property
    def timescaledb(self) -> bool:
        """Whether the server starts with TimescaleDB preloaded."""
        if self.preload_timescaledb is None:
            return has_timescaledb(self.bin_dir)
        return self.preload_timescaledb

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def tls_files(self) -> TlsFiles:
        return TlsFiles(self.root / "tls")

    @property
    def password_path(self) -> Path:
        return self.root / "admin.password"

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()


def has_timescaledb(bin_dir: Path) -> bool:
    """Whether the PostgreSQL installation of ``bin_dir`` has the TimescaleDB library.

    PostgreSQL finds its libraries in ``lib/`` beside its ``bin/`` (Debian's
    ``/usr/lib/postgresql/15/{bin,lib}`` and copies made the same way).
    """
    return (bin_dir.parent / "lib" / "timescaledb.so").exists()


def cluster_root(state_dir: Path, os_user: str | None) -> Path:
    """The cluster directory for a stack state directory.

    As root, the state directory (often under ``/root``) is not reachable by
    the server's user, so the cluster goes to ``/var/tmp`` under a name
    derived from the state directory.
    """
    if os_user is None:
        return state_dir / "postgres"
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    # A predictable name is fine: _prepare_root refuses a directory someone else made.
    return Path("/var/tmp") / f"heat-postgres-{digest}"  # noqa: S108


def server_os_user(configured: str) -> str | None:
    """The OS user for server programs: ``configured`` when we are root, else None."""
    return configured if os.geteuid() == 0 else None


def _run(config: PostgresClusterConfig, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=config.root, user=config.os_user,
        group=_group_of(config.os_user), extra_groups=[] if config.os_user else None,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
             "HOME": str(config.root)},
    )


def _group_of(user: str | None) -> int | None:
    return pwd.getpwnam(user).pw_gid if user else None


def _prepare_root(config: PostgresClusterConfig) -> None:
    config.root.mkdir(parents=True, exist_ok=True)
    owner = config.root.lstat().st_uid
    if config.os_user:
        entry = pwd.getpwnam(config.os_user)
        if config.root.is_symlink() or owner not in (0, entry.pw_uid):
            raise StackError(f"{config.root} exists and belongs to someone else")
        shutil.chown(config.root, entry.pw_uid, entry.pw_gid)
    os.chmod(config.root, 0o700)


def require_programs(bin_dir: Path) -> None:
    """Fail with what to do when ``bin_dir`` lacks the programs a local cluster needs."""
    for program in ("initdb", "pg_ctl"):
        path = bin_dir / program
        if not path.exists():
            raise StackError(f"{path} not found: install PostgreSQL 15 (apt-get install -y "
                             "postgresql-15) or set HEAT_POSTGRES_BIN_DIR")


def initialize(config: PostgresClusterConfig) -> None:
    """``initdb`` a new cluster with a random password for the admin role."""
    require_programs(config.bin_dir)
    initdb = config.bin_dir / "initdb"
    _prepare_root(config)
    password = secrets.token_urlsafe(24)
    pwfile = config.root / ".initdb-password"
    pwfile.write_text(password + "\n")
    if config.os_user:
        entry = pwd.getpwnam(config.os_user)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    os.chmod(pwfile, 0o600)
    try:
        completed = _run(config, [
            str(initdb), "-D", str(config.data_dir), "-U", ADMIN_ROLE, f"--pwfile={pwfile}",
            "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        ])
    finally:
        pwfile.unlink(missing_ok=True)
    if completed.returncode != 0:
        raise StackError(f"initdb failed:\n{completed.stdout}{completed.stderr}")
    # The password stays readable by the stack's user only (root or the current user).
    config.password_path.parent.mkdir(parents=True, exist_ok=True)
    config.password_path.write_text(password)
    os.chmod(config.password_path, 0o600)
    if config.os_user:
        os.chown(config.password_path, 0, 0)


def _server_options(config: PostgresClusterConfig) -> str:
    options = {
        "port": str(config.port),
        "listen_addresses": LOOPBACK,
        "unix_socket_directories": str(config.root),
        "fsync": "on" if config.fsync else "off",
        "max_connections": "200",
        "shared_buffers": "256MB",
    }
    if config.tls or config.tls_only:
        files = config.tls_files
        options.update({"ssl": "on", "ssl_cert_file": str(files.server_cert),
                        "ssl_key_file": str(files.server_key),
                        "ssl_min_protocol_version": "TLSv1.2"})
    if config.timescaledb:
        options["shared_preload_libraries"] = "timescaledb"
        options["timescaledb.telemetry_level"] = "off"
        # Every policy (compression, retention, rollup refresh) runs as a background
        # worker, several per database at once; the default 8 workers make them fail
        # to start.
        options["timescaledb.max_background_workers"] = (
            "48" if config.timescaledb_scheduler else "0")
        options["max_worker_processes"] = "64"
    return " ".join(f"-c {key}={value}" for key, value in options.items())


def running_port(config: PostgresClusterConfig) -> int | None:
    """The port the running postmaster listens on (line 4 of ``postmaster.pid``)."""
    if pid(config) is None:
        return None
    try:
        return int((config.data_dir / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, ValueError, IndexError):
        return None


def pid(config: PostgresClusterConfig) -> int | None:
    """The postmaster pid when the cluster runs."""
    try:
        first_line = (config.data_dir / "postmaster.pid").read_text().splitlines()[0]
        postmaster = int(first_line)
    except (OSError, ValueError, IndexError):
        return None
    try:
        cmdline = Path(f"/proc/{postmaster}/cmdline").read_bytes()
    except OSError:
        return None
    return postmaster if str(config.data_dir).encode() in cmdline else None


def start(config: PostgresClusterConfig, timeout_s: float) -> int:
    """Start the server (``pg_ctl -w``) and return the postmaster pid."""
    stale_pid_file = config.data_dir / "postmaster.pid"
    if pid(config) is None and stale_pid_file.exists():
        # Left by a crash: the postmaster is gone, so the file only blocks a start.
        stale_pid_file.unlink()
    if config.tls or config.tls_only:
        tls.ensure(config.tls_files, config.os_user)
    write_hba(config)
    completed = _run(config, [
        str(config.bin_dir / "pg_ctl"), "-D", str(config.data_dir), "-l", str(config.log_path),
        "-o", _server_options(config), "-w", "-t", str(int(timeout_s)), "start",
    ])
    postmaster = pid(config)
    if completed.returncode != 0 or postmaster is None:
        log_tail = config.log_path.read_text()[-3000:] if config.log_path.exists() else ""
        raise StackError(f"PostgreSQL did not start:\n{completed.stdout}{completed.stderr}"
                         f"\n{log_tail}")
    return postmaster


def hba_lines(config: PostgresClusterConfig) -> str:
    """The cluster's ``pg_hba.conf``: the server's OS user on the socket (peer), every
    role with a SCRAM password on loopback TCP, over TLS only when ``tls_only``."""
    kind = "hostssl" if config.tls_only else "host"
    return ("# Written by `heat stack up` at every start; edits here are replaced.\n"
            "local    all  all                 peer\n"
            f"{kind:<8} all  all  127.0.0.1/32   scram-sha-256\n"
            f"{kind:<8} all  all  ::1/128        scram-sha-256\n")


def write_hba(config: PostgresClusterConfig) -> bool:
    """Write ``pg_hba.conf`` as :func:`hba_lines` says; True when it changed (a running
    server then needs :func:`reload`). Written in place: it keeps the server user's
    ownership."""
    path = config.data_dir / "pg_hba.conf"
    wanted = hba_lines(config)
    if path.exists() and path.read_text() == wanted:
        return False
    path.write_text(wanted)
    return True


def reload(config: PostgresClusterConfig) -> None:
    """Make the running server read its configuration files again (``pg_ctl reload``)."""
    completed = _run(config, [str(config.bin_dir / "pg_ctl"), "-D", str(config.data_dir),
                              "reload"])
    if completed.returncode != 0:
        raise StackError(f"PostgreSQL did not reload: {completed.stderr.strip()}")


def start_new_or_existing(config: PostgresClusterConfig, timeout_s: float,
                          step: Callable[[str], None] = lambda _: None) -> int:
    """``initdb`` the cluster when new, start it and create its database; the postmaster pid."""
    if not config.is_initialized():
        step("Creating the PostgreSQL cluster (initdb)")
        initialize(config)
    flavour = "PostgreSQL with TimescaleDB" if config.timescaledb else "PostgreSQL"
    step(f"Starting {flavour} on {LOOPBACK}:{config.port}")
    postmaster = start(config, timeout_s)
    ensure_database(config, timeout_s)
    return postmaster


def stop(config: PostgresClusterConfig, timeout_s: float) -> None:
    """Fast shutdown (``pg_ctl -m fast``); immediate mode if that does not finish."""
    if pid(config) is None:
        return
    pg_ctl = str(config.bin_dir / "pg_ctl")
    fast = _run(config, [pg_ctl, "-D", str(config.data_dir), "-m", "fast", "-w",
                         "-t", str(int(timeout_s)), "stop"])
    if fast.returncode != 0 and pid(config) is not None:
        _run(config, [pg_ctl, "-D", str(config.data_dir), "-m", "immediate", "-w", "stop"])


def admin_url(config: PostgresClusterConfig) -> str:
    password = config.password_path.read_text().strip()
    return (f"postgresql://{ADMIN_ROLE}:{quote(password, safe='')}@{LOOPBACK}:{config.port}"
            f"/{config.database}")


def ensure_database(config: PostgresClusterConfig, timeout_s: float) -> None:
    """Create the application database when missing."""
    password = config.password_path.read_text().strip()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(host=LOOPBACK, port=config.port, user=ADMIN_ROLE,
                                 password=password, dbname="postgres", autocommit=True,
                                 connect_timeout=5) as connection:
                exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                            (config.database,)).fetchone()
                if not exists:
                    connection.execute(sql.SQL("CREATE DATABASE {}").format(
                        sql.Identifier(config.database)))
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def is_healthy(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as connection:
            return connection.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False
