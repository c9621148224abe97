"""``make screenshots``: pictures of the main screens, taken from the live demo.

``python -m tools.screenshots DIR``, from the repository root, starts the demo (throwaway
PostgreSQL, workload, a reliable and a flaky receiver), runs the UI headlessly at 120x36, lets
traffic, retries and dead letters accumulate, and saves SVGs of the main screen, the inspector,
the dead letters, the slot health, the config editor and the help; with ``rsvg-convert`` on the
PATH, PNGs too.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from wal2http_tui.config.loader import load_config
from wal2http_tui.demo.run import prepare
from wal2http_tui.engine.facade import Engine
from wal2http_tui.tui.app import Wal2HttpApp

SIZE = (120, 36)
WARM_UP_SECONDS = 12.0

# (file name, keys pressed from the main screen, keys that lead back to it)
SHOTS = [
    ("main", [], []),
    ("inspector", ["1", "down", "enter"], ["escape"]),
    ("dead-letters", ["d"], ["escape"]),
    ("slot-health", ["s"], ["escape"]),
    ("config-editor", ["e", "down"], ["escape"]),
    ("help", ["question_mark"], ["escape"]),
    ("start-backfill", ["5", "n"], ["escape"]),
]


async def take(directory: Path) -> list[Path]:
    folder = Path(tempfile.mkdtemp(prefix="wal2http-shots-"))
    setup = prepare(folder, rate=12.0)
    engine = Engine(load_config(setup.config_path))
    saved: list[Path] = []
    try:
        setup.workload.start()
        app = Wal2HttpApp(engine, setup.config_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(WARM_UP_SECONDS)
            for name, keys, back in SHOTS:
                await pilot.press(*keys)
                await pilot.pause(1.0)
                path = directory / f"{name}.svg"
                app.save_screenshot(filename=path.name, path=str(directory))
                saved.append(path)
                await pilot.press(*back)
                await pilot.pause(0.5)
            await pilot.press("q")
            await pilot.pause(1.0)
    finally:
        setup.close(engine)
        shutil.rmtree(folder, ignore_errors=True)
    return saved


def to_png(svgs: list[Path]) -> None:
    converter = shutil.which("rsvg-convert")
    if converter is None:
        print("rsvg-convert not found: SVGs only (install librsvg2-bin for PNGs)")
        return
    for svg in svgs:
        # Textual's SVG leaves whitespace to the renderer's default, under which rsvg collapses
        # it: "1 Transactions" and "480 events/s" came out as "1Transactions", "480events/s",
        # and indented lines lost their indentation. Preserved, the picture is the terminal's.
        text = svg.read_text().replace("<text ", '<text xml:space="preserve" ')
        subprocess.run(
            [converter, "-o", str(svg.with_suffix(".png"))], input=text.encode(), check=True
        )


def main() -> None:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    svgs = asyncio.run(take(directory))
    to_png(svgs)
    for svg in svgs:
        print(svg)


if __name__ == "__main__":
    main()
