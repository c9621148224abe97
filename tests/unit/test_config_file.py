"""Editing the configuration file in place: only edited keys change; saves are validated, atomic."""

from __future__ import annotations

import base64
import difflib
import os
import shutil
import stat
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.paths import SAMPLE_CONFIG
from wal2http_tui.config.document import ConfigDocument, SinkEntry
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.loader import load_config

SAMPLE = SAMPLE_CONFIG
SIGNING_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
ENV = {
    "ORDERS_API_TOKEN": "orders-token",
    "ORDERS_SIGNING_SECRET": SIGNING_SECRET,
    "HOOK0_API_KEY": "hook0-key",
}
APP_ID = "3f1c9a52-8d2e-4b7a-9c41-0e5d6f7a8b9c"


@pytest.fixture
def sample(tmp_path) -> Path:
    """A copy of sample.toml, mode 0644, with the CA file it names."""
    path = tmp_path / "wal2http.toml"
    shutil.copy(SAMPLE, path)
    path.chmod(0o644)
    (tmp_path / "internal-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wal2http.toml"
    path.write_text(textwrap.dedent(text))
    path.chmod(0o644)
    return path


def changes(before: str, after: str) -> list[str]:
    """The removed ("- ") and added ("+ ") lines between two texts."""
    diff = difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
    return [line for line in diff if line.startswith(("- ", "+ "))]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --- changing values -----------------------------------------------------------------------------


def test_changing_one_sink_url_changes_only_that_line(sample):
    original = sample.read_text()
    doc = ConfigDocument.open(sample, environ=ENV)

    doc.set(("event_sinks", "http", 1, "url"), "https://audit.example/v2/events")
    config = doc.save()

    assert changes(original, sample.read_text()) == [
        '- url = "https://audit.internal.example:8443/events"\n',
        '+ url = "https://audit.example/v2/events"\n',
    ]
    assert config.event_sinks[1].url == "https://audit.example/v2/events"
    assert load_config(sample, environ=ENV) == config


def test_a_comment_after_the_value_is_kept(sample):
    doc = ConfigDocument.open(sample, environ=ENV)
    doc.set(("event_sinks", "http", 0, "timeout"), 2.5)
    assert changes(doc.original_text, doc.text) == [
        "- timeout = 10                                 # seconds per request\n",
        "+ timeout = 2.5                                 # seconds per request\n",
    ]


def test_single_table_inline_table_and_legacy_table_paths(tmp_path):
    hook0 = f'hook0 = {{ api_url = "https://h.example/api/v1", application_id = "{APP_ID}" }}\n'
    path = write(
        tmp_path,
        "connection_string = 'host=db'\n"
        "[http]\n"
        "url = 'https://legacy.example'  # old\n"
        "[event_sinks]\n"
        f"{hook0}"
        "[event_sinks.http]\n"
        'url = "https://single.example"\n',
    )
    doc = ConfigDocument.open(path)

    doc.set(("http", "url"), "https://legacy2.example")
    doc.set(("event_sinks", "hook0", "enabled"), True)
    doc.set(("event_sinks", "http", 0, "retries"), 1)
    doc.set(("event_sinks", "http", "url"), "https://single2.example")

    assert doc.text == (
        "connection_string = 'host=db'\n"
        "[http]\n"
        "url = 'https://legacy2.example'  # old\n"
        "[event_sinks]\n"
        f"{hook0.replace(' }', ', enabled = true }')}"
        "[event_sinks.http]\n"
        'url = "https://single2.example"\n'
        "retries = 1\n"
    )
    assert doc.get(("event_sinks", "http", 0, "url")) == "https://single2.example"


def test_a_new_key_goes_after_the_last_key_of_its_table(tmp_path):
    path = write(
        tmp_path,
        """\
        # top comment
        connection_string = "host=db"

        [[event_sinks.http]]
          url = "https://a.example"
          # a commented-out key stays with its table

        # about the second sink
        [[event_sinks.http]]
        url = "https://b.example"
        """,
    )
    doc = ConfigDocument.open(path)

    doc.set(("event_sinks", "http", 0, "enabled"), True)
    doc.set(("slot_name",), "slot_2")
    doc.set(("event_sinks", "http", 1, "headers", "X-Team"), "data")

    assert doc.text == textwrap.dedent(
        """\
        # top comment
        connection_string = "host=db"
        slot_name = "slot_2"

        [[event_sinks.http]]
          url = "https://a.example"
          enabled = true
          # a commented-out key stays with its table

        # about the second sink
        [[event_sinks.http]]
        url = "https://b.example"
        headers = { X-Team = "data" }
        """
    )


def test_keys_of_tables_without_a_header(tmp_path):
    path = write(
        tmp_path,
        """\
        # header comment

        # the sinks
        [event_sinks.http]
        url = "https://a.example"
        """,
    )
    doc = ConfigDocument.open(path)

    doc.set(("connection_string",), "host=db")
    doc.set(("event_sinks", "hook0", "name"), "h")

    assert doc.text == textwrap.dedent(
        """\
        # header comment

        connection_string = "host=db"

        # the sinks
        [event_sinks.http]
        url = "https://a.example"

        [event_sinks]
        hook0 = { name = "h" }
        """
    )


def test_keys_of_tables_made_by_dotted_keys(tmp_path):
    path = write(
        tmp_path,
        """\
        connection_string = "host=db"
        event_sinks.http.url = "https://a.example"  # dotted

        [other]
        """,
    )
    doc = ConfigDocument.open(path)

    doc.set(("event_sinks", "http", "enabled"), True)
    doc.set(("event_sinks", "hook0", "name"), "h")

    assert doc.text == textwrap.dedent(
        """\
        connection_string = "host=db"
        event_sinks.http.url = "https://a.example"  # dotted
        event_sinks.http.enabled = true
        event_sinks.hook0 = { name = "h" }

        [other]
        """
    )


def test_setting_a_whole_table_edits_its_keys(tmp_path):
    path = write(
        tmp_path,
        """\
        connection_string = "host=db"
        [[event_sinks.http]]
        url = "https://a.example"  # kept comment
        retries = 3  # removed with its key

        [[event_sinks.http]]
        url = "https://b.example"
        """,
    )
    doc = ConfigDocument.open(path)

    doc.set(("event_sinks", "http", 0), {"url": "https://c.example", "enabled": True})

    assert doc.text == textwrap.dedent(
        """\
        connection_string = "host=db"
        [[event_sinks.http]]
        url = "https://c.example"  # kept comment
        enabled = true

        [[event_sinks.http]]
        url = "https://b.example"
        """
    )


def test_edits_that_do_not_fit_the_file_are_refused(sample):
    doc = ConfigDocument.open(sample, environ=ENV)
    with pytest.raises(ValueError, match="slot_name is not a table"):
        doc.set(("slot_name", "x"), 1)
    with pytest.raises(KeyError, match=r"event_sinks\.http\[5\] does not exist"):
        doc.set(("event_sinks", "http", 5, "url"), "https://x.example")
    with pytest.raises(ValueError, match=r"event_sinks\.http is written as tables"):
        doc.set(("event_sinks", "http"), ["https://x.example"])
    with pytest.raises(TypeError, match="cannot write a set to TOML"):
        doc.set(("slot_name",), {"a"})
    assert not doc.modified


def test_keys_inside_inline_tables(tmp_path):
    path = write(
        tmp_path,
        """\
        connection_string = "host=db"
        [event_sinks]
        http = { url = "https://a.example", headers = { X-A = "1", X-B = "2" } }  # inline
        """,
    )
    doc = ConfigDocument.open(path)

    doc.set(("event_sinks", "http", "headers", "X-A"), "one")
    assert doc.text.splitlines()[2] == (
        'http = { url = "https://a.example", headers = { X-A = "one", X-B = "2" } }  # inline'
    )
    doc.delete(("event_sinks", "http", "headers", "X-B"))
    doc.set(("event_sinks", "http", "enabled"), True)
    assert doc.text.splitlines()[2] == (
        'http = { url = "https://a.example", headers = { X-A = "one" }, enabled = true }  # inline'
    )


def test_delete_and_set_none_remove_the_key_line(sample):
    doc = ConfigDocument.open(sample, environ=ENV)
    doc.delete(("tables",))
    doc.set(("event_sinks", "hook0", "organization_id"), None)
    assert changes(doc.original_text, doc.text) == [
        '- tables = ["public.orders", "public.customers"]\n',
        '- organization_id = "8b0e4f1d-2c6a-4e9b-a7d3-5f1e2c3b4a59" # informational (alias '
        "workspace_id)\n",
    ]
    assert doc.validate().tables is None
    with pytest.raises(KeyError):
        doc.delete(("tables",))


def test_get(sample):
    doc = ConfigDocument.open(sample, environ=ENV)
    assert doc.get(("event_sinks", "hook0", "api_key")) == "${HOOK0_API_KEY}"
    assert doc.get(("event_sinks", "hook0", 0, "labels")) == {
        "source": "wal2http",
        "env": "production",
    }
    assert doc.get(("event_sinks", "http", 1, "name")) == "audit"
    assert doc.get(("event_sinks", "http", 2, "name"), "none") == "none"
    with pytest.raises(KeyError, match=r"event_sinks\.http\[0\]\.nope"):
        doc.get(("event_sinks", "http", 0, "nope"))


def test_a_literal_string_stays_literal_when_it_can(tmp_path):
    path = write(tmp_path, "connection_string = 'host=db'\nslot_name = 'a'\n")
    doc = ConfigDocument.open(path)
    doc.set(("slot_name",), "b")
    doc.set(("connection_string",), "host=it's")
    assert doc.text == "connection_string = \"host=it's\"\nslot_name = 'b'\n"


@given(value=st.text())
def test_any_string_is_written_on_one_line_and_read_back(value):
    text = 'connection_string = "host=db"\n# note\nslot_name = "s"  # slot\n'
    doc = ConfigDocument("wal2http.toml", text)
    doc.set(("slot_name",), value)
    assert doc.get(("slot_name",)) == value
    before, after = text.split("\n"), doc.text.split("\n")
    assert (len(after), after[:2], after[2].endswith("  # slot")) == (4, before[:2], True)


def test_line_endings_are_kept(tmp_path):
    path = tmp_path / "wal2http.toml"
    path.write_bytes(
        b'connection_string = "host=db"\r\n[event_sinks.http]\r\nurl = "https://a"\r\n'
    )
    doc = ConfigDocument.open(path)
    doc.set(("event_sinks", "http", "enabled"), True)
    doc.save()
    assert path.read_bytes() == (
        b'connection_string = "host=db"\r\n[event_sinks.http]\r\nurl = "https://a"\r\n'
        b"enabled = true\r\n"
    )


# --- sinks ---------------------------------------------------------------------------------------


def test_sinks_lists_every_layout(tmp_path):
    path = write(
        tmp_path,
        """\
        connection_string = "host=db"
        [http]
        url = "https://legacy.example"
        [event_sinks]
        hook0 = [{ name = "h", enabled = true }, { enabled = false }]
        [[event_sinks.http]]
        url = "https://a.example"
        [[event_sinks.http]]
        url = "https://b.example"
        enabled = true
        """,
    )
    assert ConfigDocument.open(path).sinks() == [
        SinkEntry("http", 0, "http", True, ("http",)),
        SinkEntry("hook0", 0, "h", True, ("event_sinks", "hook0", 0)),
        SinkEntry("hook0", 1, "hook0", False, ("event_sinks", "hook0", 1)),
        SinkEntry("http", 0, "http-2", False, ("event_sinks", "http", 0)),
        SinkEntry("http", 1, "http-3", True, ("event_sinks", "http", 1)),
    ]


def test_add_sink_to_an_array_of_tables(sample):
    original = sample.read_text()
    doc = ConfigDocument.open(sample, environ=ENV)

    name = doc.add_sink("http", {"url": "https://new.example/hook", "enabled": True, "retries": 1})
    config = doc.save()

    assert name == "http"
    end_of_audit = 'ca_file = "internal-ca.pem"  # PEM certificates that verify the server\n'
    added = (
        '\n[[event_sinks.http]]\nname = "http"\nenabled = true\nurl = "https://new.example/hook"\n'
    )
    assert sample.read_text() == original.replace(
        end_of_audit, end_of_audit + added + "retries = 1\n"
    )
    assert [(s.name, s.url, s.retries) for s in config.event_sinks[:3]] == [
        ("orders-api", "https://orders.example.com/webhooks/postgres", 5),
        ("audit", "https://audit.internal.example:8443/events", 5),
        ("http", "https://new.example/hook", 1),
    ]


def test_add_sink_turns_a_single_table_into_an_array(sample):
    original = sample.read_text()
    doc = ConfigDocument.open(sample, environ=ENV)

    name = doc.add_sink(
        "hook0",
        {
            "api_url": "https://app.hook0.com/api/v1",
            "api_key": "${HOOK0_API_KEY}",
            "application_id": APP_ID,
        },
    )
    doc.save()

    assert name == "hook0-2"
    assert changes(original, sample.read_text()) == [
        "- [event_sinks.hook0]\n",
        "+ [[event_sinks.hook0]]\n",
        "+ [[event_sinks.hook0]]\n",
        '+ name = "hook0-2"\n',
        '+ api_url = "https://app.hook0.com/api/v1"\n',
        '+ api_key = "${HOOK0_API_KEY}"\n',
        f'+ application_id = "{APP_ID}"\n',
        "+ \n",
    ]
    assert [s.name for s in load_config(sample, environ=ENV).event_sinks] == [
        "orders-api",
        "audit",
        "hook0",
        "hook0-2",
    ]


def test_add_the_first_sink(tmp_path):
    path = write(tmp_path, '# no sinks yet\nconnection_string = "host=db"\n')
    doc = ConfigDocument.open(path)
    doc.add_sink("http", {"url": "https://a.example", "name": "first"})
    assert doc.text == (
        '# no sinks yet\nconnection_string = "host=db"\n\n'
        '[event_sinks.http]\nname = "first"\nurl = "https://a.example"\n'
    )
    assert doc.validate().event_sinks[0].name == "first"


def test_add_sink_to_the_inline_form(tmp_path):
    path = write(
        tmp_path,
        """\
        connection_string = "host=db"
        [event_sinks]
        http = { url = "https://a.example", enabled = true }
        """,
    )
    doc = ConfigDocument.open(path)
    doc.add_sink("http", {"url": "https://b.example"})
    assert doc.text.splitlines()[2] == (
        'http = [{ url = "https://a.example", enabled = true }, '
        '{ name = "http-2", url = "https://b.example" }]'
    )
    assert [s.name for s in doc.validate().event_sinks] == ["http", "http-2"]


def test_add_sink_refuses_a_taken_name_or_an_unknown_kind(sample):
    doc = ConfigDocument.open(sample, environ=ENV)
    with pytest.raises(ValueError, match='a sink named "audit" already exists'):
        doc.add_sink("http", {"name": "audit", "url": "https://x.example"})
    with pytest.raises(ValueError, match="unknown sink kind 'kafka'"):
        doc.add_sink("kafka", {})
    assert not doc.modified


def test_remove_sink_removes_its_block_and_the_comment_above_it(sample):
    original = sample.read_text()
    doc = ConfigDocument.open(sample, environ=ENV)

    doc.remove_sink("http", "orders-api")
    doc.save()

    removed = original.split("same way.\n")[1].split("# An internal audit endpoint")[0]
    assert removed.startswith("\n# The orders service:")
    assert sample.read_text() == original.replace(removed, "\n")
    assert [s.name for s in load_config(sample, environ=ENV).event_sinks] == ["audit", "hook0"]


def test_removing_the_last_table_keeps_the_comment_paragraph_after_it(sample):
    original = sample.read_text()
    doc = ConfigDocument.open(sample, environ=ENV)
    doc.remove_sink("hook0", "hook0")
    head, hook0 = original.split("# Hook0 (https://www.hook0.com)")
    tail = hook0[hook0.index("# Files written for earlier versions") :]
    assert doc.text == head + tail


COMMENTED_KEY = """\
connection_string = "host=db"

[[event_sinks.http]]
name = "a"
url = "https://a.example"
# retries = 3

# Hook0
[event_sinks.hook0]
name = "h"
"""


def test_a_comment_line_right_after_a_table_belongs_to_it(tmp_path):
    path = write(tmp_path, COMMENTED_KEY)

    doc = ConfigDocument.open(path)
    doc.add_sink("http", {"name": "b"})
    assert doc.text == COMMENTED_KEY.replace(
        "# retries = 3\n", '# retries = 3\n\n[[event_sinks.http]]\nname = "b"\n'
    )

    doc = ConfigDocument.open(path)
    doc.remove_sink("http", "a")
    assert doc.text == 'connection_string = "host=db"\n\n# Hook0\n[event_sinks.hook0]\nname = "h"\n'


def test_removing_the_table_at_the_end_leaves_no_blank_line_at_the_end(tmp_path):
    doc = ConfigDocument.open(write(tmp_path, COMMENTED_KEY))
    doc.remove_sink("hook0", "h")
    assert doc.text == COMMENTED_KEY.split("\n# Hook0")[0]
    assert doc.text.endswith("# retries = 3\n")


def test_remove_sink_from_inline_forms(tmp_path):
    path = write(
        tmp_path,
        """\
        connection_string = "host=db"
        [event_sinks]
        http = [
          { name = "a", url = "https://a.example" },  # first
          { name = "b", url = "https://b.example" },
        ]
        hook0 = { name = "h", api_url = "https://app.hook0.com/api/v1" }
        """,
    )
    doc = ConfigDocument.open(path)
    doc.remove_sink("http", "a")
    doc.remove_sink("hook0", "h")
    assert doc.text == textwrap.dedent(
        """\
        connection_string = "host=db"
        [event_sinks]
        http = [
          { name = "b", url = "https://b.example" },
        ]
        """
    )
    with pytest.raises(KeyError, match='no http sink named "zzz"'):
        doc.remove_sink("http", "zzz")


# --- saving --------------------------------------------------------------------------------------


def test_an_invalid_value_cannot_be_saved_and_the_file_is_untouched(sample):
    original = sample.read_bytes()
    doc = ConfigDocument.open(sample, environ=ENV)
    doc.set(("event_sinks", "http", 1, "url"), "ftp://audit.example")

    with pytest.raises(ConfigError) as caught:
        doc.save()

    assert str(caught.value) == (
        f'{sample}:84: event_sinks.http[1].url: expected an http:// or https:// URL, got "ftp://audit.example"'
    )
    assert sample.read_bytes() == original
    assert sorted(p.name for p in sample.parent.iterdir()) == ["internal-ca.pem", "wal2http.toml"]
    assert doc.modified


def test_env_references_are_validated_expanded_and_written_unexpanded(sample):
    doc = ConfigDocument.open(sample, environ=ENV)
    doc.set(("event_sinks", "hook0", "api_key"), "${HOOK0_TOKEN}")

    with pytest.raises(ConfigError, match="environment variable HOOK0_TOKEN is not set"):
        doc.save()

    doc.environ = {**ENV, "HOOK0_TOKEN": "expanded-token"}
    config = doc.save()

    assert config.event_sinks[2].api_key == "expanded-token"
    saved = sample.read_text()
    assert 'api_key = "${HOOK0_TOKEN}"' in saved
    assert "expanded-token" not in saved
    assert 'auth_header = "Bearer ${ORDERS_API_TOKEN}"' in saved


def test_save_keeps_the_previous_file_as_bak(sample):
    original = sample.read_bytes()
    doc = ConfigDocument.open(sample, environ=ENV)
    doc.set(("slot_name",), "slot_2")
    doc.save()
    assert Path(f"{sample}.bak").read_bytes() == original

    doc.set(("slot_name",), "slot_3")
    doc.save()
    assert b'slot_name = "slot_2"' in Path(f"{sample}.bak").read_bytes()
    assert b'slot_name = "slot_3"' in sample.read_bytes()
    assert leftovers(sample.parent) == []
    assert not doc.modified


def test_a_literal_secret_makes_the_file_0600(sample):
    doc = ConfigDocument.open(sample, environ=ENV)
    doc.set(("event_sinks", "hook0", "api_key"), "literal-hook0-key")
    doc.save()
    assert stat.S_IMODE(sample.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{sample}.bak").stat().st_mode) == 0o600


def test_secrets_as_env_references_keep_the_file_mode(sample):
    doc = ConfigDocument.open(sample, environ=ENV)
    doc.set(("slot_name",), "slot_2")
    doc.save()
    assert stat.S_IMODE(sample.stat().st_mode) == 0o644


@pytest.mark.parametrize(
    "edit",
    [
        (("connection_string",), "host=db password=literal"),
        (("connection_string",), "postgresql://u:literal@db/shop"),
        (("event_sinks", "http", 0, "auth_header"), "Bearer literal"),
        (("event_sinks", "http", 0, "signing_secret"), SIGNING_SECRET),
        (("event_sinks", "http", 0, "headers", "X-Api-Key"), "literal"),
    ],
)
def test_what_counts_as_a_literal_secret(sample, edit):
    doc = ConfigDocument.open(sample, environ=ENV)
    assert not doc.holds_literal_secret()
    doc.set(("connection_string",), "host=db password=${PGPASSWORD}")
    assert not doc.holds_literal_secret()
    doc.set(*edit)
    assert doc.holds_literal_secret()


@pytest.mark.parametrize("failing", ["os.replace", "os.fsync"])
def test_a_crash_during_save_leaves_the_original_and_no_temporary_file(
    sample, monkeypatch, failing
):
    original = sample.read_bytes()
    doc = ConfigDocument.open(sample, environ=ENV)
    doc.set(("slot_name",), "slot_2")

    def crash(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(failing, crash)
    with pytest.raises(OSError, match="No space left"):
        doc.save()

    assert sample.read_bytes() == original
    assert leftovers(sample.parent) == []
    monkeypatch.undo()
    doc.save()
    assert b'slot_name = "slot_2"' in sample.read_bytes()


def test_a_file_changed_by_someone_else_is_not_overwritten(sample):
    doc = ConfigDocument.open(sample, environ=ENV)
    doc.set(("slot_name",), "slot_2")
    sample.write_text(sample.read_text() + "# edited in vim\n")

    with pytest.raises(ConfigError) as caught:
        doc.save()

    assert str(caught.value) == (
        f"{sample}: the file was changed or removed by something else since it was opened; "
        "reopen it and edit again (nothing was saved)"
    )
    assert sample.read_text().endswith("# edited in vim\n")


def test_save_follows_a_symlink(sample):
    link = sample.parent / "link.toml"
    link.symlink_to(sample.name)
    doc = ConfigDocument.open(link, environ=ENV)
    doc.set(("slot_name",), "slot_2")
    doc.save()
    assert link.is_symlink()
    assert b'slot_name = "slot_2"' in sample.read_bytes()


def test_open_reports_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        ConfigDocument.open(tmp_path / "missing.toml")
    path = write(tmp_path, "x = 1\ny = \n")
    with pytest.raises(ConfigError) as caught:
        ConfigDocument.open(path)
    assert str(caught.value) == f"{path}:2: invalid TOML at column 5: Unexpected character: '\\n'"


def test_a_file_that_does_not_validate_can_still_be_opened_and_fixed(tmp_path):
    path = write(tmp_path, 'connection_string = "host=db"\n[event_sinks.http]\nurl = "ftp://x"\n')
    doc = ConfigDocument.open(path)
    with pytest.raises(ConfigError, match="expected an http:// or https:// URL"):
        doc.validate()
    doc.set(("event_sinks", "http", "url"), "https://fixed.example")
    assert doc.save().event_sinks[0].url == "https://fixed.example"
    assert os.path.exists(f"{path}.bak")
