"""``${VAR}`` references: expanded in every string value when the file is loaded.

The editor writes them back unexpanded, so a secret can stay in the environment; ``$${`` stands
for a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from wal2http_tui.config.keys import KeyPath

_ENV_REFERENCE = re.compile(r"\$\$\{|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)\})?")


def env_references(text: str) -> list[str]:
    """The names of the ``${VAR}`` references in a string (``$${`` escapes are not references)."""
    return [m.group(1) for m in _ENV_REFERENCE.finditer(text) if m.group(1)]


def referenced_environment(text: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The values ``environ`` has for the ``${VAR}`` references of a file's ``text``."""
    return {name: environ[name] for name in env_references(text) if name in environ}


def expand_env(
    value: Any,
    path: KeyPath,
    environ: Mapping[str, str],
    error: Callable[[KeyPath, str], Exception],
) -> Any:
    """``value`` with ``${VAR}`` replaced in every string it holds; ``error(path, message)`` is
    raised for a malformed reference or an unset variable."""
    if isinstance(value, dict):
        return {key: expand_env(item, (*path, key), environ, error) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item, (*path, i), environ, error) for i, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if match.group() == "$${":
            return "${"
        if name is None:
            raise error(
                path,
                'malformed variable reference: expected ${NAME} (letters, digits and "_"); '
                'write $${ for a literal "${"',
            )
        if name not in environ:
            raise error(
                path, f"environment variable {name} is not set (the value uses ${{{name}}})"
            )
        return environ[name]

    return _ENV_REFERENCE.sub(substitute, value)
