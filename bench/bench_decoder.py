"""Micro-benchmark of the pgoutput decoder alone: messages decoded per second on one core.

The stream is 200,000 transactions of Begin, Insert (int, text, timestamptz, numeric), Commit,
each message inside a whole CopyData 'w' buffer as the replication connection delivers it
(payload at byte 25). Prints the median of 5 runs.

    .venv/bin/python bench/bench_decoder.py [--transactions N] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import struct
import time

from wal2http_tui.replication.decoder import PgOutputDecoder
from wal2http_tui.replication.messages import ColumnInfo, Insert, RelationInfo

ITEMS = RelationInfo(
    oid=16384,
    schema="public",
    table="orders",
    replica_identity="d",
    columns=(
        ColumnInfo("id", 23, -1, True),
        ColumnInfo("customer", 25, -1, False),
        ColumnInfo("created_at", 1184, -1, False),
        ColumnInfo("amount", 1700, 655366, False),
    ),
)


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"t" + struct.pack(">i", len(raw)) + raw


def _copydata(lsn: int, payload: bytes) -> bytes:
    return b"w" + struct.pack(">QQq", lsn, lsn, 0) + payload


def build_stream(transactions: int) -> list[bytes]:
    """CopyData buffers for ``transactions`` Begin/Insert/Commit triples."""
    buffers = []
    lsn = 0x1_6B37_4800
    for n in range(transactions):
        timestamp = 789_000_000_000_000 + n * 1000
        row = [
            _text(str(n)),
            _text(f"customer-{n % 977:04d}@example.com"),
            _text(f"2024-06-{n % 28 + 1:02d} 12:{n % 60:02d}:{n % 60:02d}.{n % 999999:06d}+00"),
            _text(f"{n % 100000}.{n % 100:02d}"),
        ]
        insert = b"I" + struct.pack(">IBh", ITEMS.oid, ord("N"), 4) + b"".join(row)
        buffers.append(_copydata(lsn, b"B" + struct.pack(">QqI", lsn + 200, timestamp, 1000 + n)))
        buffers.append(_copydata(lsn + 40, insert))
        commit = b"C" + struct.pack(">BQQq", 0, lsn + 200, lsn + 240, timestamp)
        buffers.append(_copydata(lsn + 200, commit))
        lsn += 240
    return buffers


def run_once(buffers: list[bytes]) -> float:
    """Decode every buffer once; returns messages per second."""
    decoder = PgOutputDecoder({ITEMS.oid: ITEMS})
    decode = decoder.decode
    started = time.perf_counter()
    for buffer in buffers:
        decode(buffer, 25)
    elapsed = time.perf_counter() - started
    return len(buffers) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    buffers = build_stream(args.transactions)
    check = PgOutputDecoder({ITEMS.oid: ITEMS}).decode(buffers[1], 25)
    assert isinstance(check, Insert) and check.tuple_data[0] == "0", check

    rates = [run_once(buffers) for _ in range(args.runs)]
    print(
        f"decoder: {statistics.median(rates):,.0f} messages/s "
        f"(median of {args.runs} runs over {len(buffers):,} messages; "
        f"min {min(rates):,.0f}, max {max(rates):,.0f})"
    )


if __name__ == "__main__":
    main()
