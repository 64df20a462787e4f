"""When alert changes go to the store: new alerts within a second, refreshes within a minute.

An SD card wears with every page written. One transaction per alert change was ~30,000 a synthetic
hour of a busy 1,000-device LAN, each a few pages of WAL and then of the database: ~900 MB written
an hour for an 8 MB store. Most changes are refreshes of an alert already stored (one more finding
folded in: its count, last_seen and evidence move on), and an alert is refreshed many times an hour.
So :class:`AlertWrites` keeps which alerts changed and hands them out in two streams, each written
in one transaction:

- new alerts, at most every ``new_interval`` seconds of capture time (1 s): what the operator must
  not lose reaches the store at once;
- refreshes, at most every ``refresh_interval`` (60 s), the newest version of each alert once.

Operator actions, the end of input and the sensor stopping take everything at once (:meth:`take_all`),
so what the operator acts on is stored before the action is. Only references to the alerts are kept:
the record is built when written, from the alert as it is then.
"""

from __future__ import annotations

from heimdal_tui.detect.alerts import Alert

NEW_ALERT_INTERVAL = 1.0
REFRESH_INTERVAL = 60.0


class AlertWrites:
    """The alerts whose changes the store has yet to get (module docstring)."""

    __slots__ = ("_new", "_new_at", "_refreshed", "_refreshed_at", "new_interval", "refresh_interval")

    def __init__(
        self, new_interval: float = NEW_ALERT_INTERVAL, refresh_interval: float = REFRESH_INTERVAL
    ) -> None:
        self.new_interval = new_interval
        self.refresh_interval = refresh_interval
        self._new: dict[str, Alert] = {}
        self._refreshed: dict[str, Alert] = {}
        self._new_at = float("-inf")  # capture time new alerts were last handed out
        self._refreshed_at = float("-inf")

    def __len__(self) -> int:
        return len(self._new) + len(self._refreshed)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._new or alert_id in self._refreshed

    def add(self, alert: Alert, new: bool) -> None:
        if new or alert.id in self._new:
            self._new[alert.id] = alert  # not stored yet: its insert carries the newest version
        else:
            self._refreshed[alert.id] = alert

    def due(self, now: float) -> tuple[list[Alert], list[Alert]]:
        """(new, refreshed) alerts whose interval has passed at capture time ``now``."""
        new: list[Alert] = []
        refreshed: list[Alert] = []
        if self._new and now - self._new_at >= self.new_interval:
            new = list(self._new.values())
            self._new.clear()
            self._new_at = now
        if self._refreshed and now - self._refreshed_at >= self.refresh_interval:
            refreshed = list(self._refreshed.values())
            self._refreshed.clear()
            self._refreshed_at = now
        return new, refreshed

    def take_all(self) -> tuple[list[Alert], list[Alert]]:
        """Everything waiting, whatever the time."""
        new, refreshed = list(self._new.values()), list(self._refreshed.values())
        self._new.clear()
        self._refreshed.clear()
        return new, refreshed
