"""Helpers for tests that run the real engine against the throwaway PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from wal2http_tui.config.loader import load_config_text
from wal2http_tui.engine.server import ReplicationServer
from wal2http_tui.event_sinks.event_processor import Event


def config_text(dsn: str, sinks: str, **top: object) -> str:
    lines = [f'connection_string = "{dsn}"']
    for key, value in top.items():
        rendered = f'"{value}"' if isinstance(value, str) else str(value).lower()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rendered = str(value)
        lines.append(f"{key} = {rendered}")
    return "\n".join(lines) + "\n" + sinks


def http_sink(url: str, name: str = "http", enabled: bool = True, **keys: object) -> str:
    body = [f'name = "{name}"', f"enabled = {str(enabled).lower()}", f'url = "{url}"']
    for key, value in keys.items():
        if isinstance(value, str):
            body.append(f'{key} = "{value}"')
        elif isinstance(value, bool):
            body.append(f"{key} = {str(value).lower()}")
        else:
            body.append(f"{key} = {value}")
    return "[[event_sinks.http]]\n" + "\n".join(body) + "\n"


def make_server(tmp_path: Path, text: str, **kwargs) -> ReplicationServer:
    path = tmp_path / "wal2http.toml"
    path.write_text(text)
    config = load_config_text(text, path)
    return ReplicationServer.from_config(config, **kwargs)


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def slot_confirmed_lsn(db, slot: str) -> int:
    rows = db.execute(
        "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    )
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def current_wal_lsn(db) -> int:
    return int(db.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")[0][0])


class running:
    """Start ``server``, wait until it streams, stop it afterwards."""

    def __init__(self, server: ReplicationServer, state: str = "streaming") -> None:
        self.server = server
        self.state = state

    def __enter__(self) -> ReplicationServer:
        self.server.start()
        wait_until(
            lambda: (
                self.server.snapshot().state == self.state
                or self.server.snapshot().state == "error"
            ),
            what=f"state {self.state}",
        )
        snapshot = self.server.snapshot()
        assert snapshot.state == self.state, snapshot.detail
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


def sample_event(payload: bytes = b'{"new": {"id": 1}}') -> Event:
    """An insert event with a fresh id, for sending straight to a sink."""
    return Event(
        event_id=str(uuid.uuid4()),
        event_type="public.t.insert",
        op="insert",
        schema="public",
        table="t",
        lsn="0/1",
        commit_time="2024-01-01T00:00:00.000000Z",
        seq=0,
        payload=payload,
    )
