"""Sinks from their configuration."""

from __future__ import annotations

from wal2http_tui.config import EventSinkConfig, HttpSinkConfig
from wal2http_tui.delivery import RetryPolicy
from wal2http_tui.event_sinks.hook0_sink import Hook0EventSink
from wal2http_tui.event_sinks.http_sink import HttpEventSink
from wal2http_tui.event_sinks.traits import EventSink


def build_sink(config: EventSinkConfig) -> EventSink:
    if isinstance(config, HttpSinkConfig):
        return HttpEventSink(config)
    return Hook0EventSink(config)


def retry_policy(config: EventSinkConfig) -> RetryPolicy:
    return RetryPolicy(
        retries=config.retries,
        backoff_ms=config.retry_backoff_ms,
        max_backoff_secs=config.retry_max_backoff_secs,
        on_failure=config.on_failure,
    )
