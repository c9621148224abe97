"""Sinks from their configuration."""

from __future__ import annotations

from wal2http_tui.config.model import EventSinkConfig, HttpSinkConfig
from wal2http_tui.event_sinks.hook0_sink import Hook0EventSink
from wal2http_tui.event_sinks.http_sink import HttpEventSink
from wal2http_tui.event_sinks.traits import EventSink


def build_sink(config: EventSinkConfig) -> EventSink:
    if isinstance(config, HttpSinkConfig):
        return HttpEventSink(config)
    return Hook0EventSink(config)
