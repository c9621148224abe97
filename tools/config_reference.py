"""``python -m tools.config_reference``: write the README's configuration reference tables from
``wal2http_tui/config/reference.py`` (the source the configuration editor's help reads too)."""

from __future__ import annotations

from pathlib import Path

from wal2http_tui.config.reference import README_TABLES, readme_table

README = Path(__file__).resolve().parent.parent / "README.md"


def with_tables(text: str) -> str:
    """``text`` (the README) with each reference table replaced by the generated one."""
    lines = text.split("\n")
    for heading, docs in README_TABLES.items():
        start = next(n for n, line in enumerate(lines) if line.startswith(heading))
        first = next(n for n in range(start, len(lines)) if lines[n].startswith("| Key |"))
        last = first
        while last < len(lines) and lines[last].startswith("|"):
            last += 1
        lines[first:last] = readme_table(docs).split("\n")
    return "\n".join(lines)


if __name__ == "__main__":
    README.write_text(with_tables(README.read_text()))
