"""One device in depth: who it is, its baseline beside what it does now, its traffic, its alerts.

n names it, R resets its baseline (it learns again for a whole learning period), z freezes or
unfreezes learning, Escape goes back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Sparkline, Static

from heimdal_tui.console import format as fmt
from heimdal_tui.console.screens.prompt import Prompt
from heimdal_tui.console.themes import colours, severity_styles
from heimdal_tui.console.widgets.key_bar import KeyBar

LIST_ROWS = 12


class DeviceDetailScreen(Screen[None]):
    DEFAULT_CSS = """
    DeviceDetailScreen Static {
        padding: 0 1;
        height: auto;
    }
    DeviceDetailScreen #device-spark {
        height: 2;
        margin: 0 1;
    }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="device.back"),
        Binding("n", "label", "Name it", id="device.label", tooltip="Give the device a name of your own"),
        Binding("R", "reset", "Reset baseline", id="device.reset",
                tooltip="Forget its baseline: it learns again for a whole learning period"),
        Binding("z", "freeze", "Freeze learning", id="device.freeze",
                tooltip="Stop (or restart) its baseline absorbing anything new"),
    ]  # fmt: skip

    def __init__(self, key: int) -> None:
        super().__init__()
        self.key = key
        self.detail: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◈")
        with VerticalScroll():
            yield Static(Text("loading…"), id="identity")
            yield Sparkline([], id="device-spark", summary_function=max)
            yield Static(id="compare")
            yield Static(id="volume")
            yield Static(id="device-alerts")
        yield KeyBar()

    def on_mount(self) -> None:
        self.title = "Heimdal"
        self.sub_title = "Device"
        self._load()

    def _send(self, command: str, on_done: Any = None, **args: Any) -> None:
        from heimdal_tui.console.app import HeimdalApp

        app = self.app
        assert isinstance(app, HeimdalApp)
        app.send(command, on_done=on_done, **args)

    def _load(self, _result: object = None) -> None:
        self._send("device_detail", on_done=self._show, key=self.key)

    def _show(self, detail: dict[str, Any]) -> None:
        self.detail = detail
        ident = detail["identity"]
        base = detail["baseline"]
        current = detail["current"]
        head = Text()
        head.append_text(fmt.plain(detail["name"], style="bold"))
        if detail["label"] and ident["hostname"]:
            head.append("  (hostname ")
            head.append_text(fmt.plain(ident["hostname"]))
            head.append(f", from {ident['hostname_source']})")
        head.append("\n")
        head.append(f"{ident['type'].replace('_', ' ')} ({ident['type_confidence']:.0%})  ")
        head.append_text(fmt.plain(ident["vendor"] or "unknown vendor"))
        head.append("  ")
        head.append_text(fmt.plain(ident["mac"] or "no MAC"))
        if ident["randomized_mac"]:
            head.append(" (randomized)")
        head.append("\n")
        head.append_text(fmt.plain(", ".join(ident["ips"]) or "no address"))
        head.append(f"\nseen {ident['first_seen']} .. {ident['last_seen']}")
        if ident["type_reasons"]:
            head.append("\nwhy this type: ", style="dim")
            head.append_text(fmt.plain("; ".join(ident["type_reasons"]), style="dim"))
        if base is not None:
            state = (
                "frozen"
                if base["frozen"]
                else ("mature" if base["mature"] else f"learning {base['maturity']:.0%}")
            )
            head.append(f"\nbaseline: {state}, {base['minutes_observed']} active minutes")
            if base["profile"]:
                head.append("  seeded from profile ")
                head.append_text(fmt.plain(base["profile"]))
        else:
            head.append("\nno baseline yet")
        self.query_one("#identity", Static).update(head)
        self.query_one("#device-spark", Sparkline).data = list(current["sparkline"]) or [0]
        self.query_one("#compare", Static).update(_compare(base, current))
        self.query_one("#volume", Static).update(_volume(base, current))
        self.query_one("#device-alerts", Static).update(
            _alerts(detail["alerts"], severity_styles(colours(self.app.theme_variables)))
        )

    # -- actions -----------------------------------------------------------------------------------
    def action_label(self) -> None:
        current = (self.detail or {}).get("label") or ""

        def apply(text: str | None) -> None:
            if text is not None:
                self._send("label_device", on_done=self._load, key=self.key, label=text)

        self.app.push_screen(Prompt("Name this device (empty: no name of your own)", value=current), apply)

    def action_reset(self) -> None:
        def apply(reason: str | None) -> None:
            if reason is not None:
                self._send("reset_baseline", on_done=self._load, key=self.key, reason=reason)

        self.app.push_screen(
            Prompt("Reset this device's baseline? It learns again for a whole learning period. "
                   "Why? (Enter resets, Escape keeps it)"),
            apply,
        )  # fmt: skip

    def action_freeze(self) -> None:
        base = (self.detail or {}).get("baseline")
        if base is None:
            self.notify("this device has no baseline yet", severity="warning", timeout=3)
            return
        self._send("freeze_learning", on_done=self._load, key=self.key, frozen=not base["frozen"])

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Device: Name it", "A name of your own for this device", self.action_label)
        yield SystemCommand("Device: Reset its baseline", "It learns again for a whole learning period",
                            self.action_reset)  # fmt: skip
        yield SystemCommand("Device: Freeze / unfreeze learning", "Its baseline absorbs nothing new",
                            self.action_freeze)  # fmt: skip
        yield SystemCommand("Device: Back to the list", "Close the device", self.app.pop_screen)


