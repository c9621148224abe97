"""``make soak``: 30 minutes at 1,000 transactions/s with one flapping sink (not run in CI).

A throwaway PostgreSQL, pgbench writing one row per transaction at a steady rate, and
``wal2http-tui run --headless`` delivering to two bench receivers (own processes): one steady,
one that answers 503 for 10 s after every 20 s. Checks, and exits non-zero if any fails:
- RSS flat after the warm-up (under 10% growth from minute 2 to the end);
- no file descriptor growth;
- the confirmed LSN advances in every minute;
- at the end every row reached both receivers (distinct ids counted by the receivers).
``--minutes N`` shortens it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import Headless, Receiver, confirmed, http_sink, pgbench, scratch
from wal2http_tui.demo import throwaway

WARM_UP = 120.0


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=1000, help="transactions per second")
    args = parser.parse_args()
    seconds = int(args.minutes * 60)
    warm_up = min(WARM_UP, seconds / 4)
    failures: list[str] = []
    with throwaway.ThrowawayCluster(throwaway.find_server()) as cluster:
        dsn = cluster.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE soak (id bigserial PRIMARY KEY, note text)")
            conn.execute("CREATE PUBLICATION bench_pub FOR TABLE soak")
        steady = Receiver("--unique", "new.id")
        flapping = Receiver("--unique", "new.id", "--flap", "20,10")
        # The flapping sink retries every 2 s at most, so it catches every "up" window.
        sinks = http_sink("steady", steady.url, 100) + http_sink(
            "flapping", flapping.url, 100, "retry_max_backoff_secs = 2\n"
        )
        engine = Headless(dsn, "soak", sinks)
        script = scratch("soak") / "insert.sql"
        script.write_text("INSERT INTO soak (note) VALUES ('soak');\n")
        engine.wait(lambda: confirmed(dsn, "soak") > 0)
        workload = pgbench(cluster, dsn, script, rate=args.rate, seconds=seconds)
        pid = engine.process.pid
        started = time.monotonic()
        samples: list[tuple[float, float, int, int]] = []
        while workload.poll() is None:
            elapsed = time.monotonic() - started
            samples.append((elapsed, rss_mb(pid), fd_count(pid), confirmed(dsn, "soak")))
            line = samples[-1]
            print(
                f"{elapsed:7.0f}s rss {line[1]:6.1f} MB fds {line[2]:3d} confirmed {line[3]:#x}",
                flush=True,
            )
            time.sleep(10)
        rows = psycopg.connect(dsn).execute("SELECT count(*) FROM soak").fetchone()[0]
        deadline = time.monotonic() + 300
        while (
            time.monotonic() < deadline
            and min(steady.stats()["unique"], flapping.stats()["unique"]) < rows
        ):
            time.sleep(1)
        counts = (steady.stats()["unique"], flapping.stats()["unique"])
        engine.stop()
        steady.stop()
        flapping.stop()

    after = [s for s in samples if s[0] >= warm_up]
    if after:
        growth = (after[-1][1] - after[0][1]) / after[0][1]
        print(f"RSS after warm-up: {after[0][1]:.1f} -> {after[-1][1]:.1f} MB ({growth:+.1%})")
        if growth >= 0.10:
            failures.append(f"RSS grew {growth:.1%} after the warm-up")
        if after[-1][2] > after[0][2]:
            failures.append(f"file descriptors grew from {after[0][2]} to {after[-1][2]}")
    for start in range(0, len(samples) - 6, 6):
        if samples[start + 6][3] <= samples[start][3]:
            failures.append(f"confirmed LSN did not advance in minute {start // 6 + 1}")
    print(f"rows written {rows}; distinct rows received: steady {counts[0]}, flapping {counts[1]}")
    if counts != (rows, rows):
        failures.append("a receiver is missing rows")
    for failure in failures:
        print(f"FAIL: {failure}")
    print("soak passed" if not failures else "soak FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
