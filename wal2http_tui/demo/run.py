"""``wal2http-tui demo``: everything on this machine, nothing to set up, all cleaned up on exit.

It starts a throwaway PostgreSQL, creates a small shop schema, starts two webhook receivers on
127.0.0.1 (one reliable; one that answers 503 now and then and refuses a few events, so retries,
dead letters and the inspector have something to show), writes a commented configuration for
them, generates a steady workload, and opens the terminal UI on it. ``--headless --duration N``
runs the same without the UI and prints a summary.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from wal2http_tui.config.loader import load_config
from wal2http_tui.demo import throwaway
from wal2http_tui.demo.receiver import WebhookReceiver
from wal2http_tui.engine.facade import Engine

DEMO_TOKEN_VARIABLE = "WAL2HTTP_DEMO_TOKEN"

SCHEMA = """
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE,
    tags text[] DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint REFERENCES customers,
    status text NOT NULL DEFAULT 'new',
    total numeric(12, 2) NOT NULL,
    details jsonb,
    placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE audit_log (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    message text,
    at timestamptz DEFAULT now()
);
ALTER TABLE orders REPLICA IDENTITY FULL;
"""

CONFIG_TEMPLATE = """\
# wal2http-tui demo configuration, written by `wal2http-tui demo` (deleted when it exits).
# Edit it from the UI with `e`: saves keep these comments.

connection_string = "{dsn}"
publication_name = "demo_pub"
slot_name = "demo_slot"
feedback_interval_secs = 2

# A receiver that accepts everything, sent in small batches.
[[event_sinks.http]]
name = "warehouse"
enabled = true
url = "{good_url}"
batch_max_events = 20
event_format = "json"

