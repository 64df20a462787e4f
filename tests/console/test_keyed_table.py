"""KeyedTable's cursor rules, on a bare app (no sensor): a table follows the row under the cursor
as rows re-sort; a ranking (pin_top, the overview's top talkers) keeps its first row highlighted
until the operator moves the cursor, then follows that row like any other table."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from heimdal_tui.console.widgets.keyed_table import Cell, Column, KeyedTable


class _Tables(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable([Column("name", "Name"), Column("rate", "Rate", 8)], id="follow")
        yield KeyedTable([Column("name", "Name"), Column("rate", "Rate", 8)], id="ranking", pin_top=True)

    def on_mount(self) -> None:
        for table in self.query(KeyedTable):
            table.order_by("rate", reverse=True)


def _rows(rates: dict[str, int]) -> dict[str, list[Cell]]:
    return {name: [Cell(name, sort=name), Cell(str(rate), sort=rate)] for name, rate in rates.items()}


def test_a_ranking_keeps_its_top_row_until_the_operator_moves():
    async def run() -> None:
        app = _Tables()
        async with app.run_test(size=(60, 20)) as pilot:
            follow = app.query_one("#follow", KeyedTable)
            ranking = app.query_one("#ranking", KeyedTable)
            for table in (follow, ranking):
                table.show(_rows({"a": 3, "b": 2, "c": 1}))
            await pilot.pause()
            assert follow.cursor_key == ranking.cursor_key == "a"

            # "c" becomes the busiest: the plain table's cursor stays on "a" (now lower down),
            # the ranking's stays on its first row, now "c".
            for table in (follow, ranking):
                table.show(_rows({"a": 3, "b": 2, "c": 9}))
            await pilot.pause()
            assert follow.cursor_key == "a" and follow.cursor_coordinate.row == 1
            assert ranking.cursor_key == "c" and ranking.cursor_coordinate.row == 0

            # Once the operator moves the ranking's cursor, it follows that row.
            ranking.focus()
            await pilot.press("down")
            assert ranking.cursor_key == "a"
            ranking.show(_rows({"a": 3, "b": 20, "c": 9}))
            await pilot.pause()
            assert ranking.cursor_key == "a" and ranking.cursor_coordinate.row == 2

    asyncio.run(run())


def test_unchanged_rows_are_not_rewritten():
    """show() with the same values (in new Cell objects) changes nothing and says so; a row whose
    one value moved gets that one cell, and every other cell stays the very object it was."""

    async def run() -> None:
        app = _Tables()
        async with app.run_test(size=(60, 20)) as pilot:
            table = app.query_one("#follow", KeyedTable)
            assert table.show(_rows({"a": 3, "b": 2, "c": 1}))
            await pilot.pause()
            before = {key: table.get_row(key) for key in "abc"}

            assert not table.show(_rows({"a": 3, "b": 2, "c": 1}))
            for key in "abc":
                assert all(new is old for new, old in zip(table.get_row(key), before[key], strict=True)), key

            assert table.show(_rows({"a": 3, "b": 5, "c": 1}))
            for key in "ac":
                assert all(new is old for new, old in zip(table.get_row(key), before[key], strict=True))
            name, rate = table.get_row("b")
            assert name is before["b"][0]
            assert rate is not before["b"][1] and str(rate) == "5"
            assert table.cursor_key == "a"  # the sort moved "b" to the top, not the cursor

    asyncio.run(run())
