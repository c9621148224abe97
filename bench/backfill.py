"""``make bench`` (the backfill part): an on-demand backfill against PostgreSQL's own COPY.

On a throwaway PostgreSQL: a table of ``--rows`` rows of about ``--row-bytes`` bytes each; the
time ``COPY (SELECT * FROM t) TO STDOUT`` takes into nothing (the ceiling: PostgreSQL reading
and writing the rows out); then ``wal2http-tui run --headless`` with one HTTP sink (batch 500)
to bench/receiver.py, a ``backfill start`` of the table, and the time until the receiver has
every row, with the engine's peak RSS. Writes bench/backfill.json and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from bench import (
    HERE,
    Headless,
    Receiver,
    add_postgres_option,
    bench_database,
    http_sink,
    server_of,
)
from wal2http_tui.demo import throwaway

TABLE = "CREATE TABLE fill (id bigint PRIMARY KEY, n int, pad text)"


def copy_seconds(dsn: str) -> float:
    started = time.monotonic()
    with (
        psycopg.connect(dsn) as conn,
        conn.cursor() as cursor,
        cursor.copy("COPY (SELECT * FROM fill) TO STDOUT") as copy,
    ):
        for _ in copy:
            pass
    return time.monotonic() - started


def backfill_run(dsn: str, rows: int, run: int) -> dict:
    receiver = Receiver()
    # the default queue (10,000 events): the memory bound is for the settings users start with
    engine = Headless(dsn, f"fill{run}", http_sink("http", receiver.url, 500), 10_000)
    try:
        config = Path(engine.process.args[-1])
        engine.wait(lambda: config.with_name("wal2http-state.sqlite").exists())
        engine.wait(lambda: _streaming(dsn, f"fill{run}"))
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "wal2http_tui", "backfill", "start", "fill", "-c", str(config)],
            check=True,
            capture_output=True,
        )
        engine.wait(lambda: receiver.stats()["events"] >= rows)
        seconds = time.monotonic() - started
    finally:
        rss = engine.stop()
        receiver.stop()
    return {"backfill_s": seconds, "peak_rss_mb": rss}


def _streaming(dsn: str, slot: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
    return bool(row and row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description="backfill throughput against COPY")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--row-bytes", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "backfill.json"))
    add_postgres_option(parser)
    args = parser.parse_args()
    server = server_of(args)
    runs = []
    with throwaway.ThrowawayCluster(server) as cluster:
        dsn = bench_database(cluster)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TABLE)
            conn.execute("CREATE PUBLICATION bench_pub FOR TABLE fill")
            print(f"[backfill] writing {args.rows:,} rows of {args.row_bytes} bytes", flush=True)
            conn.execute(
                "INSERT INTO fill SELECT g, g %% 1000, repeat(md5(g::text), %s) "
                "FROM generate_series(1, %s) g",
                (max(1, args.row_bytes // 32), args.rows),
            )
            conn.execute("VACUUM ANALYZE fill")
        for run in range(args.runs):
            print(f"[backfill] run {run + 1}/{args.runs}", flush=True)
            copy_s = copy_seconds(dsn)
            measured = backfill_run(dsn, args.rows, run)
            runs.append({"copy_s": copy_s, **measured})
    best = min(runs, key=lambda r: r["backfill_s"])
    results = {
        "rows": args.rows,
        "row_bytes": args.row_bytes,
        "postgresql": server.version,
        "copy_rows_s": args.rows / best["copy_s"],
        "backfill_rows_s": args.rows / best["backfill_s"],
        "ratio": best["copy_s"] / best["backfill_s"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"backfill of {args.rows:,} rows of {args.row_bytes} bytes, one HTTP sink (batch 500): "
        f"{results['backfill_rows_s']:,.0f} rows/s; COPY TO STDOUT {results['copy_rows_s']:,.0f} "
        f"rows/s; ratio {results['ratio']:.2f} (target >= 0.30); engine peak RSS "
        f"{results['peak_rss_mb']:.0f} MB (target < 200)"
    )


if __name__ == "__main__":
    main()