# A receiver that answers 503 now and then and refuses a few events (422): watch the retries,
# and the dead letters (d) that you can replay. Rows go out concurrently, each row's events in
# order (ordering = "key"): a retrying row holds only itself.
[[event_sinks.http]]
name = "flaky-crm"
enabled = true
url = "{flaky_url}"
auth_header = "Bearer ${{{token_variable}}}"  # from the environment; masked in the UI
event_format = "cloudevents"
retries = 3
retry_backoff_ms = 300
retry_max_backoff_secs = 5
on_failure = "dead_letter"
ordering = "key"
max_in_flight = 8
"""

NAMES = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger"]
STATUSES = ["paid", "packed", "shipped", "delivered"]


class Workload:
    """A steady trickle of shop activity: customers, orders, status changes, deletes."""

    def __init__(self, dsn: str, transactions_per_second: float = 8.0, seed: int = 1) -> None:
        self._dsn = dsn
        self._interval = 1.0 / transactions_per_second
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-workload", daemon=True)
        self.transactions = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            with psycopg.connect(self._dsn, autocommit=True) as conn:
                while not self._stop.is_set():
                    with conn.transaction():
                        self._step(conn)
                    self.transactions += 1
                    self._stop.wait(self._interval)
        except psycopg.Error:
            if not self._stop.is_set():
                raise

    def _step(self, conn: psycopg.Connection) -> None:
        pick = self._random.random()
        name = self._random.choice(NAMES)
        if pick < 0.2 or self.transactions < 3:
            conn.execute(
                "INSERT INTO customers (name, email, tags) VALUES (%s, %s, %s)",
                (name, f"{name.lower()}.{self.transactions}@example.com", ["demo", "vip"][:2]),
            )
        elif pick < 0.65:
            for _ in range(self._random.randint(1, 3)):
                conn.execute(
                    "INSERT INTO orders (customer_id, total, details) SELECT id, %s, %s "
                    "FROM customers ORDER BY random() LIMIT 1",
                    (
                        round(self._random.uniform(5, 500), 2),
                        Jsonb({"items": self._random.randint(1, 9)}),
                    ),
                )
        elif pick < 0.9:
            conn.execute(
                "UPDATE orders SET status = %s WHERE id = (SELECT id FROM orders "
                "ORDER BY random() LIMIT 1)",
                (self._random.choice(STATUSES),),
            )
        elif pick < 0.97:
            conn.execute("DELETE FROM orders WHERE id = (SELECT min(id) FROM orders)")
        else:
            conn.execute("SELECT pg_logical_emit_message(true, 'demo', 'checkpoint reached')")
            conn.execute("INSERT INTO audit_log (message) VALUES ('nightly report')")


@dataclass
class DemoSetup:
    cluster: throwaway.ThrowawayCluster
    good: WebhookReceiver
    flaky: WebhookReceiver
    config_path: Path
    workload: Workload

    def close(self, engine: Engine) -> None:
        """Stop the workload, the engine, the receivers and PostgreSQL (in that order)."""
        self.workload.stop()
        engine.stop()
        self.good.stop()
        self.flaky.stop()
        self.cluster.stop()


def prepare(directory: Path, rate: float) -> DemoSetup:
    """Start PostgreSQL and the receivers, create the schema, write the configuration."""
    cluster = throwaway.ThrowawayCluster(throwaway.find_server()).start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        dsn = cluster.dsn("shop")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SCHEMA)
        good = WebhookReceiver(keep=1000).start()
        flaky = WebhookReceiver(failure_rate=0.1, reject_rate=0.02, seed=7, keep=1000).start()
        os.environ.setdefault(DEMO_TOKEN_VARIABLE, "demo-token-not-a-real-secret")
        path = directory / "wal2http.toml"
        path.write_text(
            CONFIG_TEMPLATE.format(
                dsn=dsn,
                good_url=good.url,
                flaky_url=flaky.url,
                token_variable=DEMO_TOKEN_VARIABLE,
            )
        )
        return DemoSetup(cluster, good, flaky, path, Workload(dsn, rate))
    except BaseException:
        cluster.stop()
        raise


def summary(engine: Engine, setup: DemoSetup, seconds: float) -> str:
    state = engine.snapshot()
    lines = [
        f"demo ran {seconds:.0f}s: {setup.workload.transactions} transactions written, "
        f"{state.transactions} received ({state.changes} changes), confirmed {state.flushed}",
    ]
    for sink in engine.sinks():
        lines.append(
            f"  sink {sink.name}: {sink.delivered} delivered, {sink.failed} failed attempts, "
            f"{sink.dead_lettered} dead-lettered, {sink.queue_depth} queued"
        )
    lines.append(f"  receiver warehouse accepted {setup.good.accepted} events")
    lines.append(f"  receiver flaky-crm accepted {setup.flaky.accepted} events")
    return "\n".join(lines)


def run_demo(
    *,
    headless: bool,
    duration: float | None,
    rate: float = 8.0,
    open_ui: Callable[[Engine, Path], None] | None = None,
    emit: Callable[[str], None] = print,
) -> int:
    directory = Path(tempfile.mkdtemp(prefix="wal2http-demo-"))
    setup = prepare(directory, rate)
    engine = Engine(load_config(setup.config_path))
    started = time.monotonic()
    try:
        setup.workload.start()
        if headless or open_ui is None:
            emit(f"demo: PostgreSQL at {setup.cluster.dsn('shop')}, config {setup.config_path}")
            engine.start()
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait(duration)
            setup.workload.stop()
            settled = time.monotonic()
            _settle(engine)
            engine.stop()
            emit(f"(stopping took {time.monotonic() - settled:.1f}s)")
            emit(summary(engine, setup, time.monotonic() - started))
        else:
            open_ui(engine, setup.config_path)
    finally:
        setup.close(engine)
        shutil.rmtree(directory, ignore_errors=True)
    return 0


def _settle(engine: Engine, timeout: float = 15.0) -> None:
    """Give the sinks a moment to deliver what the workload wrote last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(sink.queue_depth == 0 for sink in engine.sinks()):
            return
        time.sleep(0.2)
