"""Which hot path runs: the compiled one (``wal2http_tui/csrc``) or the Python reference.

The compiled hot path is the C extension ``wal2http_tui._native``, built by ``setup.py`` when a
C compiler is there. Its row path (``csrc/rows.c``) turns a pgoutput Insert, Update or Delete
message into the assembler's ``Change`` in one pass; its event path (``csrc/events.c``) builds
event ids and json payloads. The pure Python path (decoder, ``RowConverter``, orjson,
``EventProcessor``) is the reference both are tested against, byte for byte, and the fallback for
every message the row path declines (see ``rows.c``).

``WAL2HTTP_IMPL`` chooses: ``native`` (refused when the extension is not built), ``python``, or
unset (native when built, python otherwise, with a warning saying how to build it).
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from wal2http_tui.replication.messages import RelationInfo
from wal2http_tui.replication.transactions import Change
from wal2http_tui.replication.values import (
    CONVERTER_KINDS,
    ArrayConverter,
    Converter,
    RowConverter,
)

IMPL_VARIABLE = "WAL2HTTP_IMPL"
NATIVE, PYTHON = "native", "python"


def _load() -> tuple[ModuleType | None, str]:
    try:
        from wal2http_tui import _native
    except ImportError as error:
        return None, str(error)
    return _native, ""


_NATIVE, _NOT_BUILT = _load()


@dataclass(frozen=True)
class Implementation:
    """The row path chosen, and what the start-up log line says of it."""

    name: str  # NATIVE or PYTHON
    why: str
    warning: bool = False  # the operator should know (the accelerator could not be loaded)


def choose(environ: Mapping[str, str] = os.environ) -> Implementation:
    """The row path ``WAL2HTTP_IMPL`` asks for; ValueError naming the fix when it cannot be."""
    asked = environ.get(IMPL_VARIABLE, "").strip().lower()
    if asked not in ("", NATIVE, PYTHON):
        raise ValueError(
            f"{IMPL_VARIABLE}={environ[IMPL_VARIABLE]!r}: expected {NATIVE!r} or {PYTHON!r} "
            "(or unset: native when built)"
        )
    if asked == PYTHON:
        return Implementation(PYTHON, f"{IMPL_VARIABLE}=python")
    if _NATIVE is not None:
        return Implementation(NATIVE, f"compiled ({_NATIVE.__file__})")
    fix = (
        "the compiled hot path is not built "
        f"({_NOT_BUILT}): install gcc and the Python headers and reinstall the package"
    )
    if asked == NATIVE:
        raise ValueError(f"{IMPL_VARIABLE}=native, but {fix}, or set {IMPL_VARIABLE}=python")
    return Implementation(PYTHON, fix, warning=True)


def compiled(environ: Mapping[str, str] = os.environ) -> ModuleType | None:
    """The compiled module when ``WAL2HTTP_IMPL`` chooses it (None otherwise, and when the
    choice is an error: the stream refuses to start over that)."""
    try:
        return _NATIVE if choose(environ).name == NATIVE else None
    except ValueError:
        return None


def rows(relations: dict[int, RelationInfo], layouts: dict[int, object]) -> Any:
    """The compiled ``Rows`` over ``relations`` and ``layouts`` (the assembler fills
    ``layouts`` with ``layout()``): ``change(data, offset, in_stream)`` renders one message,
    ``read(pgconn_ptr, limit, in_stream)`` reads rendered rows straight from libpq (only when
    ``reads_from_libpq()``). Only when the extension is built."""
    assert _NATIVE is not None, "rows() needs the compiled hot path"
    return _NATIVE.Rows(relations, layouts, Change, orjson.dumps)


@functools.cache
def reads_from_libpq() -> bool:
    """Whether ``Rows.read`` can call the libpq psycopg runs on: the one libpq mapped in this
    process (psycopg's binary package bundles one), whose PQgetCopyData and PQfreemem it is
    given (once). Linux only (/proc/self/maps); elsewhere, or with two libpq, the stream reads
    through psycopg."""
    import psycopg  # loads its libpq

    psycopg.pq.version()
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    paths = {line.split(maxsplit=5)[-1] for line in maps.splitlines() if "/libpq" in line}
    libraries = {path for path in paths if Path(path).name.startswith("libpq")}
    if _NATIVE is None or len(libraries) != 1:
        return False
    library = ctypes.CDLL(libraries.pop())  # already loaded: the same handle
    address = ctypes.cast(library.PQgetCopyData, ctypes.c_void_p).value
    free = ctypes.cast(library.PQfreemem, ctypes.c_void_p).value
    if not address or not free:
        return False
    _NATIVE.use_libpq(address, free)
    return True


def layout(relation: RelationInfo, convert: RowConverter, keys: tuple[str, ...]) -> object:
    """What the compiled path needs to render ``relation``'s rows as ``convert`` does."""
    assert _NATIVE is not None, "layout() needs the compiled hot path"
    names = tuple(column.name for column in relation.columns)
    positions = {name: i for i, name in enumerate(names)}
    kinds: list[int] = []
    element_kinds: list[int] = []
    delimiters: list[bytes] = []
    elements: list[Converter | None] = []
    for converter in convert.converters:
        array = converter if isinstance(converter, ArrayConverter) else None
        delimiter = array.delimiter.encode() if array is not None else b""
        if array is not None and len(delimiter) == 1:  # arrays of any type; rules for elements
            kinds.append(_NATIVE.ARRAY)
            element_kinds.append(_kind(array.element))
            delimiters.append(delimiter)
            elements.append(array.element)
        else:
            kinds.append(_kind(converter))
            element_kinds.append(_NATIVE.PYTHON)
            delimiters.append(b",")
            elements.append(None)
    return _NATIVE.Layout(
        relation=relation,
        schema=relation.schema,
        table=relation.table,
        names=names,
        name_json=tuple(orjson.dumps(name) + b":" for name in names),
        kinds=bytes(kinds),
        element_kinds=bytes(element_kinds),
        delimiters=b"".join(delimiters),
        converters=convert.converters,
        element_converters=tuple(elements),
        key_positions=tuple(positions.get(key, len(names)) for key in keys),
        key_json=tuple(orjson.dumps(key) + b":" for key in keys),
    )


def _kind(converter: object) -> int:
    """The compiled rule for a converter's values (PYTHON: call the converter)."""
    assert _NATIVE is not None
    name = CONVERTER_KINDS.get(converter, "python")  # type: ignore[call-overload]
    return int(getattr(_NATIVE, name.upper()))
