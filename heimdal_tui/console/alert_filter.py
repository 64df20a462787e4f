"""The alerts screen's filter: ``sev:high,critical state:open kind:port_scan dev:laptop words``.

Each ``field:value[,value]`` narrows by severity, state, kind or device (the device by name, address
or MAC, as a substring); other words must all appear in the summary, device or peer. ``state:all``
shows closed alerts too; without a ``state:`` the screen shows the active ones (open and
acknowledged). Severities and states accept their short forms (crit, med, ack, fp).
"""

from __future__ import annotations

from dataclasses import dataclass

from heimdal_tui.detect.model import ALERT_KINDS
from heimdal_tui.sensor.events import AlertRow

SEVERITIES = {"critical": "critical", "crit": "critical", "high": "high", "medium": "medium", "med": "medium",
              "low": "low"}  # fmt: skip
STATES = {"open": "open", "acknowledged": "acknowledged", "ack": "acknowledged", "resolved": "resolved",
          "false_positive": "false_positive", "fp": "false_positive", "false+": "false_positive"}  # fmt: skip
ACTIVE = frozenset({"open", "acknowledged"})
FIELDS = ("sev", "state", "kind", "dev")


class FilterError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AlertFilter:
    severities: frozenset[str] = frozenset()
    states: frozenset[str] = ACTIVE  # empty: every state
    kinds: frozenset[str] = frozenset()
    devices: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    text: str = ""

    def matches(self, alert: AlertRow) -> bool:
        if self.severities and alert.severity not in self.severities:
            return False
        if self.states and alert.state not in self.states:
            return False
        if self.kinds and alert.kind not in self.kinds:
            return False
        if self.devices:
            names = " ".join(filter(None, (alert.device_name, alert.device_ip, alert.device_mac))).lower()
            if not any(d in names for d in self.devices):
                return False
        if self.words:
            haystack = " ".join(
                filter(None, (alert.summary, alert.device_name, alert.peer, alert.kind))
            ).lower()
            if not all(w in haystack for w in self.words):
                return False
        return True

    def describe(self) -> str:
        if not self.text:
            return "active alerts (open and acknowledged)"
        return self.text


def parse_filter(text: str) -> AlertFilter:
    """The filter ``text`` describes; FilterError naming the part that is wrong."""
    severities: set[str] = set()
    states: set[str] | None = None
    kinds: set[str] = set()
    devices: list[str] = []
    words: list[str] = []
    for token in text.lower().split():
        field, sep, value = token.partition(":")
        if not sep or field not in FIELDS:
            words.append(token)
            continue
        values = [v for v in value.split(",") if v]
        if not values:
            raise FilterError(f"{field}: needs a value, e.g. {field}:{_example(field)}")
        if field == "sev":
            for v in values:
                if v not in SEVERITIES:
                    raise FilterError(f"sev:{v}: not a severity (critical, high, medium, low)")
                severities.add(SEVERITIES[v])
        elif field == "state":
            states = states or set()
            for v in values:
                if v == "all":
                    states = set()
                    break
                if v not in STATES:
                    raise FilterError(f"state:{v}: not a state (open, ack, resolved, fp, all)")
                states.add(STATES[v])
        elif field == "kind":
            for v in values:
                matching = [k for k in ALERT_KINDS if v in k]
                if not matching:
                    raise FilterError(
                        f"kind:{v}: no alert kind matches (e.g. {', '.join(ALERT_KINDS[:4])}, ...)"
                    )
                kinds.update(matching)
        else:
            devices.extend(values)
    return AlertFilter(
        severities=frozenset(severities),
        states=ACTIVE if states is None else frozenset(states),
        kinds=frozenset(kinds),
        devices=tuple(devices),
        words=tuple(words),
        text=" ".join(text.split()),
    )


def _example(field: str) -> str:
    return {"sev": "high", "state": "open", "kind": "port_scan", "dev": "laptop"}[field]
