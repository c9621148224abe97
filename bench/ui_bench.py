"""One side of the UI benchmark: the same Engine headless, or with the terminal UI open.

``python bench/ui_bench.py headless|hosted_headless|ui|keys|attached DSN SLOT URL ROWS PORT``
delivers ROWS
rows (already in the slot) to the bench receiver at URL and prints ``{"rows_per_s": ...}``.
With ``ui`` the Textual app runs headlessly under ``run_test()`` (120x36), polling and rendering
as it would on a terminal, with its engine in a child process as ``wal2http-tui run`` starts it
(engine/child.py), while the engine delivers; ``keys`` also presses a pane key four
times a second and reports how long each took to be handled. With ``attached`` the engine
serves its control socket, as ``run --headless`` does, and the UI runs in a process of its own
attached to it (``python bench/ui_bench.py _attach SOCKET``), as ``wal2http-tui attach`` does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from wal2http_tui.config.loader import load_config
from wal2http_tui.engine.control_socket import ControlServer
from wal2http_tui.engine.facade import Engine


def delivered(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as answer:
        return json.loads(answer.read())["events"]


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def attached_ui(socket: str) -> None:
    """The UI of ``wal2http-tui attach``, polling and rendering until its parent kills it."""
    from wal2http_tui.engine.remote import RemoteEngine, yield_cpu_to_the_engine
    from wal2http_tui.tui.app import Wal2HttpApp

    yield_cpu_to_the_engine()  # as `wal2http-tui attach` does

    async def run() -> None:
        app = Wal2HttpApp(RemoteEngine(Path(socket)), Path(socket).with_suffix(".toml"))
        async with app.run_test(size=(120, 36)) as pilot:
            print("attached", flush=True)
            while True:
                await pilot.pause(0.1)

    asyncio.run(run())


class Window:
    """Throughput in steady state: from the first count past a tenth of the rows to the last
    (the start-up of an engine, in this process or a child, is not what is compared)."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.first: tuple[float, int] | None = None
        self.last: tuple[float, int] = (0.0, 0)

    def observe(self, count: int) -> bool:
        """Note a count; True once every row has arrived."""
        now = time.monotonic()
        if self.first is None and count >= self.rows // 10:
            self.first = (now, count)
        self.last = (now, count)
        return count >= self.rows

    @property
    def elapsed(self) -> float:
        assert self.first is not None
        return self.last[0] - self.first[0]

    @property
    def rate(self) -> float:
        assert self.first is not None
        return (self.last[1] - self.first[1]) / self.elapsed


def main() -> None:
    if sys.argv[1] == "_attach":
        attached_ui(sys.argv[2])
        return
    mode, dsn, slot, url, rows, port = sys.argv[1:7]
    rows_wanted, port_number = int(rows), int(port)
    folder = Path(tempfile.mkdtemp(prefix="wal2http-bench-ui-"))
    path = folder / "wal2http.toml"
    path.write_text(
        f'connection_string = "{dsn}"\nslot_name = "{slot}"\npublication_name = "bench_pub"\n'
        'feedback_interval_secs = 1\n[[event_sinks.http]]\nname = "bench"\nenabled = true\n'
        f'url = "{url}"\nbatch_max_events = 500\n'
    )
    result: dict[str, float] = {}
    window = Window(rows_wanted)
    if mode in ("headless", "attached"):
        engine = Engine(load_config(path))
        control = ui = None
        if mode == "attached":
            control = ControlServer(engine, folder / "wal2http.sock")
            control.start()
            ui = subprocess.Popen(
                [sys.executable, __file__, "_attach", str(control.path)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert ui.stdout is not None and ui.stdout.readline() == "attached\n"
            ui_cpu_before = process_cpu_seconds(ui.pid)  # not its start-up: the measured run
        engine.start()
        while not window.observe(delivered(port_number)):
            time.sleep(0.05)
        if ui is not None and control is not None:
            result["ui_cpu_s"] = process_cpu_seconds(ui.pid) - ui_cpu_before
            ui.kill()
            ui.wait()
            control.stop()
            result["serving_cpu_s"] = control.cpu_seconds
            result["elapsed_s"] = window.elapsed
        engine.stop()
    else:  # hosted_headless, ui, keys: the engine in a child, as `wal2http-tui run` starts it
        from textual import events

        from wal2http_tui.cli import hosted_engine
        from wal2http_tui.tui.app import Wal2HttpApp

        keypress_ms: list[float] = []
        hosted = hosted_engine(path, read_only=False, accept_gap=False)

        async def with_ui() -> None:
            app = Wal2HttpApp(hosted, path)
            async with app.run_test(size=(120, 36)) as pilot:
                screen = app.screen
                pane = 2
                while not window.observe(await asyncio.to_thread(delivered, port_number)):
                    if mode == "keys":
                        # A key as the terminal driver delivers it, timed until its handler has
                        # run (Pilot.press would also wait for the whole process to go idle).
                        pressed = time.monotonic()
                        app._driver.send_message(events.Key(str(pane), str(pane)))
                        while screen.active_pane != pane:
                            await asyncio.sleep(0.001)
                        keypress_ms.append((time.monotonic() - pressed) * 1000)
                        pane = 3 - pane
                    await pilot.pause(0.25 if mode == "keys" else 0.1)
                await pilot.press("q")  # quitting stops the engine

        if mode == "hosted_headless":
            while not window.observe(delivered(port_number)):
                time.sleep(0.05)
            hosted.stop()
        else:
            asyncio.run(with_ui())
            result["keypress_max_ms"] = max(keypress_ms, default=0.0)
            result["keypress_p50_ms"] = (
                sorted(keypress_ms)[len(keypress_ms) // 2] if keypress_ms else 0
            )
    result["rows_per_s"] = window.rate
    shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
