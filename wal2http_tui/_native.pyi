# The compiled hot path (csrc/): replication/native.py and event_sinks/event_processor.py use it.
from collections.abc import Callable

TEXT: int
INT: int
BOOL: int
NUMERIC: int
FLOAT: int
JSONB: int
TIMESTAMP: int
TIMESTAMPTZ: int
PYTHON: int
ARRAY: int
KIND_COUNT: int

class Layout:
    def __init__(
        self,
        relation: object,
        schema: str,
        table: str,
        names: tuple[str, ...],
        name_json: tuple[bytes, ...],
        kinds: bytes,
        element_kinds: bytes,
        delimiters: bytes,
        converters: tuple[Callable[[str], object], ...],
        element_converters: tuple[Callable[[str], object] | None, ...],
        key_positions: tuple[int, ...],
        key_json: tuple[bytes, ...],
    ) -> None: ...

class Rows:
    def __init__(
        self,
        relations: dict[int, object],
        layouts: dict[int, object],
        change_type: type[tuple[object, ...]],
        dumps: Callable[[object], bytes],
    ) -> None: ...
    def change(
        self, data: bytes | memoryview, offset: int, in_stream: bool
    ) -> tuple[int | None, object] | None: ...
    def read(
        self, pgconn_ptr: int, limit: int, in_stream: bool
    ) -> tuple[list[tuple[int | None, object]], bytes | None, int, int, int, int]: ...

def use_libpq(get_copy_data: int, freemem: int) -> None: ...
def event_id(prefix: bytes, seq: int) -> str: ...
def json_row_event(
    prefix: bytes,
    seq: int,
    head: str,
    new: str | None,
    old: str | None,
    key: str | None,
    unchanged_toast: tuple[str, ...],
    middle: str,
    tail: str,
) -> tuple[str, bytes]: ...
