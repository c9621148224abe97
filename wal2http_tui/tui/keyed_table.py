"""A DataTable updated by row key: only rows and cells that changed are touched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

REBUILD_AFTER_REMOVALS = 8
Cell = str | Text
Row = Sequence[Cell]


class KeyedTable(DataTable):
    """``sync(rows)`` makes the table hold exactly ``rows`` (key -> cells), in their order for
    new keys, adding, updating and removing rows by key instead of rebuilding the table.

    With ``set_columns(labels, keep=...)`` the table shows only the columns that fit its width
    whole, taken in the ``keep`` order (the most useful first) and shown in ``labels`` order:
    never a horizontal scrollbar, never a column cut in the middle."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._shown: dict[str, tuple[Cell, ...]] = {}
        self._labels: tuple[str, ...] = ()
        self._keep: tuple[str, ...] | None = None  # None: every column, always
        self._rows: dict[str, tuple[Cell, ...]] = {}  # every cell, shown or not

    def set_columns(self, labels: Sequence[str], *, keep: Sequence[str] | None = None) -> None:
        """(Re)define the columns; the rows are dropped (columns change rarely: sinks set).
        ``keep``: the columns in the order they are kept when not all fit (see the class)."""
        self._labels = tuple(labels)
        self._keep = None if keep is None else tuple(keep)
        self._rows.clear()
        self._show_columns(self._fitting())

    def _show_columns(self, labels: tuple[str, ...]) -> bool:
        if tuple(str(column.label) for column in self.columns.values()) == labels:
            return False
        self.clear(columns=True)
        self._shown.clear()
        for label in labels:
            self.add_column(label, key=label)
        return True

    def _fitting(self) -> tuple[str, ...]:
        """The columns to show at the table's width (all of them before it has one)."""
        room = self.size.width - (
            self.scrollbar_size_vertical if self.show_vertical_scrollbar else 0
        )
        if self._keep is None or room <= 0:
            return self._labels
        widths = {label: cell_len(label) for label in self._labels}
        for cells in self._rows.values():
            for label, cell in zip(self._labels, cells, strict=True):
                width = cell.cell_len if isinstance(cell, Text) else cell_len(cell)
                widths[label] = max(widths[label], width)
        kept: set[str] = set()
        for label in self._keep:
            needed = widths[label] + 2 * self.cell_padding
            if needed <= room:
                kept.add(label)
                room -= needed
        return tuple(label for label in self._labels if label in kept)

    def on_resize(self) -> None:
        if self._keep is not None and self._show_columns(self._fitting()):
            self.sync(self._rows)

    def sync(self, rows: Mapping[str, Row], *, in_order: bool = False) -> bool:
        """Show ``rows``; True when rows were added (the caller may want to re-sort).

        ``in_order``: ``rows`` are in display order; when any is new or they changed places,
        the table is rebuilt in that order (new rows usually belong at the top, where add_row
        cannot put them)."""
        if self._keep is not None:
            self._rows = {key: tuple(cells) for key, cells in rows.items()}
            self._show_columns(self._fitting())
            indices = [self._labels.index(str(column.label)) for column in self.columns.values()]
            rows = {key: [cells[i] for i in indices] for key, cells in self._rows.items()}
        gone = [key for key in self._shown if key not in rows]
        rebuild = in_order and list(rows) != [key for key in self._shown if key in rows]
        if rebuild or len(gone) > REBUILD_AFTER_REMOVALS:
            # DataTable.remove_row renumbers every row: past a few, building anew is cheaper.
            self.clear()
            self._shown.clear()
            gone = []
        for key in gone:
            self.remove_row(key)
            del self._shown[key]
        added = False
        columns = list(self.columns)
        for key, cells in rows.items():
            cells = tuple(cells)
            shown = self._shown.get(key)
            if shown is None:
                self.add_row(*cells, key=key)
                added = True
            elif shown != cells:
                for column, old, new in zip(columns, shown, cells, strict=True):
                    if old != new:
                        self.update_cell(key, column, new)
            self._shown[key] = cells
        return added and not rebuild

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, or None when the table is empty."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def select_key(self, key: str | RowKey) -> None:
        self.move_cursor(row=self.get_row_index(key))
