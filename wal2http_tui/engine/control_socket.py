"""The control socket of ``run --headless``: where ``wal2http-tui attach`` drives the engine.

A Unix domain socket, by default ``$XDG_RUNTIME_DIR/wal2http-tui/<slot>.sock`` (without
``XDG_RUNTIME_DIR``: ``.wal2http-tui/<slot>.sock`` next to the configuration file), or
``control_socket``. Who may use it:

- the socket is mode 0600 in a directory of mode 0700, both the engine's user's: no other user
  reaches it through the file system;
- each connection's peer credentials (``SO_PEERCRED``) are checked as well: a process of another
  uid is refused with a message, and the refusal is logged.

A socket left behind by an engine that was killed is found (nothing answers on it) and replaced;
one that answers belongs to a running engine, and this one goes on without a control socket,
saying so. Each connection gets a thread of its own; messages are those of
``control_protocol``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
import struct
import threading
import time
from pathlib import Path
from typing import Any

from wal2http_tui import __version__
from wal2http_tui.config.env import expand_env
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.loader import parse_config_text, read_config_text
from wal2http_tui.config.model import ReplicationConfig, socket_path_too_long
from wal2http_tui.config.table_reader import resolve_beside
from wal2http_tui.engine.control_protocol import (
    CALLS,
    MAX_LINE,
    PROTOCOL,
    ControlError,
    decode,
    encode,
    error_message,
    structure,
    version_refusal,
)
from wal2http_tui.engine.controls import EngineControls

log = logging.getLogger("wal2http_tui.control")

SOCKET_DIR_NAME = "wal2http-tui"  # under $XDG_RUNTIME_DIR
BESIDE_CONFIG_DIR_NAME = ".wal2http-tui"  # next to the configuration file otherwise
MAX_CLIENTS = 16
HELLO_TIMEOUT = 10.0
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def default_socket_path(
    slot_name: str, config_path: Path | None, environ: dict[str, str] | None = None
) -> Path:
    """Where an engine for ``slot_name`` listens unless ``control_socket`` says otherwise."""
    runtime = (os.environ if environ is None else environ).get("XDG_RUNTIME_DIR")
    if runtime:
        directory = Path(runtime) / SOCKET_DIR_NAME
    else:
        beside = config_path.parent if config_path is not None else Path.cwd()
        directory = beside.absolute() / BESIDE_CONFIG_DIR_NAME
    return directory / f"{slot_name}.sock"


def socket_path(config: ReplicationConfig) -> Path:
    """The control socket of the engine running ``config``."""
    if config.control_socket is not None:
        return config.control_socket
    return default_socket_path(config.slot_name, config.source_path)


def socket_path_of_file(config_path: Path) -> Path:
    """The control socket of the engine running the configuration file at ``config_path``,
    read from its ``control_socket`` and ``slot_name`` alone: the shell that attaches may lack
    the environment variables the rest of the file uses. ``ConfigError`` when unreadable."""
    text = read_config_text(config_path)
    data = parse_config_text(text, config_path)[0].unwrap()
    root = expand_env(
        {key: data[key] for key in ("control_socket", "slot_name") if key in data},
        (),
        os.environ,
        lambda key_path, message: ConfigError(config_path, message, key=str(key_path[0])),
    )
    slot = root.get("slot_name") or ReplicationConfig.slot_name
    configured = root.get("control_socket")
    if isinstance(configured, str) and configured:
        return resolve_beside(config_path, configured)
    return default_socket_path(str(slot), config_path)


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    pid, uid, gid = _PEERCRED.unpack(raw)
    return pid, uid, gid


def _private_directory(directory: Path) -> None:
    """Make ``directory`` (mode 0700, ours), or check that it is; ``ControlError`` otherwise."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid():
        raise ControlError(
            f"{directory} belongs to uid {info.st_uid}, not to this user (uid {os.getuid()}): "
            "set control_socket to a path in a directory of your own"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        directory.chmod(0o700)


def _clear_stale(path: Path) -> None:
    """Remove a socket nothing answers on; ``ControlError`` when an engine answers on it, or
    when ``path`` is something else than a socket (never removed)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ControlError(
            f"{path} exists and is not a socket (not removed): set control_socket to another path"
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        log.info("control socket %s was left by an engine that is gone: replacing it", path)
        path.unlink()
        return
    finally:
        probe.close()
    raise ControlError(
        f"another engine answers on {path}: two engines for slot names alike on one host need "
        "control_socket set to different paths"
    )


class ControlServer:
    """Serves ``engine`` (``EngineControls``) on the Unix socket at ``path``."""

    def __init__(self, engine: EngineControls, path: Path) -> None:
        if problem := socket_path_too_long(path):
            raise ControlError(
                f"the control socket path {problem}: set control_socket to a shorter path"
            )
        self.engine = engine
        self.path = path
        _private_directory(path.parent)
        _clear_stale(path)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(str(path))
            path.chmod(0o600)
            self._listener.listen(MAX_CLIENTS)
        except OSError:
            self._listener.close()
            raise
        self._inode = path.stat().st_ino
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.cpu_seconds = 0.0  # what answering clients has cost this process, in CPU time
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="control-socket", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop listening, close every client's connection, remove the socket."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            clients = list(self._clients)
        for conn in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            if self.path.stat().st_ino == self._inode:  # not a newer engine's socket
                self.path.unlink()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError as exc:
                if self._closed.is_set() or exc.errno == errno.EBADF:
                    return
                log.warning("control socket: accept failed (%s)", exc)
                continue
            with self._lock:
                crowded = len(self._clients) >= MAX_CLIENTS
                if not crowded:
                    self._clients.add(conn)
            if crowded:
                self._refuse(conn, f"already {MAX_CLIENTS} clients attached: detach one first")
                continue
            threading.Thread(
                target=self._serve, args=(conn,), name="control-client", daemon=True
            ).start()

    @staticmethod
    def _refuse(conn: socket.socket, why: str) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(encode({"refused": why}))
        conn.close()

    def _serve(self, conn: socket.socket) -> None:
        pid = 0
        try:
            pid, uid, _ = peer_credentials(conn)
            if uid != os.getuid():
                log.warning(
                    "control socket: refused pid %d of uid %d (only uid %d may attach)",
                    pid,
                    uid,
                    os.getuid(),
                )
                self._refuse(conn, f"uid {uid} may not control this engine (uid {os.getuid()})")
                return
            with conn, conn.makefile("rb") as reader:
                read_only = self._greet(conn, reader, pid)
                if read_only is None:
                    return
                log.info("control socket: a UI attached (pid %d%s)", pid, ", read-only" * read_only)
                self._answer(conn, reader, pid, read_only)
                log.info("control socket: the UI of pid %d detached", pid)
        except (OSError, ControlError) as exc:
            if not self._closed.is_set():
                log.info("control socket: the connection of pid %d ended (%s)", pid, exc)
        finally:
            with self._lock:
                self._clients.discard(conn)

    def _greet(self, conn: socket.socket, reader: Any, pid: int) -> bool | None:
        """Read the client's hello and answer it: whether it is read-only, None if refused.
        A client that says nothing for ``HELLO_TIMEOUT`` seconds is dropped (it would hold one
        of the ``MAX_CLIENTS`` places)."""
        conn.settimeout(HELLO_TIMEOUT)
        hello = decode(reader.readline(MAX_LINE))
        conn.settimeout(None)
        refusal = version_refusal(PROTOCOL, hello.get("protocol"), "engine")
        if refusal is not None:
            log.warning("control socket: refused pid %d (%s)", pid, refusal)
            conn.sendall(encode({"refused": refusal}))
            return None
        read_only = bool(hello.get("read_only"))
        config = self.engine.config
        source = config.source_path
        conn.sendall(
            encode(
                {
                    "protocol": PROTOCOL,
                    "engine": f"wal2http-tui {__version__}",
                    "pid": os.getpid(),
                    "config_path": str(source) if source is not None else None,
                    "slot": config.slot_name,
                    "read_only": read_only,
                }
            )
        )
        return read_only

    def _answer(self, conn: socket.socket, reader: Any, pid: int, read_only: bool) -> None:
        while line := reader.readline(MAX_LINE):
            if not line.endswith(b"\n"):
                raise ControlError(f"a message longer than {MAX_LINE} bytes")
            started = time.thread_time()
            conn.sendall(encode(self._call(decode(line), pid, read_only)))
            spent = time.thread_time() - started
            with self._lock:
                self.cpu_seconds += spent

    def _call(self, request: dict[str, Any], pid: int, read_only: bool) -> dict[str, Any]:
        name = str(request.get("call"))
        call = CALLS.get(name)
        if call is None:
            return {"error": "ValueError", "message": f"no such control: {name!r}"}
        if call.changes and read_only:
            return {
                "error": "PermissionError",
                "message": f"{name}: this UI attached read-only (attach without --read-only)",
            }
        raw = request.get("args", [])
        try:
            args = [structure(value, kind) for value, kind in zip(raw, call.args, strict=True)]
        except Exception as exc:  # cattrs raises exception groups of its own
            return {"error": "ValueError", "message": f"{name}: bad arguments ({exc})"}
        if call.changes:
            shown = ", ".join(str(a) for a in args if isinstance(a, str | int))
            log.info("control socket: %s(%s) asked by pid %d", name, shown, pid)
        try:
            member = getattr(self.engine, name)
            result = member(*args) if callable(member) else member
        except Exception as exc:
            return error_message(exc)
        return {"result": result}
