"""``dead-letters list|show|replay|drop``: inspect and resend what sinks gave up on."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from wal2http_tui.config import ReplicationConfig
from wal2http_tui.dead_letters import DeadLetter, DeadLetterStore
from wal2http_tui.event_sinks.factory import build_sink
from wal2http_tui.event_sinks.traits import DeliveryError, EventSink


def describe(letter: DeadLetter) -> str:
    when = _when(letter.last_failure)
    reason = letter.reason if len(letter.reason) <= 60 else letter.reason[:57] + "..."
    return (
        f"{letter.id:>6}  {letter.sink:<12} {letter.event_type:<32} {letter.event_id}  "
        f"{letter.attempts:>3}x  {when}  {reason}"
    )


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def show(letter: DeadLetter) -> str:
    try:
        payload = json.dumps(json.loads(letter.payload), indent=2, ensure_ascii=False)
    except ValueError:
        payload = letter.payload.decode(errors="replace")
    lines = [
        f"id:            {letter.id}",
        f"sink:          {letter.sink}",
        f"event id:      {letter.event_id}",
        f"event type:    {letter.event_type}",
        f"commit:        {letter.lsn} at {letter.commit_time} (xid {letter.xid}, seq {letter.seq})",
        f"attempts:      {letter.attempts}",
        f"first failure: {_when(letter.first_failure)}",
        f"last failure:  {_when(letter.last_failure)}",
        f"reason:        {letter.reason}",
        "payload:",
        payload,
    ]
    return "\n".join(lines)


class Replayer:
    """Sends dead letters through the sink they came from; removes each one that is delivered."""

    def __init__(self, config: ReplicationConfig, store: DeadLetterStore) -> None:
        self.store = store
        self._configs = {sink.name: sink for sink in config.event_sinks}
        self._sinks: dict[str, EventSink] = {}

    def replay(self, letter: DeadLetter) -> str | None:
        """None on success (the letter is removed), else why it failed (the letter stays)."""
        sink_config = self._configs.get(letter.sink)
        if sink_config is None:
            return f"no sink named {letter.sink!r} in the configuration any more"
        sink = self._sinks.get(letter.sink)
        if sink is None:
            sink = self._sinks[letter.sink] = build_sink(sink_config)
        try:
            sink.on_event(letter.to_event())
        except DeliveryError as exc:
            return str(exc)
        self.store.remove(letter.id)
        return None

    def close(self) -> None:
        for sink in self._sinks.values():
            sink.close()


def replay_all(replayer: Replayer, letters: list[DeadLetter], emit: Callable[[str], None]) -> int:
    """Replay ``letters`` in order; returns how many failed."""
    failed = 0
    for letter in letters:
        error = replayer.replay(letter)
        if error is None:
            emit(f"replayed {letter.id} ({letter.event_id}) to {letter.sink}")
        else:
            failed += 1
            emit(f"failed   {letter.id} ({letter.event_id}) to {letter.sink}: {error}")
    return failed
