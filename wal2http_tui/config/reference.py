"""What every configuration key means: the one source of the README's configuration reference
and of the one-line help the configuration editor shows beside each key.

Each ``KeyDoc`` is one row of a README table: the keys it documents, their default and their
meaning, written in Markdown (backticks, links) as the README shows them.
``python -m tools.config_reference`` writes the README's three tables from here (a test fails
when they differ); ``key_help`` gives the editor the first sentence, in plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyDoc:
    keys: tuple[str, ...]
    default: str
    meaning: str

    def row(self) -> str:
        keys = ", ".join(f"`{key}`" for key in self.keys)
        return f"| {keys} | {self.default} | {self.meaning} |".replace("|  |", "| |")


TABLE_HEAD = "| Key | Default | Meaning |\n|---|---|---|"
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.(?:\s|$)")


def readme_table(docs: tuple[KeyDoc, ...]) -> str:
    """The README's table of ``docs``, in Markdown."""
    return "\n".join([TABLE_HEAD, *(doc.row() for doc in docs)])


def plain(markdown: str) -> str:
    """Markdown as a terminal shows it: no backticks, links as their text."""
    return _LINK.sub(r"\1", markdown).replace("`", "")


def first_sentence(text: str) -> str:
    end = _SENTENCE_END.search(text)
    return text if end is None else text[: end.start() + 1]


def key_help(kind: str | None, key: str) -> str:
    """The meaning of ``key`` as the editor shows it: plain text, its first sentence. ``kind``:
    None for the top level, else "http" or "hook0" (a Hook0 key documented "as for HTTP" reads
    the HTTP sink's row). "" for a key the reference does not document."""
    tables = {None: (TOP_LEVEL,), "http": (HTTP_SINK,), "hook0": (HOOK0_SINK, HTTP_SINK)}
    for docs in tables[kind]:
        doc = next((doc for doc in docs if key in doc.keys), None)
        if doc is not None and doc.meaning and not doc.meaning.startswith("As for HTTP"):
            return first_sentence(plain(doc.meaning))
    return ""


