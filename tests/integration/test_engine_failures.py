"""The engine never stops silently (issue 11): a crash of the replication loop and a message it
cannot decode end ``run --headless`` with status 1 and one line naming why; reconnecting never
accumulates connections; applying a configuration never overlaps the old sinks (sinks changed in
a loop then kill -9: ``tests/reliability/test_live_reconfiguration.py``)."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import pytest

from tests.support.engine import config_text, http_sink, slot_confirmed_lsn, wait_until
from wal2http_tui.commands.headless import run_headless
from wal2http_tui.config.loader import load_config_text
from wal2http_tui.demo.receiver import Fault, WebhookReceiver
from wal2http_tui.engine.facade import Engine
from wal2http_tui.engine.server import ReplicationServer
from wal2http_tui.replication import native
from wal2http_tui.replication.assembler import TransactionAssembler
from wal2http_tui.replication.messages import ProtocolError, format_lsn, parse_lsn

SLOT = "fail"


def load(tmp_path, pg, sinks: str, **top: object):
    text = config_text(
        pg.dsn, sinks, slot_name=SLOT, publication_name="fail_pub", feedback_interval_secs=1, **top
    )
    path = tmp_path / "wal2http.toml"
    path.write_text(text)
    return load_config_text(text, path)


class CountingReceiver(WebhookReceiver):
    """A receiver that answers after ``answer_seconds`` and remembers the most requests it ever
    had in flight at once."""

    def __init__(self, answer_seconds: float) -> None:
        super().__init__()
        self.fail_always(Fault(status=200, stall_seconds=answer_seconds))
        self.in_flight = 0
        self.max_in_flight = 0
        self._counting = threading.Lock()

    def _next_fault(self) -> Fault | None:
        with self._counting:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return super()._next_fault()

    def _record(self, handler, body, status, accepted=False) -> None:
        super()._record(handler, body, status, accepted)
        with self._counting:
            self.in_flight -= 1


def headless_in_a_thread(config, seconds: float) -> int:
    """``run --headless`` in this process (so the test can break its insides), stopped by a
    SIGTERM after ``seconds`` if it is still running."""
    import signal

    timer = threading.Timer(seconds, lambda: signal.raise_signal(signal.SIGTERM))
    timer.start()
    try:
        return run_headless(config, drain_timeout=1)
    finally:
        timer.cancel()


def test_a_crash_of_the_replication_loop_exits_1_with_one_clear_line(
    pg, tmp_path, monkeypatch, caplog
):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")

    def broken_dispatch(self, tx, keep_alive, stopped):
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr(ReplicationServer, "dispatch", broken_dispatch)
    with WebhookReceiver() as receiver:
        config = load(tmp_path, pg, http_sink(receiver.url))
        create_publication_and_slot(pg)
        pg.execute("INSERT INTO t VALUES (1)")
        status = headless_in_a_thread(config, seconds=30)
    assert status == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors[-1] == (
        "stopped on an error: replication loop crashed: RuntimeError: a bug in the engine"
    )
    assert any(r.exc_info for r in caplog.records if "crashed" in r.getMessage())
    assert receiver.accepted == 0


def test_the_same_undecodable_message_three_times_stops_with_its_lsn_and_confirms_nothing_past(
    pg, tmp_path, monkeypatch, caplog
):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
    wire_feeder = TransactionAssembler.wire_feeder

    def poisoned_feeder(self, decoder):
        """Whichever path renders the rows (compiled or Python), the poisoned one fails."""
        feed_wire = wire_feeder(self, decoder)

        def feed_but_poison(data, offset):
            if b"poison" in bytes(data):
                raise ProtocolError("Insert", 17, "a value this decoder cannot read")
            feed_wire(data, offset)

        return feed_but_poison

    monkeypatch.setattr(TransactionAssembler, "wire_feeder", poisoned_feeder)
    # every message through the feeder: not the compiled read loop, which renders rows itself
    monkeypatch.setattr(native, "reads_from_libpq", lambda: False)
    with WebhookReceiver() as receiver:
        config = load(tmp_path, pg, http_sink(receiver.url))
        create_publication_and_slot(pg)
        pg.execute("INSERT INTO t VALUES (1, 'fine')")
        before = pg.execute("SELECT pg_current_wal_lsn()::text")[0][0]
        pg.execute("INSERT INTO t VALUES (2, 'poison')")
        pg.execute("INSERT INTO t VALUES (3, 'after')")
        status = headless_in_a_thread(config, seconds=60)
    assert status == 1
    assert [event["new"]["id"] for event in receiver.events] == [1]
    final = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR][-1]
    assert final.startswith("stopped on an error: cannot decode what PostgreSQL sent at LSN ")
    assert "(3 times in a row): malformed pgoutput Insert message at byte 17" in final
    lsn = parse_lsn(final.split("at LSN ")[1].split(" ")[0])
    assert lsn > parse_lsn(before)
    assert slot_confirmed_lsn(pg, SLOT) <= lsn
    assert f"confirmed up to {format_lsn(slot_confirmed_lsn(pg, SLOT))}" in final


def create_publication_and_slot(pg) -> None:
    """What the engine creates at start, created first so rows can be written before it runs
    (a slot decodes a publication only from where it existed)."""
    pg.execute("CREATE PUBLICATION fail_pub FOR ALL TABLES")
    pg.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (SLOT,))


def connections(pg) -> int:
    return pg.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (pg.name,),
    )[0][0]


def streaming(engine: Engine) -> bool:
    return engine.snapshot().state == "streaming"


def test_reconnecting_and_restarting_never_accumulate_connections(pg, tmp_path):
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with WebhookReceiver() as receiver:
        config = load(tmp_path, pg, http_sink(receiver.url))
        engine = Engine(config, slot_health_interval=60)
        engine.start()
        try:
            for round_ in range(6):
                wait_until(lambda: streaming(engine), what="streaming")
                pg.execute(f"INSERT INTO t VALUES ({round_})")  # the catalog is used
                receiver.wait_for_events(round_ + 1)
                if round_ == 1:
                    after_one = connections(pg)
                pg.execute(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                    "WHERE slot_name = %s",
                    (SLOT,),
                )
                wait_until(lambda: not streaming(engine), what="disconnected")
            wait_until(lambda: streaming(engine), what="streaming after five reconnects")
            assert connections(pg) <= after_one
            for timeout in (3, 4, 5):  # feedback_interval_secs: a restart each time
                engine.apply(replace(engine.config, feedback_interval_secs=timeout))
                wait_until(lambda: streaming(engine), what="streaming after a restart")
            assert connections(pg) <= after_one
        finally:
            engine.stop()


@pytest.mark.parametrize("change", ["restart", "live"])
def test_applying_a_configuration_never_lets_two_workers_send_to_one_receiver(pg, tmp_path, change):
    """Each answer takes 0.4 s; if an old worker and its successor sent at once, the receiver
    would see two requests in flight and a transaction's events interleaved."""
    pg.execute("CREATE TABLE t (id int PRIMARY KEY)")
    with CountingReceiver(answer_seconds=0.4) as receiver:
        config = load(tmp_path, pg, http_sink(receiver.url, timeout=5))
        engine = Engine(config, slot_health_interval=60)
        engine.start()
        try:
            wait_until(lambda: streaming(engine), what="streaming")
            pg.execute("INSERT INTO t SELECT generate_series(1, 12)")
            receiver.wait_for_events(2)
            sink = replace(engine.config.event_sinks[0], timeout=6)
            new = replace(engine.config, event_sinks=(sink,))
            if change == "restart":
                new = replace(new, feedback_interval_secs=2)
            engine.apply(new)
            pg.execute("INSERT INTO t SELECT generate_series(13, 20)")
            wait_until(lambda: len(set(receiver.event_ids())) == 20, timeout=60, what="20 rows")
        finally:
            engine.stop()
    assert receiver.max_in_flight == 1
    ids = [event["new"]["id"] for event in receiver.events]
    first_seen = sorted(set(ids), key=ids.index)
    assert first_seen == list(range(1, 21)), "rows arrived out of commit order"
