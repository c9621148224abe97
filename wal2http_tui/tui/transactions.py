"""The Transactions pane: the last transactions received, one delivery mark per sink."""

from __future__ import annotations

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Input

from wal2http_tui.delivery.activity import TxRecord
from wal2http_tui.tui.keyed_table import KeyedTable, Row
from wal2http_tui.tui.marks import mark_cell, marks_legend
from wal2http_tui.tui.messages import Inspect
from wal2http_tui.tui.monitor import Readings
from wal2http_tui.tui.pane import Pane
from wal2http_tui.tui.subjects import transaction_subject
from wal2http_tui.tui.units import clock_time, thousands

LSN_COLUMN = "commit LSN"
SHOWN_TABLES = 3
# Rows in the table: the newest (matching) transactions. The engine keeps the last 500 for the
# filter and the inspector; redrawing hundreds of rows several times a second would cost the
# engine throughput when transactions arrive by the thousand.
TABLE_ROWS = 100
SUBTITLE_MARGIN = 6  # the border's corners and the blanks around its subtitle


def transaction_key(tx: TxRecord) -> str:
    return f"{tx.lsn}/{tx.xid}"


def matches(tx: TxRecord, term: str) -> bool:
    """The filter: part of the xid, or part of a table name (case-insensitive)."""
    term = term.strip().lower()
    return not term or term in str(tx.xid) or any(term in table.lower() for table in tx.tables)


def tables_cell(tables: tuple[str, ...]) -> str:
    shown = ", ".join(tables[:SHOWN_TABLES])
    more = len(tables) - SHOWN_TABLES
    return f"{shown} +{more}" if more > 0 else shown


def transaction_row(tx: TxRecord, sink_names: list[str]) -> Row:
    return (
        Text(str(tx.xid), justify="right"),
        tx.lsn,
        clock_time(tx.commit_time),
        Text(thousands(tx.size), justify="right"),
        *(mark_cell(tx.marks.get(name)) for name in sink_names),
        tables_cell(tx.tables),
    )


class TransactionTable(KeyedTable):
    BINDINGS = [Binding("enter", "select_cursor", "Inspect")]


class TransactionsPane(Pane):
    """Newest first. The cursor stays on its transaction as new ones arrive above it, unless it
    is on the first row, where it follows the newest."""

    NUMBER = 1
    TITLE = "Transactions"
    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._records: dict[str, TxRecord] = {}
        self._readings: Readings | None = None
        self._count = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter: table name or xid (enter keeps it, escape clears)")
        yield TransactionTable()

    @property
    def focus_target(self) -> TransactionTable:
        return self.query_one(TransactionTable)

    @property
    def filter_input(self) -> Input:
        return self.query_one(Input)

    def start_filter(self) -> None:
        self.filter_input.display = True
        self.filter_input.focus()

    def action_clear_filter(self) -> None:
        self.filter_input.value = ""
        self.filter_input.display = False
        self.focus_target.focus()

    @on(Input.Changed)
    def _filter_changed(self) -> None:
        if self._readings is not None:
            self.show_readings(self._readings)

    @on(Input.Submitted)
    def _filter_kept(self) -> None:
        self.filter_input.display = bool(self.filter_input.value)
        self.focus_target.focus()

    def show_readings(self, readings: Readings) -> None:
        self._readings = readings
        table = self.focus_target
        sink_names = [sink.name for sink in readings.sinks]
        table.set_columns(["xid", LSN_COLUMN, "commit time", "changes", *sink_names, "tables"])
        term = self.filter_input.value
        newest_first = reversed(readings.transactions)
        shown = [tx for tx in newest_first if matches(tx, term)][:TABLE_ROWS]
        self._records = {transaction_key(tx): tx for tx in shown}
        following = table.cursor_row == 0
        selected = table.selected_key
        rows = {key: transaction_row(tx, sink_names) for key, tx in self._records.items()}
        table.sync(rows, in_order=True)
        if following or selected not in rows:
            table.move_cursor(row=0)
        else:
            table.select_key(selected)
        total = len(readings.transactions)
        count = f"{len(shown)} of {total}" if term else f"{total}"
        if count != self._count:
            self._count = count
            self._show_subtitle()

    def _show_subtitle(self) -> None:
        """The count and the marks' legend, shortened where the full one would be cut off."""
        head = f"{self._count} · "
        legend = marks_legend(width=self.size.width - SUBTITLE_MARGIN - len(head))
        self.border_subtitle = Content.assemble(head, Content.from_rich_text(legend))

    def on_resize(self, event: events.Resize) -> None:
        if self._count:
            self._show_subtitle()

    @on(DataTable.RowSelected)
    def _inspect(self, event: DataTable.RowSelected) -> None:
        event.stop()
        record = self._records.get(str(event.row_key.value))
        if record is not None and self._readings is not None:
            self.post_message(Inspect(transaction_subject(record, self._readings.state)))
