"""An alert in full: what, who, when, and the evidence: the baseline beside what was observed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from heimdal_tui.console import format as fmt
from heimdal_tui.console.screens.prompt import Prompt
from heimdal_tui.console.themes import colours, severity_styles
from heimdal_tui.console.widgets.key_bar import KeyBar
from heimdal_tui.console.widgets.keyed_table import Cell, Column, KeyedTable

MAX_EVIDENCE_ITEMS = 40


class AlertDetailScreen(Screen[None]):
    DEFAULT_CSS = """
    AlertDetailScreen #alert-head {
        height: auto;
        padding: 0 1;
        background: $surface;
    }
    AlertDetailScreen #evidence {
        height: 1fr;
    }
    AlertDetailScreen #history {
        height: auto;
        max-height: 8;
        padding: 0 1;
    }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
        Binding("a", "triage('acknowledge')", "Ack", id="detail.acknowledge", tooltip="Acknowledge this alert"),
        Binding("r", "triage('resolve')", "Resolve", id="detail.resolve", tooltip="Resolve this alert"),
        Binding("f", "triage('false_positive')", "False +", id="detail.false_positive",
                tooltip="False positive (asks a reason): the behaviour joins the baseline or allowlist"),
        Binding("s", "triage('snooze')", "Snooze", id="detail.snooze", tooltip="Snooze (asks how long)"),
        Binding("o", "triage('reopen')", "Reopen", show=False, id="detail.reopen"),
    ]  # fmt: skip

    def __init__(self, alert_id: str) -> None:
        super().__init__()
        self.alert_id = alert_id
        self.detail: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◈")
        with VerticalScroll():
            yield Static(Text("loading…"), id="alert-head")
            yield KeyedTable(
                [Column("item", "Evidence", 28), Column("value", "Value")], id="evidence", cursor_type="none"
            )
            yield Static(id="history")
        yield KeyBar()

    def on_mount(self) -> None:
        self.title = "Heimdal"
        self.sub_title = "Alert"
        self._load()

    def _load(self) -> None:
        from heimdal_tui.console.app import HeimdalApp

        app = self.app
        assert isinstance(app, HeimdalApp)
        app.send("alert_detail", on_done=self._show, id=self.alert_id)

    def _show(self, detail: dict[str, Any]) -> None:
        self.detail = detail
        alert = detail["alert"]
        styles = severity_styles(colours(self.app.theme_variables))
        head = Text()
        sev = alert["severity"]
        head.append(f"{fmt.SEVERITY_MARK[sev]} {sev.upper()} ", style=styles[sev])
        head.append(f"{alert['kind']}  ", style="bold")
        head.append(
            f"score {alert['score']:.1f}/10   state {fmt.STATE_LABEL.get(alert['state'], alert['state'])}\n"
        )
        head.append_text(fmt.plain(alert["summary"]))
        head.append("\n")
        head.append("Device ", style="bold")
        head.append_text(fmt.plain(alert["device_name"]))
        for extra in (alert["device_ip"], alert["device_mac"]):
            if extra:
                head.append("  ")
                head.append_text(fmt.plain(extra))
        if alert["peer"]:
            head.append("   Peer ", style="bold")
            head.append_text(fmt.plain(alert["peer"]))
        head.append("\n")
        head.append("First seen ", style="bold")
        head.append(f"{fmt.stamp(alert['first_seen'])}   ")
        head.append("last ", style="bold")
        head.append(f"{fmt.stamp(alert['last_seen'])} UTC   ")
        head.append("count ", style="bold")
        head.append(str(alert["count"]))
        self.query_one("#alert-head", Static).update(head)
        rows = evidence_rows(alert.get("evidence") or {})
        self.query_one("#evidence", KeyedTable).show(
            {f"{i:03d}": [Cell(k, sort=i), Cell(v)] for i, (k, v) in enumerate(rows[:MAX_EVIDENCE_ITEMS])}
        )
        history = Text("Triage history\n", style="bold")
        if not detail.get("history"):
            history.append("none yet", style="dim")
        for entry in detail.get("history", []):
            history.append(f"{fmt.stamp(entry.get('ts'))}  {entry.get('action')}  ")
            history.append_text(fmt.plain(entry.get("reason") or ""))
            history.append("\n")
        self.query_one("#history", Static).update(history)

    def action_triage(self, action: str) -> None:
        from heimdal_tui.console.app import HeimdalApp

        app = self.app
        assert isinstance(app, HeimdalApp)

        def reload(_result: object) -> None:
            self.notify(f"alert {action.replace('_', ' ')}: done", timeout=3)
            self._load()

        ids = [self.alert_id]
        if action == "false_positive":
            app.push_screen(
                Prompt("Why is this alert a false positive? (goes into the audit trail)",
                       check=lambda text: None if text else "a reason is needed"),
                lambda reason: app.send("false_positive", on_done=reload, ids=ids, reason=reason) if reason else None,
            )  # fmt: skip
        elif action == "snooze":
            from heimdal_tui.console.screens.alerts import duration_problem

            app.push_screen(
                Prompt("Snooze for how long? (capture time)", value="1h", check=duration_problem),
                lambda d: app.send("snooze", on_done=reload, ids=ids, duration=d) if d else None,
            )
        else:
            app.send(action, on_done=reload, ids=ids)

    def palette_commands(self) -> Iterable[SystemCommand]:
        for action, title in (("acknowledge", "Acknowledge"), ("resolve", "Resolve"),
                              ("false_positive", "Mark false positive"), ("snooze", "Snooze"),
                              ("reopen", "Reopen")):  # fmt: skip
            yield SystemCommand(f"Alert: {title}", "This alert", lambda a=action: self.action_triage(a))
        yield SystemCommand("Alert: Back to the queue", "Close the evidence", self.app.pop_screen)


def evidence_rows(evidence: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Evidence flattened to (item, value) lines; a baseline value sits right beside the observed."""
    rows: list[tuple[str, str]] = []
    keys = sorted(evidence, key=lambda k: (_pair_rank(k), k))
    for key in keys:
        value = evidence[key]
        name = f"{prefix}{key}".replace("_", " ")
        if isinstance(value, dict):
            rows.extend(evidence_rows(value, prefix=f"{prefix}{key}."))
        elif isinstance(value, list):
            shown = ", ".join(_short(v) for v in value[:12]) + (
                f", … ({len(value)} in all)" if len(value) > 12 else ""
            )
            rows.append((name, shown))
        else:
            rows.append((name, _short(value)))
    return rows


def _pair_rank(key: str) -> tuple[str, int]:
    # "baseline_x" and "observed_x" (or "x" / "baseline_x") sort next to each other.
    for word in ("baseline_", "observed_", "expected_"):
        if key.startswith(word):
            return key[len(word) :], 0 if word == "baseline_" else 1
    return key, 1


def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
