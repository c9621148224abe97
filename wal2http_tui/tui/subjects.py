"""What the inspector is opened on: a transaction, a waiting retry or a dead letter, each as the
set of event ids whose delivery attempts to show."""

from __future__ import annotations

from wal2http_tui.delivery.activity import RetryInfo, TxRecord
from wal2http_tui.delivery.dead_letters import DeadLetter
from wal2http_tui.event_sinks.event_processor import event_id
from wal2http_tui.replication.messages import parse_lsn
from wal2http_tui.replication.state import StateSnapshot
from wal2http_tui.tui.marks import mark_name
from wal2http_tui.tui.messages import Subject
from wal2http_tui.tui.units import UNKNOWN, countdown, thousands, utc_time

MATCHED_EVENTS = 10_000  # event ids derived per transaction to find its attempts


def transaction_subject(tx: TxRecord, state: StateSnapshot) -> Subject:
    """A transaction's events are ``event_id(system, slot, commit LSN, 0..size-1)``: the ids
    the sinks sent, so its attempts can be found among the recent ones."""
    count = min(tx.size, MATCHED_EVENTS)
    commit_lsn = parse_lsn(tx.lsn)
    ids = frozenset(
        event_id(state.system_id, state.slot_name, commit_lsn, seq) for seq in range(count)
    )
    note = ""
    if tx.size > count:
        note = f"attempts are matched on the first {thousands(count)} of its events"
    marks = ", ".join(f"{sink} {mark_name(mark)}" for sink, mark in dict(tx.marks).items())
    return Subject(
        title=f"Transaction {tx.xid} committed at {tx.lsn}",
        event_ids=ids,
        facts=(
            ("commit time", tx.commit_time or UNKNOWN),
            ("changes", thousands(tx.size)),
            ("tables", ", ".join(tx.tables) or UNKNOWN),
            ("sinks", marks or UNKNOWN),
        ),
        note=note,
    )


def retry_subject(retry: RetryInfo, now: float) -> Subject:
    attempts = f"{retry.attempt} of {retry.max_attempts or '∞'}"
    return Subject(
        title=f"Waiting retry at sink {retry.sink}: {retry.table_op}",
        event_ids=frozenset(retry.event_ids),
        facts=(
            ("events", thousands(len(retry.event_ids))),
            ("attempt", attempts),
            ("next attempt", countdown(retry.next_attempt_at, now)),
            ("last error", retry.last_error),
        ),
    )


def dead_letter_subject(letter: DeadLetter) -> Subject:
    return Subject(
        title=f"Dead letter {letter.id} of sink {letter.sink}: {letter.event_type}",
        event_ids=frozenset({letter.event_id}),
        facts=(
            ("event id", letter.event_id),
            ("transaction", f"{letter.xid} at {letter.lsn}, change {letter.seq}"),
            ("reason", letter.reason),
            ("attempts", str(letter.attempts)),
            ("failures", f"{utc_time(letter.first_failure)} to {utc_time(letter.last_failure)}"),
        ),
        payload=letter.payload,
    )
