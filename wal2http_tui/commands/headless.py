"""``run --headless``: the engine without a screen, for production.

One log line per state change, failure and retry. SIGTERM or SIGINT: stop reading, let sinks
finish in-flight deliveries (bounded), send the final confirmation, exit 0. SIGHUP: reload the
configuration file (``reload_config``). The control socket (``control_socket``) lets
``wal2http-tui attach`` drive it from a terminal. The exit status
says how it ended (``exit_codes``): 0 stopped when asked, 1 stopped on an error (the last log
line says which), 2 refused to start (the configuration or the database set-up must change).
"""

from __future__ import annotations

import logging
import signal
import threading

from wal2http_tui.commands.exit_codes import EXIT_CONFIG_ERROR, EXIT_FAILURE, EXIT_OK
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.loader import load_config
from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.config.secrets import mask_conninfo
from wal2http_tui.delivery.dead_letters import DeadLetterError
from wal2http_tui.engine.control_protocol import ControlError
from wal2http_tui.engine.control_socket import ControlServer, socket_path
from wal2http_tui.engine.facade import Engine
from wal2http_tui.replication.positions import PositionError
from wal2http_tui.replication.stream import DRAIN_TIMEOUT

log = logging.getLogger("wal2http_tui")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)


def run_headless(
    config: ReplicationConfig, drain_timeout: float = DRAIN_TIMEOUT, *, accept_gap: bool = False
) -> int:
    """``accept_gap``: start even where changes are missing (the gap is recorded)."""
    for warning in config.warnings:
        log.warning("%s", warning)
    try:
        engine = Engine(config, drain_timeout=drain_timeout, accept_gap=accept_gap)
    except (DeadLetterError, PositionError) as exc:
        log.error("not started: %s", exc)
        return EXIT_CONFIG_ERROR
    stop = threading.Event()
    reload = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    def on_hangup(signum: int, frame: object) -> None:
        reload.set()
        stop.set()  # wakes the loop below, which tells the two apart

    handlers = {signal.SIGTERM: on_signal, signal.SIGINT: on_signal, signal.SIGHUP: on_hangup}
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    control: ControlServer | None = None
    try:
        log.info(
            "starting: %s, slot %s, publication %s, %d sink(s)",
            mask_conninfo(config.connection_string),
            config.slot_name,
            config.publication_name,
            len(config.enabled_sinks),
        )
        engine.start()  # and, with metrics_listen, /metrics, /healthz and /readyz
        control = serve_control(engine)
        while engine.server.running:
            stop.wait(0.5)
            if reload.is_set():
                reload.clear()
                stop.clear()
                reload_config(engine)
            elif stop.is_set():
                break
        engine.stop()
    finally:
        if control is not None:
            control.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    server = engine.server
    if server.fatal_error:  # refused to start: the set-up or the configuration must change
        log.error("not started: %s", server.fatal_error)
        return EXIT_CONFIG_ERROR
    if server.crash_error:
        log.error("stopped on an error: %s", server.crash_error)
        return EXIT_FAILURE
    return EXIT_OK


def serve_control(engine: Engine) -> ControlServer | None:
    """Listen on the control socket for ``wal2http-tui attach``. A socket that cannot be made
    is an error in the log, and the engine goes on without one."""
    path = socket_path(engine.config)
    try:
        control = ControlServer(engine, path)
    except (ControlError, OSError) as exc:
        log.error("no control socket, `wal2http-tui attach` cannot reach this engine: %s", exc)
        return None
    control.start()
    log.info("control socket %s: attach with `wal2http-tui attach --socket %s`", path, path)
    return control


def reload_config(engine: Engine) -> None:
    """SIGHUP: read the configuration file again and apply it as the editor's apply does
    (sinks live; a connection, slot or publication change restarts the worker). A file that
    does not validate is logged with its file, line and key, and the running one stays."""
    path = engine.config.source_path
    if path is None:
        log.error("received SIGHUP: the configuration was not read from a file, nothing to reload")
        return
    log.info("received SIGHUP: reading %s again", path)
    try:
        new = load_config(path)
        engine.apply(new)
    except (ConfigError, ValueError, RuntimeError) as exc:
        log.error("configuration not reloaded, the running one stays: %s", exc)
        return
    for warning in new.warnings:
        log.warning("%s", warning)
    log.info("configuration reloaded: %d sink(s) enabled", len(new.enabled_sinks))
