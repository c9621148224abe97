"""``python -m tests.support.reconfigure_loop CONFIG``: the engine the UI drives, with its one
sink's settings changed every 0.2 s (each change replaces the sink's worker live), until killed.

The reliability tests kill it with SIGKILL mid-change and check what PostgreSQL was told.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace

from wal2http_tui.config.loader import load_config
from wal2http_tui.engine.facade import Engine


def main(path: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    engine = Engine(load_config(path), slot_health_interval=60)
    engine.start()
    timeout = 5.0
    while True:
        time.sleep(0.2)
        timeout = 11.0 - timeout
        sink = replace(engine.config.event_sinks[0], timeout=timeout)
        engine.apply(replace(engine.config, event_sinks=(sink,)))


if __name__ == "__main__":
    main(sys.argv[1])