def _compare(base: dict[str, Any] | None, current: dict[str, Any]) -> Table:
    """Baseline beside current: destinations, services and protocols; new ones marked."""
    table = Table(expand=True, show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("Baseline: destinations", ratio=1, no_wrap=True, overflow="ellipsis")
    table.add_column("Now: busiest peers", ratio=1, no_wrap=True, overflow="ellipsis")
    known = [
        fmt.plain(f"{d['value']} ({d['count']})") for d in (base or {}).get("destinations", [])[:LIST_ROWS]
    ]
    now = []
    for d in current["destinations"][:LIST_ROWS]:
        text = fmt.plain(
            f"{d['ip']}" + (f" {d['name']}" if d["name"] else "") + f"  {fmt.bytes_(d['bytes'])}"
        )
        if d["new"]:
            text = Text("NEW ", style="bold") + text
        now.append(text)
    _rows(table, known, now)
    table.add_row(Text(""), Text(""))
    table.add_row(
        Text("Baseline: services / protocols", style="bold"), Text("Now: services / protocols", style="bold")
    )
    known = [fmt.plain(f"{s['value']} ({s['count']})") for s in (base or {}).get("services", [])[:LIST_ROWS]]
    known += [fmt.plain(p["value"]) for p in (base or {}).get("protocols", [])[:LIST_ROWS]]
    now = [
        (Text("NEW ", style="bold") if s["new"] else Text("")) + fmt.plain(s["service"])
        for s in current["services"][:LIST_ROWS]
    ]
    now += [
        (Text("NEW ", style="bold") if p["new"] else Text("")) + fmt.plain(p["protocol"])
        for p in current["protocols"]
    ]
    _rows(table, known or [Text("(nothing learned yet)", style="dim")], now)
    return table


def _marked(text: str, new: bool) -> Text:
    return (Text("NEW ", style="bold") if new else Text("")) + fmt.plain(text)


def _rows(table: Table, left: list[Text], right: list[Text]) -> None:
    for i in range(max(len(left), len(right))):
        table.add_row(left[i] if i < len(left) else Text(""), right[i] if i < len(right) else Text(""))


def _volume(base: dict[str, Any] | None, current: dict[str, Any]) -> Table:
    table = Table(title="Volume by hour (UTC): bytes per active minute", title_justify="left",
                  show_edge=False, box=None, header_style="bold", title_style="bold")  # fmt: skip
    table.add_column("Hour", justify="right")
    table.add_column("Baseline out", justify="right")
    table.add_column("spread", justify="right")
    table.add_column("Baseline in", justify="right")
    table.add_column("Now out", justify="right")
    table.add_column("Now in", justify="right")
    hours = {h["hour"]: h for h in (base or {}).get("volume_by_hour", [])}
    now_hour = current.get("hour")
    for hour in sorted(set(hours) | ({now_hour} if now_hour is not None else set())):
        h = hours.get(hour)
        is_now = hour == now_hour
        table.add_row(
            f"{hour:02d}",
            fmt.bytes_(h["bytes_out_median"]) if h else "-",
            fmt.bytes_(h["bytes_out_spread"]) if h else "-",
            fmt.bytes_(h["bytes_in_median"]) if h else "-",
            fmt.bytes_(current["bytes_out_per_minute"]) if is_now else "",
            fmt.bytes_(current["bytes_in_per_minute"]) if is_now else "",
        )
    return table


def _alerts(alerts: list[dict[str, Any]], styles: dict[str, str]) -> Text:
    text = Text(f"Alerts ({len(alerts)})\n", style="bold")
    for a in alerts[:20]:
        sev = a["severity"]
        text.append(f"{fmt.SEVERITY_MARK[sev]} {fmt.SEVERITY_LABEL[sev]:<4} ", style=styles[sev])
        text.append(
            f"{fmt.stamp(a['last_seen'])} {fmt.STATE_LABEL.get(a['state'], a['state']):<8} {a['kind']:<16} "
        )
        text.append_text(fmt.plain(a["summary"], 200))
        text.append("\n")
    if not alerts:
        text.append("none", style="dim")
    return text
