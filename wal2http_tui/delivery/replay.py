"""Replaying dead letters: each is sent again through the sink it came from, and removed once
delivered."""

from __future__ import annotations

from collections.abc import Callable

from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.delivery.dead_letters import DeadLetter, DeadLetterStore
from wal2http_tui.event_sinks.factory import build_sink
from wal2http_tui.event_sinks.traits import DeliveryError, EventSink


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
            sink.on_batch(
                [letter.to_event()]
            )  # in the shape the receiver gets: an array if batched
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
