"""A DataTable kept in step with a keyed set of rows, in place, that fits its width.

:meth:`KeyedTable.show` takes the rows that should be there (key -> {column: cell}) and changes only
what differs: update_cell for cells that changed, remove_row for keys that went, add_row for new
ones, and a sort only when something was added or a sort value moved. The cursor stays on the row
(the key) it was on, and a viewport scrolled away from the top keeps showing the same rows, so
rows arriving never move what the operator is looking at. It never clears on a refresh. A ranking
(``pin_top``, e.g. the top talkers) keeps the cursor on its first row instead, until the operator
moves it.

Columns fit the width: one column may be ``flex`` (it takes what the others leave), and a column
with ``min_width`` shows only when the table is at least that wide (at 80 columns the peer and the
count give way to the summary). Only a resize that changes the layout rebuilds the columns.

Cells are :class:`Cell`: Rich Text (never markup) carrying the value the column sorts by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual.scroll_view import ScrollView
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from heimdal_tui.common.text import safe_text

CELL_PADDING = 2  # DataTable pads each cell by one on either side
SCROLLBAR = 2
MIN_FLEX = 12


class Cell(Text):
    """A table cell: literal text (network-derived text is escaped, never parsed as markup) and
    the value its column sorts by."""

    def __init__(self, text: object = "", sort: Any = None, style: str = "", limit: int = 500) -> None:
        shown = "" if text is None else safe_text(str(text), limit)
        super().__init__(shown, style=style, no_wrap=True, overflow="ellipsis")
        self.sort = shown.lower() if sort is None else sort

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and Text.__eq__(self, other) and self.sort == other.sort

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int | None = None  # None: flex (takes the width the others leave)
    min_width: int = 0  # shown only when the table is at least this wide


def _sort_key(value: Any) -> Any:
    sort = value.sort if isinstance(value, Cell) else str(value)
    # None sorts last whatever the direction's types.
    return (sort is None, sort if sort is not None else 0)


class KeyedTable(DataTable[Text]):
    def __init__(self, columns: Sequence[Column], *, pin_top: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self.spec = list(columns)
        self.pin_top = pin_top
        self._style_seen: tuple[Any, ...] | None = None
        self.operator_moved = False  # the operator moved the cursor (then it follows its row)
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.inserted_above = 0  # rows that arrived above the viewport in the last show()
        self._index = {c.key: i for i, c in enumerate(self.spec)}
        self._rows: dict[str, Sequence[Cell]] = {}
        self._shown: dict[str, Sequence[Cell]] = {}  # what show() was last given, by key
        self._layout: tuple[tuple[str, int | None], ...] = ()
        # Columns exist from the start (a screen may draw before this widget is mounted); the
        # first resize fits them to the width.
        self._apply_layout(self._fit(80))

    # -- layout ------------------------------------------------------------------------------------
    def _fit(self, width: int) -> tuple[tuple[str, int | None], ...]:
        shown = [c for c in self.spec if width >= c.min_width]
        fixed = sum((c.width or 0) + CELL_PADDING for c in shown if c.width is not None)
        flex = max(MIN_FLEX, width - fixed - CELL_PADDING - SCROLLBAR)
        return tuple((c.key, c.width if c.width is not None else flex) for c in shown)

    def _apply_layout(self, layout: tuple[tuple[str, int | None], ...]) -> None:
        anchor = self._anchor()
        self._layout = layout
        labels = {c.key: c.label for c in self.spec}
        self.clear(columns=True)
        for key, width in layout:
            self.add_column(labels[key], key=key, width=width)
        rows, self._rows, self._shown = self._rows, {}, {}
        if rows:
            self.show(rows)
        self._restore(anchor, None)

    def on_resize(self, event: events.Resize) -> None:
        layout = self._fit(event.size.width)
        if layout != self._layout:
            self._apply_layout(layout)

    @property
    def column_keys(self) -> list[str]:
        return [key for key, _ in self._layout]

    # -- rows --------------------------------------------------------------------------------------
    @property
    def cursor_key(self) -> str | None:
        if not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:
            return None
        return None if row_key.value is None else str(row_key.value)

    def _anchor(self) -> str | None:
        """The row the cursor should stay on through a change (None: a ranking's first row)."""
        if self.pin_top and not self.operator_moved:
            return None
        return self.cursor_key

    def order_by(self, column: str | None, reverse: bool = False) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        if column is not None and column in self.column_keys and self.row_count:
            anchor = self._anchor()
            self.sort(column, key=_sort_key, reverse=reverse)
            self._restore(anchor, None)

    def show(self, rows: Mapping[str, Sequence[Cell]]) -> bool:
        """Make the table hold exactly ``rows`` (key -> one cell per column of the spec, in its
        order); True when anything changed. Cells of columns not shown at this width are kept for
        when they are. Passing a row's previous cell sequence object again skips it outright:
        screens cache cells per row so a thousand unchanged devices cost nothing."""
        anchor = self._anchor()
        top_key = self._top_key()
        columns = self.column_keys
        index = [self._index[c] for c in columns]
        changed = resort = False
        for row_key in [k for k in self.rows if k.value not in rows]:
            self.remove_row(row_key)
            changed = True
        previous = self._shown
        column_keys = [ColumnKey(c) for c in columns]
        data = self._data  # DataTable's own cell store: written in bulk, refreshed once below
        updated = False
        for key, cells in rows.items():
            if previous.get(key) is cells:
                continue  # the very same cells as last time: nothing in this row moved
            row_key = RowKey(key)
            current = data.get(row_key)
            if current is None:
                self.add_row(*(cells[i] for i in index), key=key)
                changed = resort = True
                continue
            for column, column_key, i in zip(columns, column_keys, index, strict=True):
                cell = cells[i]
                old = current.get(column_key)
                if old is not cell and old != cell:
                    resort |= column == self.sort_column
                    current[column_key] = cell
                    updated = True
        if updated:
            # What update_cell does per cell, once for the lot: a thousand refreshes cost more
            # than drawing the rows in view.
            self._update_count += 1
            self.refresh()
            changed = True
        self._shown = self._rows = dict(rows)
        if resort and self.sort_column in columns:
            self.sort(self.sort_column, key=_sort_key, reverse=self.sort_reverse)
        self.inserted_above = 0
        if changed:
            self._restore(anchor, top_key)
        return changed

    # -- styles --------------------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        # DataTable drops every rendered cell on any style update, and Textual sends one each time
        # the screen is shown again: re-rendering a screenful of cells is most of a screen switch.
        # Keep them when nothing a cell is drawn with changed (theme, own style, component styles).
        if not self.is_mounted:
            super().notify_style_update()
            return
        signature = self._style_signature()
        if signature == self._style_seen:
            ScrollView.notify_style_update(self)
            self.refresh()
            return
        self._style_seen = signature
        super().notify_style_update()

    def _style_signature(self) -> tuple[Any, ...]:
        get = self.get_component_rich_style
        return (
            self.app.theme,
            self.rich_style,
            self.has_focus,
            self.show_cursor,
            self.cursor_type,
            self.zebra_stripes,
            *(get(name, partial=True) for name in sorted(self.COMPONENT_CLASSES)),
        )

    # -- the operator's own moves ------------------------------------------------------------------
    def action_cursor_up(self) -> None:
        self.operator_moved = True
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        self.operator_moved = True
        super().action_cursor_down()

    def action_page_up(self) -> None:
        self.operator_moved = True
        super().action_page_up()

    def action_page_down(self) -> None:
        self.operator_moved = True
        super().action_page_down()

    def action_scroll_top(self) -> None:
        self.operator_moved = True
        super().action_scroll_top()

    def action_scroll_bottom(self) -> None:
        self.operator_moved = True
        super().action_scroll_bottom()

    def on_mouse_down(self) -> None:
        self.operator_moved = True

    def _top_key(self) -> str | None:
        """The key of the first row in view (None at the very top: then new rows may show)."""
        first = int(self.scroll_y)
        if first <= 0 or first >= self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate._replace(row=first, column=0))
        return None if row_key.value is None else str(row_key.value)

    def _restore(self, anchor: str | None, top_key: str | None) -> None:
        if top_key is not None and RowKey(top_key) in self.rows:
            # Scrolled away from the top: keep the same rows in view; count what came in above.
            first = self.get_row_index(top_key)
            self.inserted_above = max(0, first - int(self.scroll_y))
            self.scroll_to(y=first, animate=False, immediate=True)
        if anchor is not None and RowKey(anchor) in self.rows:
            self.move_cursor(row=self.get_row_index(anchor), scroll=top_key is None)
        elif self.pin_top and not self.operator_moved and self.row_count:
            self.move_cursor(row=0, scroll=False)


