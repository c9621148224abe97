"""A Hook0 sink's configuration pointing at the Hook0 fake (tests/fakes/hook0_api.py)."""

from __future__ import annotations

import json
import uuid

APPLICATION = str(uuid.UUID(int=0x1234))
TOKEN = "hook0-secret-token"


def hook0_sink(api_url: str, **keys: object) -> str:
    lines = [
        "[[event_sinks.hook0]]",
        'name = "hook0"',
        "enabled = true",
        f'api_url = "{api_url}"',
        f'api_key = "{TOKEN}"',
        f'application_id = "{APPLICATION}"',
        "retry_backoff_ms = 50",
        "retry_max_backoff_secs = 1",
    ]
    lines += [f"{k} = {_toml(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    """JSON is TOML for strings, numbers and arrays; a dict becomes an inline table."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)
