"""The control socket's message format: ``EngineControls`` over a Unix socket, as JSON lines.

Every message is one JSON object on one line (UTF-8, ``\\n``-terminated).

1. The client opens with a hello: ``{"protocol": 1, "client": "wal2http-tui 0.9",
   "read_only": false}``. The engine answers ``{"protocol": 1, "engine": "wal2http-tui 0.9",
   "pid": 123, "config_path": "/etc/wal2http.toml", "slot": "wal2http_slot", "read_only":
   false}``, or ``{"refused": "why, and what to do"}`` and closes (another uid, another
   protocol version).
2. Then requests and answers, one at a time per connection: ``{"call": "pause_sink", "args":
   ["orders"]}`` is answered by ``{"result": ...}`` or ``{"error": "KeyError", "message":
   "no running sink named 'x'"}``.

``CALLS`` names every member a client may call, what it returns and whether it changes the
engine (a read-only client may not call those). Values are the engine's dataclasses as orjson
writes them (fields by name, ``bytes`` in base64, paths as strings), read back into the same
dataclasses by cattrs from the types named here: one table, so the two sides cannot disagree.

``PROTOCOL`` changes whenever a call, an argument or a value's shape changes: an engine and a
client of different protocols refuse each other with a message that names both versions.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cattrs
import orjson

from wal2http_tui.config.model import EventSinkConfig, ReplicationConfig
from wal2http_tui.delivery.activity import AttemptRecord, RetryInfo, SinkSnapshot, TxRecord
from wal2http_tui.delivery.dead_letters import DeadLetter
from wal2http_tui.engine.controls import BackfillRefused, BackfillStatus, CheckLine, SlotHealth
from wal2http_tui.replication.state import StateSnapshot

PROTOCOL = 1
MAX_LINE = 64 * 1024 * 1024  # the longest message either side reads (a dead-letter list)


class ControlError(Exception):
    """The control socket could not be used: the message says why and what to do."""


@dataclass(frozen=True)
class Call:
    """One member of ``EngineControls`` a client may call over the socket.

    ``returns``: the type its answer is read back as; ``args``: the types of its arguments;
    ``changes``: a read-only client may not call it; ``slow``: it may block for long (disk,
    network, draining sinks), so the client gives it a connection of its own."""

    returns: Any
    args: tuple[Any, ...] = ()
    changes: bool = False
    slow: bool = False


CALLS: dict[str, Call] = {
    "config": Call(ReplicationConfig),
    "config_environment": Call(dict[str, str]),
    "snapshot": Call(StateSnapshot),
    "sinks": Call(list[SinkSnapshot]),
    "transactions": Call(list[TxRecord]),
    "attempts": Call(list[AttemptRecord]),
    "retries": Call(list[RetryInfo]),
    "slot_health": Call(SlotHealth),
    "log_lines": Call(list[str]),
    "paused": Call(bool),
    "pause": Call(type(None), changes=True),
    "resume": Call(type(None), changes=True),
    "pause_sink": Call(type(None), (str,), changes=True),
    "resume_sink": Call(type(None), (str,), changes=True),
    "retry_now": Call(type(None), (str,), changes=True),
    "skip_to_dead_letters": Call(bool, (str,), changes=True),
    "list_dead_letters": Call(list[DeadLetter], (int,), slow=True),
    "replay_dead_letter": Call(str | None, (int,), changes=True, slow=True),
    "drop_dead_letter": Call(bool, (int,), changes=True, slow=True),
    "accept_gap": Call(type(None), changes=True, slow=True),
    "needs_restart": Call(bool, (ReplicationConfig,)),
    "apply": Call(type(None), (ReplicationConfig,), changes=True, slow=True),
    "test_connection": Call(list[CheckLine], (ReplicationConfig,), slow=True),
    "test_sink": Call(str, (EventSinkConfig,), slow=True),
    "backfills": Call(list[BackfillStatus]),
    "backfill_tables": Call(list[tuple[str, bool]]),
    "start_backfill": Call(str, (list[str], list[str], str | None), changes=True, slow=True),
    "control_backfill": Call(type(None), (str, str), changes=True, slow=True),
}

# The exceptions a call may raise that the client raises again as themselves (the UI catches
# them by type); any other error arrives as a ``RemoteError`` carrying its type and message.
KNOWN_ERRORS: dict[str, type[Exception]] = {
    "KeyError": KeyError,
    "ValueError": ValueError,
    "RuntimeError": RuntimeError,
    "BackfillRefused": BackfillRefused,
    "PermissionError": PermissionError,  # a read-only client asked for a change
}


class RemoteError(RuntimeError):
    """An error the engine raised that the client has no type for: ``Type: message``."""


_converter = cattrs.Converter()
_converter.register_structure_hook(bytes, lambda value, _: base64.b64decode(value))
_converter.register_structure_hook(Path, lambda value, _: Path(value))


def _default(value: object) -> object:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot send a {type(value).__name__} over the control socket")


def encode(message: object) -> bytes:
    """One line: the message and its dataclasses as JSON, newline-terminated."""
    return orjson.dumps(message, default=_default, option=orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes) -> dict[str, Any]:
    """One received line as a JSON object; ``ControlError`` when it is not one."""
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ControlError(f"not a control message ({exc})") from None
    if not isinstance(message, dict):
        raise ControlError("not a control message (not a JSON object)")
    return message


def structure(value: object, kind: Any) -> Any:
    """``value`` as read from JSON, made into ``kind`` again (a dataclass, a list of them...)."""
    if kind is type(None):
        return None
    return _converter.structure(value, kind)


def error_message(exc: BaseException) -> dict[str, str]:
    """An exception as the answer that carries it."""
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return {"error": type(exc).__name__, "message": str(message)}


def raise_error(answer: dict[str, Any]) -> None:
    """Raise the exception an error answer carries."""
    name, message = str(answer["error"]), str(answer.get("message", ""))
    known = KNOWN_ERRORS.get(name)
    if known is not None:
        raise known(message)
    raise RemoteError(f"{name}: {message}")


def version_refusal(ours: int, theirs: object, ours_is: str) -> str | None:
    """Why a peer of protocol ``theirs`` cannot be served (``ours_is``: "engine" or "client"),
    or None when the protocols match."""
    if theirs == ours:
        return None
    other = "client" if ours_is == "engine" else "engine"
    return (
        f"the {ours_is} speaks control protocol {ours}, the {other} {theirs}: attach with the "
        "same version of wal2http-tui as the engine runs (`wal2http-tui --version` on both)"
    )
