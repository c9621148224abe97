"""What the screens compute from the engine's values, without a screen: payload pretty-printing,
log tails, slot judgements, rates, editor field values and masks."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from tests.fakes.engine import NOW, FakeEngine, GiB
from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.engine.facade import SlotHealth
from wal2http_tui.tui.config_fields import ROOT_FIELDS, SINK_FIELDS, from_text, masked, to_text
from wal2http_tui.tui.json_view import pretty_json
from wal2http_tui.tui.log_pane import new_lines
from wal2http_tui.tui.marks import marks_legend
from wal2http_tui.tui.monitor import EventRate, SlotTrend
from wal2http_tui.tui.slot_health import assess_slot, slot_summary
from wal2http_tui.tui.status import source_line
from wal2http_tui.tui.units import countdown, human_bytes, human_duration, server_version

MiB = 1024 * 1024
DASH = "\N{EN DASH}"  # the filtered-out mark
HTTP = {spec.key: spec for spec in SINK_FIELDS["http"]}
ROOT = {spec.key: spec for spec in ROOT_FIELDS}


def squeezed(text: str) -> str:
    return "".join(text.split())


# --- payloads --------------------------------------------------------------------------------


def test_pretty_json_only_adds_whitespace_and_keeps_numbers_as_written():
    sent = '{"a":1.10,"b":[],"c":{},"d":"x \\" y, {z}","e":[12345678901234567890,{"f":null}]}'
    pretty = pretty_json(sent)
    assert squeezed(pretty) == squeezed(sent)
    assert "1.10" in pretty and "12345678901234567890" in pretty
    assert json.loads(pretty) == json.loads(sent)
    assert pretty.splitlines()[:3] == ["{", '  "a": 1.10,', '  "b": [],']
    assert '  "d": "x \\" y, {z}",' in pretty.splitlines()


def test_pretty_json_of_something_else_keeps_every_character():
    for text in ("not json {[", "<html>503</html>", "]]}"):
        assert squeezed(pretty_json(text)) == squeezed(text)


# --- the log -----------------------------------------------------------------------------------


def test_new_log_lines_are_those_the_last_reading_did_not_have():
    shown = ["a", "b", "c"]
    assert new_lines(shown, ["a", "b", "c", "d", "e"]) == ["d", "e"]
    assert new_lines(shown, ["b", "c", "d"]) == ["d"]  # the full buffer dropped its oldest
    assert new_lines(shown, ["c", "d", "e"]) == ["d", "e"]
    assert new_lines(shown, ["a", "b", "c"]) == []
    assert new_lines(shown, ["x", "y", "z"]) == ["x", "y", "z"]  # all new
    assert new_lines([], ["a"]) == ["a"]


def test_repeated_log_lines_are_not_shown_twice_or_lost():
    assert new_lines(["x", "y", "x"], ["x", "y", "x", "y", "x"]) == ["y", "x"]


# --- the slot ----------------------------------------------------------------------------------

HEALTHY = SlotHealth(
    slot_name="s",
    exists=True,
    active_pid=42,
    restart_lsn="0/10",
    confirmed_flush_lsn="0/20",
    wal_status="reserved",
    safe_wal_size=None,
    retained_bytes=16 * 1024 * 1024,
    checked_at=NOW,
)


def levels(slot: SlotHealth, *, rising: bool = False) -> dict[str, str]:
    return {finding.label: finding.level for finding in assess_slot(slot, rising=rising)}


def test_a_healthy_slot_has_nothing_to_report():
    assert set(levels(HEALTHY).values()) == {"ok"}
    assert slot_summary(HEALTHY, rising=False) is None


@pytest.mark.parametrize(
    ("wal_status", "level"),
    [("reserved", "ok"), ("extended", "warning"), ("unreserved", "error"), ("lost", "error")],
)
def test_wal_status_beyond_reserved_is_a_warning_then_an_error(wal_status, level):
    assert levels(replace(HEALTHY, wal_status=wal_status))["wal_status"] == level


def test_retained_wal_above_a_gibibyte_or_rising_is_a_warning():
    assert levels(replace(HEALTHY, retained_bytes=2 * GiB))["retained WAL"] == "warning"
    assert levels(replace(HEALTHY, retained_bytes=100 * MiB), rising=True)["retained WAL"] == (
        "warning"
    )
    # small retention rising under load is normal, not a warning
    assert levels(replace(HEALTHY, retained_bytes=50 * 1024), rising=True)["retained WAL"] == "ok"
    summary = slot_summary(replace(HEALTHY, retained_bytes=2 * GiB), rising=True)
    assert summary == ("warning", "retained WAL 2.0 GiB: above 1.0 GiB, rising at every check")


def findings(slot: SlotHealth) -> dict[str, tuple[str, str, str]]:
    return {f.label: (f.value, f.level, f.note) for f in assess_slot(slot, rising=False)}


def test_what_postgresql_17_and_18_say_of_a_slot_is_shown():
    idle = replace(
        HEALTHY,
        active_pid=None,
        failover=False,
        synced=False,
        inactive_since=NOW - 90,
        idle_timeout="1d",
    )
    shown = findings(idle)
    assert shown["failover"] == ("no", "ok", "lost if the primary fails over")
    assert "synced" not in shown
    assert shown["inactive for"] == ("1m30s", "warning", "invalidated after 1d idle")
    assert shown["idle timeout"] == ("1d", "ok", "then the server invalidates it")
    gone = findings(replace(HEALTHY, wal_status="lost", invalidation_reason="idle_timeout"))
    assert gone["invalidated"] == (
        "idle_timeout",
        "error",
        "it was inactive for longer than idle_replication_slot_timeout; raise "
        "idle_replication_slot_timeout (0 turns it off), and keep the engine running",
    )
    assert "failover" not in findings(HEALTHY)  # before 17: no such column, no such line


def test_a_missing_or_unreadable_slot_is_an_error():
    assert slot_summary(replace(HEALTHY, exists=False), rising=False) == (
        "error",
        "slot s: no such slot on the server (yet)",
    )
    unreadable = replace(HEALTHY, exists=False, error="permission denied")
    assert slot_summary(unreadable, rising=False) == (
        "error",
        "slot s: cannot read the slot: permission denied",
    )


def test_the_trend_takes_one_sample_per_slot_check():
    trend = SlotTrend()
    for checked_at, retained in ((1.0, 10), (1.0, 10), (4.0, 20), (7.0, 15)):
        trend.observe(replace(HEALTHY, checked_at=checked_at, retained_bytes=retained))
    assert list(trend.samples) == [10, 20, 15]


# --- events per second -------------------------------------------------------------------------


def test_events_per_second_are_sampled_once_a_second_and_never_negative():
    rate = EventRate()
    rate.observe(1000, 100.0)
    rate.observe(1100, 100.5)  # within the second: no sample yet
    rate.observe(1300, 101.0)
    rate.observe(40, 102.0)  # a restarted worker counts from zero
    rate.observe(240, 104.0)
    assert list(rate.samples) == [300.0, 0.0, 100.0]
    assert rate.current == 100.0


# --- editor fields -----------------------------------------------------------------------------


def test_typed_text_becomes_the_toml_value_the_loader_expects():
    assert from_text(HTTP["retries"], "7") == 7
    assert from_text(HTTP["timeout"], "2.5") == 2.5
    assert from_text(HTTP["retries"], "seven") == "seven"  # the loader explains the problem
    assert from_text(HTTP["verify_tls"], "false") is False
    assert from_text(HTTP["url"], "  ") is None  # empty: the key goes, the default applies
    assert from_text(ROOT["tables"], '["a", "b.c"]') == ["a", "b.c"]
    assert from_text(HTTP["headers"], '{ X-A = "1" }') == {"X-A": "1"}
    with pytest.raises(ValueError, match="not a TOML value"):
        from_text(HTTP["headers"], "{ X-A = ")


def test_values_read_from_the_file_round_trip_through_their_text():
    for spec, value in ((ROOT["tables"], ["a", "b"]), (HTTP["headers"], {"X-A": "1"})):
        assert from_text(spec, to_text(value)) == value
    assert to_text(None) == ""
    assert to_text(True) == "true"


def test_literal_secrets_are_masked_and_environment_references_are_not():
    dsn = "host=db user=u password=hunter2"
    assert masked(("connection_string",), dsn) == "host=db user=u password=***"
    assert masked(("connection_string",), "host=db user=u") is None
    auth = ("event_sinks", "http", 0, "auth_header")
    assert masked(auth, "Bearer abc") == "***"
    assert masked(auth, "Bearer ${TOKEN}") is None
    headers = ("event_sinks", "http", 0, "headers")
    assert masked(headers, {"X-Api-Key": "k", "X-Source": "w"}) == (
        '{X-Api-Key = "***", X-Source = "w"}'
    )
    assert masked(("event_sinks", "http", 0, "url"), "https://x") is None


# --- marks -------------------------------------------------------------------------------------


def test_the_marks_legend_names_every_mark_and_shortens_to_fit_a_narrow_pane():
    full = marks_legend().plain
    assert full.endswith(f"⊘ dead-lettered  {DASH} filtered out")
    assert marks_legend(width=len(full)).plain == full
    narrow = marks_legend(width=66).plain
    assert narrow == f"✓ sent → sending ○ queued ↻ retry ✗ failed ⊘ dead {DASH} filtered"
    assert len(narrow) <= 66


# --- units -------------------------------------------------------------------------------------


def test_units_read_short():
    assert [human_bytes(n) for n in (0, 1536, 3 * GiB // 2)] == ["0 B", "1.5 KiB", "1.5 GiB"]
    assert [human_duration(s) for s in (0.44, 42, 75, 7300)] == ["0.4s", "42s", "1m15s", "2h01m"]
    assert countdown(NOW + 4, NOW) == "in 4.0s"
    assert countdown(NOW - 1, NOW) == "now"
    assert server_version(160004) == "16.4"


@pytest.mark.parametrize(
    ("row_path", "shown"),
    [
        ("native", " · compiled"),
        ("python", " · pure Python"),
        ("python, not built", " · pure Python: the compiled path is not built"),
        ("", " · pgoutput v4"),
    ],
)
def test_the_source_line_ends_with_what_renders_the_rows(row_path, shown):
    state = replace(
        FakeEngine(ReplicationConfig(connection_string="")).snapshot(), row_path=row_path
    )
    line = source_line(SimpleNamespace(state=state, attached_to=None))
    assert line.plain.endswith(shown)
