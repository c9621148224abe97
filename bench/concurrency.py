"""``make bench`` (the concurrency part): one event per request, ``ordering = "commit"`` (one
request in flight) against ``ordering = "key"`` (``max_in_flight = 64``).

On a throwaway PostgreSQL, rows inserted in transactions of 100 before the engine starts (so
the engine reads as fast as it can), then ``wal2http-tui run --headless`` with one sink, timed
until PostgreSQL has the confirmation of the last transaction (every event delivered), for
each receiver:

- ``delay20``: bench/receiver.py holding every answer 20 ms, as real webhook endpoints do;
- ``nginx``: Debian's nginx answering ``return 204`` at once (a neutral endpoint that costs
  little CPU), started here with a configuration of its own and one worker process;
- ``hook0``: the Hook0 sink against the Hook0 fake (tests/fakes/hook0_api.py), answering at
  once: it checks every request against Hook0's OpenAPI schema, which costs it more CPU per
  request than the sink, so this measures the fake as much as the sink;
- ``hook0_20ms``: the same fake holding every answer 20 ms, as the real Hook0 over a network.

Writes bench/concurrency.json and prints events/s with the ordering, the in-flight limit, the
receiver, and each target.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg

from bench import (
    HERE,
    HOOK0_FAKE_SCRIPT,
    TABLE,
    Receiver,
    add_postgres_option,
    bench_database,
    confirmed,
    create_slots,
    drop_slots,
    http_sink,
    nginx,
    run_headless,
    scratch,
    server_of,
    write_rows,
)
from wal2http_tui.demo import throwaway
from wal2http_tui.replication.messages import parse_lsn

IN_FLIGHT = 64
# (receiver, ordering): rows to send; few where one request at a time takes long
ROWS = {
    ("delay20", "commit"): 400,
    ("delay20", "key"): 20_000,
    ("nginx", "commit"): 20_000,
    ("nginx", "key"): 60_000,
    ("hook0", "commit"): 5_000,
    ("hook0", "key"): 20_000,
    ("hook0_20ms", "commit"): 400,
    ("hook0_20ms", "key"): 10_000,
}
# what the issue asks of ordering = "key" (events/s, or times "commit" for Hook0)
TARGETS = {
    "delay20": ("events/s", 2_000),
    "nginx": ("events/s", 20_000),
    "hook0": ("x", 5),
    "hook0_20ms": ("x", 5),
}


@contextmanager
def delayed_receiver() -> Iterator[str]:
    receiver = Receiver("--delay", "0.02")
    try:
        yield receiver.url
    finally:
        receiver.stop()


@contextmanager
def hook0_fake(latency: float = 0.0) -> Iterator[tuple[str, str, str]]:
    application, token = "0b9c5a1e-5c62-4b8e-9a4f-3c7e2d1f0a11", "bench-token"
    port_file = scratch("hook0") / "port"
    script = [HOOK0_FAKE_SCRIPT, str(port_file), application, token, str(latency)]
    fake = subprocess.Popen([sys.executable, "-c", *script])
    try:
        while not (port_file.exists() and port_file.read_text()):
            time.sleep(0.02)
        yield f"http://127.0.0.1:{int(port_file.read_text())}/api/v1", token, application
    finally:
        fake.terminate()
        fake.wait(10)


def _sink(receiver: str, target: object, ordering: str) -> str:
    keyed = f'ordering = "{ordering}"\nmax_in_flight = {IN_FLIGHT}\n'
    if receiver.startswith("hook0"):
        api_url, token, application = target  # type: ignore[misc]
        return (
            "[[event_sinks.hook0]]\nenabled = true\n"
            f'api_url = "{api_url}"\napi_key = "{token}"\napplication_id = "{application}"\n'
            + keyed
        )
    return http_sink("bench", str(target), 1, keyed)


def measure(dsn: str, receiver: str, ordering: str, target: object, run: int, first: int) -> float:
    """Events per second until confirmed."""
    rows = ROWS[(receiver, ordering)]
    slot = f"conc_{receiver}_{ordering}_{run}"
    drop_slots(dsn)
    create_slots(dsn, [slot])
    end = parse_lsn(write_rows(dsn, first, rows, 100))
    done: Callable[[], bool] = lambda: confirmed(dsn, slot) >= end  # noqa: E731
    result = run_headless(dsn, slot, _sink(receiver, target, ordering), done, end)
    return rows / result["confirmed_s"]


RECEIVERS: dict[str, Callable[[], AbstractContextManager]] = {
    "delay20": delayed_receiver,
    "nginx": nginx,
    "hook0": hook0_fake,
    "hook0_20ms": lambda: hook0_fake(0.02),
}


def main() -> None:
    parser = argparse.ArgumentParser(description="per-event delivery, commit order against key")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--only", choices=sorted(RECEIVERS), action="append")
    parser.add_argument("--out", default=str(HERE / "concurrency.json"))
    add_postgres_option(parser)
    args = parser.parse_args()
    server = server_of(args)
    results: dict = {"postgresql": server.version, "max_in_flight": IN_FLIGHT, "receivers": {}}
    with throwaway.ThrowawayCluster(server) as cluster:
        dsn = bench_database(cluster)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TABLE)
            conn.execute("CREATE PUBLICATION bench_pub FOR TABLE bench")
        first = 1
        for receiver in args.only or list(RECEIVERS):
            figures: dict[str, list[float]] = {"commit": [], "key": []}
            with RECEIVERS[receiver]() as target:
                for run in range(args.runs):
                    for ordering in ("commit", "key"):
                        print(f"[concurrency] {receiver} {ordering} run {run + 1}", flush=True)
                        figures[ordering].append(
                            measure(dsn, receiver, ordering, target, run, first)
                        )
                        first += ROWS[(receiver, ordering)]
            commit, key = (sorted(figures[o])[len(figures[o]) // 2] for o in ("commit", "key"))
            results["receivers"][receiver] = {
                "commit_events_s": commit,
                "key_events_s": key,
                "speedup": key / commit,
            }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    for receiver, figures in results["receivers"].items():
        unit, goal = TARGETS[receiver]
        value = figures["speedup"] if unit == "x" else figures["key_events_s"]
        verdict = "met" if value >= goal else "NOT met"
        print(
            f'{receiver:>8}: ordering "commit" (1 in flight) {figures["commit_events_s"]:,.0f} '
            f'events/s; "key" ({IN_FLIGHT} in flight) {figures["key_events_s"]:,.0f} events/s, '
            f"{figures['speedup']:.1f}x; target {goal:,} {unit}: {verdict}"
        )


if __name__ == "__main__":
    main()
