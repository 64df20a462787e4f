"""Alerts on stdout: one JSON object per line, or a readable table."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from heimdal_tui.detect.alerts import Alert
from heimdal_tui.devices.snapshot import iso

SEVERITY_MARK = {"critical": "CRIT", "high": "HIGH", "medium": "MED ", "low": "low "}


def write_jsonl(alerts: Iterable[Alert], out: TextIO) -> None:
    for alert in alerts:
        out.write(json.dumps(alert.to_dict(), ensure_ascii=False) + "\n")


def _cell(text: str | None, width: int) -> str:
    value = text or "-"
    return value if len(value) <= width else value[: width - 1] + "…"


def write_text(alerts: list[Alert], out: TextIO) -> None:
    if not alerts:
        out.write("no alerts\n")
        return
    out.write(
        f"{'first seen (UTC)':<20} {'sev':<4} {'kind':<16} {'device':<22} {'peer':<22} {'n':>4}  summary\n"
    )
    for a in alerts:
        first = (iso(a.first_seen) or "")[:19].replace("T", " ")
        device = a.device.name or a.device.ip or a.device.mac or str(a.device.key)
        out.write(
            f"{first:<20} {SEVERITY_MARK[a.severity.value]} {a.kind:<16} {_cell(device, 22):<22} "
            f"{_cell(a.peer, 22):<22} {a.count:>4}  {a.summary}\n"
        )
    counts: dict[str, int] = {}
    for a in alerts:
        counts[a.severity.value] = counts.get(a.severity.value, 0) + 1
    order = ("critical", "high", "medium", "low")
    out.write(f"{len(alerts)} alerts: " + ", ".join(f"{counts[s]} {s}" for s in order if s in counts) + "\n")
