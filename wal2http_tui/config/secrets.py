"""Secrets: which values are masked wherever configuration or requests are shown, and how.

One rule per kind of secret, used by every view: ``is_sensitive_header`` decides for header names
(the configuration's ``redacted()`` views, the editor, and the request headers the inspector and
the attempt records show), ``mask_conninfo`` masks the password of a connection string in its
key=value and URI forms, and ``secret_field`` marks the sink keys that are secrets as a whole.
A masked value reads ``MASK``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import Field, field
from typing import Any

MASK = "***"

_SENSITIVE_HEADER = re.compile(r"auth|token|key|secret|passw|cookie|signature|session", re.I)
_URI_START = re.compile(r"postgres(?:ql)?://")
_URI_USERINFO_PASSWORD = re.compile(r"(://[^:/@]*:)([^@/]*)@")
_URI_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&#]*)")
_KEYWORD_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)")
_SECRET = "secret"


@functools.lru_cache(maxsize=1024)  # asked for every header of every request: few names
def is_sensitive_header(name: str) -> bool:
    """Whether a header's value is likely a credential, so shown as ``MASK``."""
    return bool(_SENSITIVE_HEADER.search(name))


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers for display: the values of credential-like headers masked."""
    return {name: MASK if is_sensitive_header(name) else value for name, value in headers.items()}


def is_uri_conninfo(dsn: str) -> bool:
    """Whether a connection string is a ``postgresql://`` (or ``postgres://``) URI."""
    return bool(_URI_START.match(dsn))


def mask_url_password(url: str) -> str:
    """The URL with the password of its user info (``scheme://user:PASSWORD@``) masked."""
    return _URI_USERINFO_PASSWORD.sub(rf"\1{MASK}@", url, count=1)


def mask_conninfo(dsn: str) -> str:
    """The connection string with its password replaced by ``***`` (key=value and URI forms)."""
    if is_uri_conninfo(dsn):
        return _URI_QUERY_PASSWORD.sub(rf"\1{MASK}", mask_url_password(dsn))
    return _KEYWORD_PASSWORD.sub(rf"\1{MASK}", dsn)


def conninfo_password(dsn: str) -> str | None:
    """The password as written in the connection string (quotes kept), or None."""
    if is_uri_conninfo(dsn):
        found = _URI_USERINFO_PASSWORD.search(dsn) or _URI_QUERY_PASSWORD.search(dsn)
    else:
        found = _KEYWORD_PASSWORD.search(dsn)
    return found.group(2) if found and found.group(2) else None


def secret_field(**options: Any) -> Any:
    """A dataclass field holding a secret: left out of the repr, masked in ``redacted()``."""
    return field(repr=False, metadata={_SECRET: True}, **options)


def is_secret_field(config_field: Field) -> bool:
    return bool(config_field.metadata.get(_SECRET))