TOP_LEVEL: tuple[KeyDoc, ...] = (
    KeyDoc(
        ("connection_string",),
        "required",
        (
            "libpq `key=value` string or `postgresql://` URI. The password may come from "
            "`PGPASSWORD` or `~/.pgpass`; it is masked wherever the string is shown."
        ),
    ),
    KeyDoc(
        ("publication_name",),
        '`"wal2http_pub"`',
        "Publication to stream.",
    ),
    KeyDoc(
        ("create_publication",),
        "`true`",
        (
            "Create it when missing (`FOR ALL TABLES`, or `FOR TABLE` the `tables`), unless that "
            "would break the application's writes (see [Tables without a "
            "key](#tables-without-a-key))."
        ),
    ),
    KeyDoc(
        ("publish",),
        "every operation",
        (
            "The `publish` option of a publication wal2http-tui creates: a comma-separated subset"
            ' of `insert, update, delete, truncate`. `"insert, truncate"` keeps tables without a '
            "primary key writable, at the cost of streaming no update or delete of any table. An "
            "existing publication is not changed (a warning says how to)."
        ),
    ),
    KeyDoc(
        ("publish_generated_columns",),
        "`false`",
        (
            "PostgreSQL 18+: a publication wal2http-tui creates also publishes stored generated "
            "columns (`publish_generated_columns = stored`), their values in events as "
            "`to_jsonb` renders them. An existing publication is not changed (a warning says "
            "how to); on 17 and older, `true` is refused with the version."
        ),
    ),
    KeyDoc(
        ("tables",),
        "all tables",
        (
            '`["schema.table", "table"]`; double-quote a part that holds a dot: '
            "`'\"my.schema\".orders'`."
        ),
    ),
    KeyDoc(
        ("slot_name",),
        '`"wal2http_slot"`',
        "Logical replication slot (`[a-z0-9_]`, at most 63).",
    ),
    KeyDoc(
        ("create_slot",),
        "`true`",
        "Create it (plugin `pgoutput`) when missing.",
    ),
    KeyDoc(
        ("failover_slot",),
        "`false`",
        (
            "PostgreSQL 17+: create the slot as a failover slot, which a standby with "
            "`sync_replication_slots = on` keeps in step, so that streaming goes on from the "
            "promoted standby (see [Failover](#failover-postgresql-17)). Pre-flight checks "
            "`synchronized_standby_slots` on the primary and says the fix; on 16 and older "
            "`true` is refused with the version."
        ),
    ),
    KeyDoc(
        ("backfill_chunk_rows",),
        "`10000`",
        (
            "Rows the initial snapshot, or a backfill on demand, reads at a time (1 to "
            "1,000,000); each chunk is one unit of delivery, and memory is bounded by it."
        ),
    ),
    KeyDoc(
        ("initial_snapshot",),
        "`false`",
        (
            "When the slot is created, first send every row the publication's tables already "
            "hold, as `read` events, consistent with the stream that follows (see "
            "[Backfills](#backfills-the-rows-that-already-exist))."
        ),
    ),
    KeyDoc(
        ("feedback_interval_secs",),
        "`10`",
        "Seconds between status updates that tell PostgreSQL how far delivery got.",
    ),
    KeyDoc(
        ("server_timeout_secs",),
        "`60`",
        (
            "Silence from PostgreSQL (no data, no keepalive) this long means the connection is "
            "dead: the engine reconnects. It also bounds every SQL call (pre-flight, type "
            "look-ups, slot checks). `0` turns both off (only TCP keepalives are left)."
        ),
    ),
    KeyDoc(
        ("queue_max_events",),
        "`10000`",
        "Events waiting per sink; when a queue is full, replication waits (backpressure).",
    ),
    KeyDoc(
        ("stall_warning_secs",),
        "`60`",
        (
            "A sink with events waiting and nothing delivered for this long shows STALLED (logged"
            " once, red on the status line); `0` turns it off."
        ),
    ),
    KeyDoc(
        ("metrics_listen",),
        "not served",
        (
            '`"host:port"` (`"[::1]:9187"` for IPv6): serve `/metrics`, `/healthz` and `/readyz` '
            "there (see [Metrics and health](#metrics-and-health)). Use a loopback address unless"
            " the network in between is trusted: the endpoints have no authentication."
        ),
    ),
    KeyDoc(
        ("ready_max_lag_secs",),
        "`300`",
        (
            "`/readyz` answers 503 while the newest transaction received is older than this and "
            "not yet confirmed."
        ),
    ),
    KeyDoc(
        ("control_socket",),
        "`$XDG_RUNTIME_DIR/wal2http-tui/<slot>.sock`",
        (
            "Unix socket where `run --headless` serves `wal2http-tui attach` (relative to the "
            "config file; without `XDG_RUNTIME_DIR`: `.wal2http-tui/<slot>.sock` beside it). "
            "Read at start only (see [Attaching the UI](#attaching-the-ui-to-a-running-engine))."
        ),
    ),
    KeyDoc(
        ("dead_letter_path",),
        "`wal2http-dead-letters.sqlite`",
        (
            "SQLite file for dead letters (relative to the config file). The state file "
            "`wal2http-state.sqlite` (what was confirmed on each slot, and accepted gaps) sits "
            "beside it."
        ),
    ),
)

