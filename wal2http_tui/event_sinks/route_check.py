"""What a sink's route makes of the publication's tables: the tables it receives (for
``check``), and what is worth a warning at start (a pattern that matches no table, which is not
an error since the table may be created later; a key column hidden from the receiver)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from wal2http_tui.config.model import BaseSinkConfig
from wal2http_tui.config.table_names import parse_table_pattern
from wal2http_tui.event_sinks.routing import Route
from wal2http_tui.replication.replica_identity import PublishedTable, named


@dataclass
class RouteFindings:
    receives: str  # one line: what the sink receives of the publication
    warnings: list[str] = field(default_factory=list)


def check_route(
    sink: BaseSinkConfig, published: Sequence[PublishedTable], publication: str
) -> RouteFindings:
    route = Route.of(sink)
    received = [t for t in published if route.receives_table(t.schema, t.table)]
    ops = "every operation" if sink.ops is None else ", ".join(sink.ops)
    if sink.tables is None:
        tables = f"every table of publication {publication} ({len(published)})"
    else:
        shown = named([t.name for t in received]) or "none yet"
        tables = f"{len(received)} of the {len(published)} tables of {publication}: {shown}"
    findings = RouteFindings(f"sink {sink.name} receives {ops} of {tables}")
    names = [t.name for t in published]
    for key, patterns in (("tables", sink.tables or ()), ("exclude_columns", sink.exclude_columns)):
        for pattern in patterns:
            parsed = parse_table_pattern(pattern)
            if not any(parsed.matches(t.schema, t.table) for t in published):
                findings.warnings.append(
                    f"sink {sink.name}: {key} pattern {pattern} matches no table of publication "
                    f"{publication} (yet){_did_you_mean(pattern, names)}"
                )
    for table in received:
        hidden_here = route.hidden_columns(table.schema, table.table)
        hidden = [c for c in table.key_columns if c in hidden_here]
        if hidden:
            findings.warnings.append(
                f"sink {sink.name}: exclude_columns hides {', '.join(hidden)} of the key of "
                f"{table.name} ({', '.join(table.key_columns)}): its receiver can no longer "
                "tell that table's rows apart by key"
            )
    return findings


def _did_you_mean(pattern: str, names: list[str]) -> str:
    close = difflib.get_close_matches(pattern, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""
