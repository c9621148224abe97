"""RetryPolicy: how long a sink waits between attempts, and what it does when they run out."""

from __future__ import annotations

import random
from dataclasses import dataclass

from wal2http_tui.config.model import BaseSinkConfig, EventSinkConfig


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter between ``backoff_ms`` and ``max_backoff_secs``."""

    retries: int = BaseSinkConfig.retries
    backoff_ms: int = BaseSinkConfig.retry_backoff_ms
    max_backoff_secs: float = BaseSinkConfig.retry_max_backoff_secs
    on_failure: str = BaseSinkConfig.on_failure  # or "dead_letter"

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_backoff_secs, self.backoff_ms / 1000.0 * 2 ** min(attempt - 1, 30))
        return random.uniform(0, ceiling)

    @classmethod
    def of(cls, config: EventSinkConfig) -> RetryPolicy:
        """The policy a sink's configuration asks for."""
        return cls(
            retries=config.retries,
            backoff_ms=config.retry_backoff_ms,
            max_backoff_secs=config.retry_max_backoff_secs,
            on_failure=config.on_failure,
        )
