"""The configuration reference: one source for the README's tables and the editor's help line,
and every key the loader accepts is in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.config_reference import with_tables
from wal2http_tui.config.model import HOOK0_SINK_KEYS, HTTP_SINK_KEYS, ROOT_KEYS
from wal2http_tui.config.reference import first_sentence, key_help, plain

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_tables_are_the_reference():
    text = README.read_text()
    assert with_tables(text) == text, "run `python -m tools.config_reference`"


@pytest.mark.parametrize(
    ("kind", "keys"),
    [
        (None, [key for key in ROOT_KEYS if key != "event_sinks"]),
        ("http", list(HTTP_SINK_KEYS)),
        ("hook0", list(HOOK0_SINK_KEYS)),
    ],
)
def test_every_key_has_a_meaning(kind, keys):
    assert [key for key in keys if not key_help(kind, key)] == []


def test_the_help_is_the_first_sentence_in_plain_text():
    assert key_help(None, "connection_string") == "libpq key=value string or postgresql:// URI."
    assert key_help("hook0", "timeout") == key_help("http", "timeout")
    assert plain("see [Routing](#routing) and `x`") == "see Routing and x"
    assert first_sentence("e.g. `a`. Then b.") == "e.g. `a`."
