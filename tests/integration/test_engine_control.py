"""The Engine a UI drives: live sink changes, restarts, slot health, log, dead letters."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.engine import http_sink, wait_until
from wal2http_tui.config.loader import load_config_text
from wal2http_tui.demo.receiver import Fault, WebhookReceiver
from wal2http_tui.engine.controls import BackfillRefused, BackfillState
from wal2http_tui.engine.facade import Engine


def _config(pg, tmp_path, sinks: str, slot: str = "ctl"):
    text = (
        f'connection_string = "{pg.dsn}"\nslot_name = "{slot}"\npublication_name = "ctl_pub"\n'
        f"feedback_interval_secs = 1\n{sinks}"
    )
    return load_config_text(text, tmp_path / "wal2http.toml")


def test_changing_a_failing_sinks_url_live_delivers_everything_it_held(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as broken, WebhookReceiver() as fixed:
        broken.fail_always(Fault(status=503))
        config = _config(
            pg, tmp_path, http_sink(broken.url, retry_backoff_ms=20, retry_max_backoff_secs=0.2)
        )
        engine = Engine(config, slot_health_interval=0.2)
        engine.start()
        try:
            wait_until(lambda: engine.snapshot().state == "streaming", what="streaming")
            pid = engine.snapshot()
            pg.execute("INSERT INTO t SELECT generate_series(1, 20)")
            wait_until(lambda: engine.sinks()[0].failed >= 2, what="failures")
            assert engine.retries() and engine.retries()[0].sink == "http"
            new_sink = replace(config.event_sinks[0], url=fixed.url)
            new = replace(config, event_sinks=(new_sink,))
            assert not engine.needs_restart(new)
            engine.apply(new)
            events = fixed.wait_for_events(20)
            pg.execute("INSERT INTO t VALUES (21)")
            events = fixed.wait_for_events(21)
            assert engine.snapshot().system_id == pid.system_id
            assert engine.snapshot().reconnect_attempt == 0
            health = wait_until(
                lambda: engine.slot_health().exists and engine.slot_health(), what="slot health"
            )
            assert health.active_pid is not None
            assert health.wal_status == "reserved"
            assert any("sink http reconfigured" in line for line in engine.log_lines())
        finally:
            engine.stop()
    assert [e["new"]["id"] for e in events] == list(range(1, 22))


def test_adding_and_removing_sinks_live(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as a, WebhookReceiver() as b:
        config = _config(pg, tmp_path, http_sink(a.url, name="a"))
        engine = Engine(config)
        engine.start()
        try:
            wait_until(lambda: engine.snapshot().state == "streaming", what="streaming")
            pg.execute("INSERT INTO t VALUES (1)")
            a.wait_for_events(1)
            both = _config(pg, tmp_path, http_sink(a.url, name="a") + http_sink(b.url, name="b"))
            engine.apply(both)
            pg.execute("INSERT INTO t VALUES (2)")
            b.wait_for_events(1)
            a.wait_for_events(2)
            engine.apply(_config(pg, tmp_path, http_sink(b.url, name="b")))
            pg.execute("INSERT INTO t VALUES (3)")
            b.wait_for_events(2)
            assert [s.name for s in engine.sinks()] == ["b"]
            disabled = _config(pg, tmp_path, http_sink(b.url, name="b", enabled=False))
            with pytest.raises(ValueError, match="keep at least one sink enabled"):
                engine.apply(disabled)
            assert [s.name for s in engine.sinks()] == ["b"]
        finally:
            engine.stop()
    assert [e["new"]["id"] for e in a.events] == [1, 2]
    assert [e["new"]["id"] for e in b.events] == [2, 3]


def test_changing_the_slot_restarts_the_worker(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as receiver:
        config = _config(pg, tmp_path, http_sink(receiver.url))
        engine = Engine(config)
        engine.start()
        try:
            wait_until(lambda: engine.snapshot().state == "streaming", what="streaming")
            moved = _config(pg, tmp_path, http_sink(receiver.url), slot="ctl_two")
            assert engine.needs_restart(moved)
            engine.apply(moved)
            wait_until(lambda: engine.snapshot().state == "streaming", what="restarted")
            assert engine.snapshot().slot_name == "ctl_two"
            pg.execute("INSERT INTO t VALUES (1)")
            receiver.wait_for_events(1)
        finally:
            engine.stop()


def test_the_ui_steers_a_backfill_and_sees_its_progress(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
    pg.execute("CREATE TABLE bare (n int)")
    pg.execute("INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 3000) g")
    pg.execute("CREATE PUBLICATION ctl_pub FOR TABLE t, bare WITH (publish = 'insert')")
    with WebhookReceiver() as receiver:
        config = _config(pg, tmp_path, http_sink(receiver.url, batch_max_events=200))
        config = replace(config, backfill_chunk_rows=1000)
        engine = Engine(config, slot_health_interval=0.2)
        engine.start()
        try:
            wait_until(lambda: engine.snapshot().state == "streaming", what="streaming")
            assert sorted(engine.backfill_tables()) == [("public.bare", False), ("public.t", True)]
            with pytest.raises(BackfillRefused, match=r"public\.bare has no primary key"):
                engine.start_backfill(["bare"])
            backfill_id = engine.start_backfill(["t"], where="id > 1000")
            assert [s.record.id for s in engine.backfills()] == [backfill_id]  # at once
            done = wait_until(
                lambda: next(
                    (s for s in engine.backfills() if s.record.state == BackfillState.DONE), None
                ),
                what="the backfill done",
            )
            assert done.record.rows == 2000
            assert done.record.tables[0].done
            with pytest.raises(BackfillRefused, match="is done: nothing to cancel"):
                engine.control_backfill("cancel", backfill_id)
            reads = receiver.wait_for_events(2000)
            # a table added to the publication while streaming: its rows can be sent too
            pg.execute("CREATE TABLE later (id int PRIMARY KEY)")
            pg.execute("INSERT INTO later SELECT generate_series(1, 50)")
            pg.execute("ALTER PUBLICATION ctl_pub ADD TABLE later")
            later_id = engine.start_backfill(["later"])
            wait_until(
                lambda: any(
                    s.record.id == later_id and s.record.state == BackfillState.DONE
                    for s in engine.backfills()
                ),
                what="the new table's backfill done",
            )
            events = receiver.wait_for_events(2050)
        finally:
            engine.stop()
    assert sorted(e["new"]["id"] for e in reads) == list(range(1001, 3001))
    assert {e["backfill"]["id"] for e in reads} == {backfill_id}
    later = [e for e in events if e["table"] == "later"]
    assert sorted(e["new"]["id"] for e in later) == list(range(1, 51))