class RowCache:
    """Cells per row key, rebuilt only when the row's source value changed (compared with ==).

    Hands :meth:`KeyedTable.show` the same cell sequence object for an unchanged row, which it
    then skips without comparing a cell.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Any, Sequence[Cell]]] = {}

    def cells(self, key: str, value: Any, build: Callable[[], Sequence[Cell]]) -> Sequence[Cell]:
        hit = self._cache.get(key)
        if hit is not None and hit[0] == value:
            return hit[1]
        cells = build()
        if hit is not None:
            # Keep the old objects of the cells that did not change: the table skips them by identity.
            cells = [old if old == new else new for old, new in zip(hit[1], cells, strict=True)]
        self._cache[key] = (value, cells)
        return cells

    def columns(self, key: str, values: Sequence[Any], make: Callable[[int], Cell]) -> Sequence[Cell]:
        """Cells of a row from one source value per column: ``make(i)`` builds column i only
        when its value changed since the last call for ``key``."""
        hit = self._cache.get(key)
        if hit is None:
            cells: Sequence[Cell] = [make(i) for i in range(len(values))]
        else:
            old_values, old_cells = hit
            if old_values == values:
                return old_cells
            cells = [old_cells[i] if old_values[i] == v else make(i) for i, v in enumerate(values)]
        self._cache[key] = (values, cells)
        return cells

    def keep(self, keys: Iterable[str]) -> None:
        """Forget rows no longer shown."""
        wanted = set(keys)
        for key in [k for k in self._cache if k not in wanted]:
            del self._cache[key]

    def clear(self) -> None:
        self._cache.clear()
