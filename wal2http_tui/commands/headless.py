"""``run --headless``: the engine without a screen, for production.

One log line per state change, failure and retry. SIGTERM or SIGINT: stop reading, let sinks
finish in-flight deliveries (bounded), send the final confirmation, exit 0. The exit status
says how it ended (``exit_codes``): 0 stopped when asked, 1 stopped on an error (the last log
line says which), 2 refused to start (the configuration or the database set-up must change).
"""

from __future__ import annotations

import logging
import signal
import threading

from wal2http_tui.commands.exit_codes import EXIT_CONFIG_ERROR, EXIT_FAILURE, EXIT_OK
from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.config.secrets import mask_conninfo
from wal2http_tui.delivery.dead_letters import DeadLetterError
from wal2http_tui.engine.server import ReplicationServer
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
        server = ReplicationServer.from_config(
            config, drain_timeout=drain_timeout, accept_gap=accept_gap
        )
    except (DeadLetterError, PositionError) as exc:
        log.error("not started: %s", exc)
        return EXIT_CONFIG_ERROR
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info(
            "starting: %s, slot %s, publication %s, %d sink(s)",
            mask_conninfo(config.connection_string),
            config.slot_name,
            config.publication_name,
            len(config.enabled_sinks),
        )
        server.start()
        while not stop.is_set() and server.running:
            stop.wait(0.5)
        server.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if server.fatal_error:  # refused to start: the set-up or the configuration must change
        log.error("not started: %s", server.fatal_error)
        return EXIT_CONFIG_ERROR
    if server.crash_error:
        log.error("stopped on an error: %s", server.crash_error)
        return EXIT_FAILURE
    return EXIT_OK
