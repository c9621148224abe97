"""The configuration file: its model, loading and validation, and editing it in place.

- ``model``: the frozen dataclasses the program runs on, their defaults, the key lists and choices.
- ``secrets``: what is masked wherever configuration or requests are shown.
- ``loader``: ``load_config``: read, parse, validate; ``errors``: ``ConfigError``.
- ``validation``, ``sink_validation``: the rules, with ``table_reader`` (typed getters that
  name the key and its line), ``messages`` (how a value is shown) and ``env`` (``${VAR}``).
- ``layout``: where each key is in the text (tomlkit keeps no positions); ``keys``: key paths.
- ``document``: ``ConfigDocument``, the editor's write-back, which changes the text only where
  an edit is (``text_edits``), values written as ``toml_text`` writes them.
"""

from wal2http_tui.config.document import ConfigDocument, SinkEntry
from wal2http_tui.config.errors import ConfigError
from wal2http_tui.config.loader import load_config, load_config_text
from wal2http_tui.config.model import (
    EventSinkConfig,
    Hook0SinkConfig,
    HttpSinkConfig,
    ReplicationConfig,
)
from wal2http_tui.config.secrets import mask_conninfo

__all__ = [
    "ConfigDocument",
    "ConfigError",
    "EventSinkConfig",
    "Hook0SinkConfig",
    "HttpSinkConfig",
    "ReplicationConfig",
    "SinkEntry",
    "load_config",
    "load_config_text",
    "mask_conninfo",
]
