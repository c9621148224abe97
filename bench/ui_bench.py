"""One side of the UI benchmark: the same Engine headless, or with the terminal UI open.

``python bench/ui_bench.py headless|ui DSN SLOT URL ROWS PORT`` delivers ROWS rows (already in
the slot) to the bench receiver at URL and prints ``{"rows_per_s": ...}``. With ``ui`` the
Textual app runs headlessly under ``run_test()`` (120x36), polling and rendering as it would
on a terminal, while the engine delivers.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from wal2http_tui.config import load_config
from wal2http_tui.engine import Engine


def delivered(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as answer:
        return json.loads(answer.read())["events"]


def main() -> None:
    mode, dsn, slot, url, rows, port = sys.argv[1:7]
    rows_wanted, port_number = int(rows), int(port)
    path = Path(tempfile.mkdtemp(prefix="wal2http-bench-")) / "wal2http.toml"
    path.write_text(
        f'connection_string = "{dsn}"\nslot_name = "{slot}"\npublication_name = "bench_pub"\n'
        'feedback_interval_secs = 1\n[[event_sinks.http]]\nname = "bench"\nenabled = true\n'
        f'url = "{url}"\nbatch_max_events = 500\n'
    )
    engine = Engine(load_config(path))
    started = time.monotonic()
    if mode == "headless":
        engine.start()
        while delivered(port_number) < rows_wanted:
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        engine.stop()
    else:
        from wal2http_tui.tui.app import Wal2HttpApp

        async def with_ui() -> float:
            app = Wal2HttpApp(engine, path)
            async with app.run_test(size=(120, 36)) as pilot:
                while await asyncio.to_thread(delivered, port_number) < rows_wanted:
                    await pilot.pause(0.1)
                took = time.monotonic() - started
                await pilot.press("q")
            return took

        elapsed = asyncio.run(with_ui())
        engine.stop()
    print(json.dumps({"rows_per_s": rows_wanted / elapsed}))


if __name__ == "__main__":
    main()
