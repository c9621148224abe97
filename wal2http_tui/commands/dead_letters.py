"""``dead-letters list|show|replay|drop``: inspect and resend what sinks gave up on (the replay
itself is ``delivery/replay.py``, which the UI uses too)."""

from __future__ import annotations

import json
import sys
import time

from wal2http_tui.commands.exit_codes import EXIT_CONFIG_ERROR, EXIT_FAILURE, EXIT_OK
from wal2http_tui.config.model import ReplicationConfig
from wal2http_tui.delivery.dead_letters import DeadLetter, DeadLetterStore
from wal2http_tui.delivery.replay import Replayer, replay_all


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


def run_dead_letters(
    config: ReplicationConfig,
    action: str,
    letter_id: int | None,
    *,
    every: bool = False,
    sink: str | None = None,
) -> int:
    """One ``dead-letters`` command; its exit status."""
    store = DeadLetterStore(config.dead_letter_path)
    try:
        if action == "list":
            letters = store.list(sink=sink)
            for letter in letters:
                print(describe(letter))
            print(f"{len(letters)} dead letter(s) in {config.dead_letter_path}")
            return EXIT_OK
        if action in ("show", "drop") or (action == "replay" and not every):
            if letter_id is None:
                print(f"dead-letters {action}: give an ID (see `list`)", file=sys.stderr)
                return EXIT_CONFIG_ERROR
            found = store.get(letter_id)
            if found is None:
                print(f"no dead letter with id {letter_id}", file=sys.stderr)
                return EXIT_FAILURE
            if action == "show":
                print(show(found))
                return EXIT_OK
            if action == "drop":
                store.remove(found.id)
                print(f"dropped {found.id} ({found.event_id})")
                return EXIT_OK
            letters = [found]
        else:
            letters = store.list(sink=sink, limit=1_000_000)
        replayer = Replayer(config, store)
        try:
            failed = replay_all(replayer, letters, print)
        finally:
            replayer.close()
        return EXIT_FAILURE if failed else EXIT_OK
    finally:
        store.close()
