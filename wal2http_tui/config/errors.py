"""ConfigError: every configuration problem, as one line naming the file, the line and the key."""

from __future__ import annotations

import os


class ConfigError(Exception):
    """One configuration problem: ``FILE:LINE: KEY: MESSAGE`` (line and key when known)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        message: str,
        *,
        key: str | None = None,
        line: int | None = None,
    ) -> None:
        self.path = str(path)
        self.key = key
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