HTTP_SINK: tuple[KeyDoc, ...] = (
    KeyDoc(
        ("name",),
        '`"http"`, `"http-2"`, ...',
        "Unique sink name (shown in the UI, used by dead letters).",
    ),
    KeyDoc(
        ("enabled",),
        "`false`",
        "Sinks are disabled unless `enabled = true`.",
    ),
    KeyDoc(
        ("url",),
        "required",
        (
            "`http://` or `https://` endpoint; may hold `{schema}`, `{table}`, `{op}` (see "
            "[Routing](#routing-what-each-sink-receives))."
        ),
    ),
    KeyDoc(
        ("tables", "ops", "exclude_columns"),
        "everything",
        "What this sink receives: see [Routing](#routing-what-each-sink-receives).",
    ),
    KeyDoc(
        ("method",),
        '`"POST"`',
        "`POST`, `PUT` or `PATCH`.",
    ),
    KeyDoc(
        ("timeout",),
        "`10`",
        (
            "Seconds one attempt may take as a whole: connecting, sending, waiting for the answer"
            " and reading it."
        ),
    ),
    KeyDoc(
        ("retries",),
        "`5`",
        "Further attempts before `on_failure` applies.",
    ),
    KeyDoc(
        ("retry_backoff_ms",),
        "`500`",
        "First retry delay; doubles each attempt, full jitter.",
    ),
    KeyDoc(
        ("retry_max_backoff_secs",),
        "`60`",
        "Longest delay between attempts.",
    ),
    KeyDoc(
        ("on_failure",),
        '`"block"`',
        (
            '`"block"`: keep retrying at the longest delay, nothing moves past it; '
            '`"dead_letter"`: store the event and go on.'
        ),
    ),
    KeyDoc(
        ("ordering",),
        '`"commit"`',
        (
            '`"commit"`: every event in commit order, one request in flight. `"key"`: the events '
            "of one row in commit order, one at a time; different rows concurrently (see "
            "[Guarantees](#guarantees))."
        ),
    ),
    KeyDoc(
        ("max_in_flight",),
        "`16`",
        'With `ordering = "key"`: requests in flight at once, 1 to 256.',
    ),
    KeyDoc(
        ("auth_header",),
        "none",
        "The whole `Authorization` header value (a secret).",
    ),
    KeyDoc(
        ("headers",),
        "`{}`",
        "Extra request headers.",
    ),
    KeyDoc(
        ("signing_secret",),
        "none",
        (
            "`whsec_...`: sign with [Standard Webhooks](https://www.standardwebhooks.com) "
            "(`webhook-id`, `webhook-timestamp`, `webhook-signature`)."
        ),
    ),
    KeyDoc(
        ("event_format",),
        '`"json"`',
        '`"json"`, `"debezium"` or `"cloudevents"` (below).',
    ),
    KeyDoc(
        ("batch_max_events",),
        "`1`",
        "1: one event per request. N: a JSON array of up to N consecutive events.",
    ),
    KeyDoc(
        ("verify_tls",),
        "`true`",
        "Verify the server's certificate.",
    ),
    KeyDoc(
        ("ca_file",),
        "none",
        "PEM file of the authority that signed the server's certificate.",
    ),
)

HOOK0_SINK: tuple[KeyDoc, ...] = (
    KeyDoc(
        ("name", "enabled"),
        '`"hook0"`, `false`',
        "As for HTTP.",
    ),
    KeyDoc(
        ("api_url",),
        "required",
        "e.g. `https://app.hook0.com/api/v1`.",
    ),
    KeyDoc(
        ("api_key",),
        "required",
        "Service token or application secret (a secret).",
    ),
    KeyDoc(
        ("application_id",),
        "required",
        "The application's UUID (the seed's `project_id` is accepted).",
    ),
    KeyDoc(
        ("organization_id",),
        "none",
        "Informational (the seed's `workspace_id` is accepted).",
    ),
    KeyDoc(
        ("labels",),
        '`{ source = "wal2http" }`',
        "At most 8; `schema` and `table` labels are added.",
    ),
    KeyDoc(
        ("tables", "ops", "exclude_columns"),
        "everything",
        "As for HTTP: see [Routing](#routing-what-each-sink-receives).",
    ),
    KeyDoc(
        (
            "event_format",
            "timeout",
            "retries",
            "retry_backoff_ms",
            "retry_max_backoff_secs",
            "on_failure",
            "ordering",
            "max_in_flight",
            "verify_tls",
            "ca_file",
        ),
        "as for HTTP",
        "",
    ),
)

# The README's heading above each table, and the table.
README_TABLES = {
    "### Top level": TOP_LEVEL,
    "### HTTP sink": HTTP_SINK,
    "### Hook0 sink": HOOK0_SINK,
}
