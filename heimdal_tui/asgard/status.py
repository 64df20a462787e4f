"""What the link shows: immutable snapshots for the console, the CLI and tests (JSON round trip)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

LINK_STATES = ("disabled", "idle", "sending", "backoff", "paused", "auth_failed")
ITEM_STATES = ("queued", "sending", "waiting", "rejected")
MAX_ITEM_VIEWS = 200


@dataclass(frozen=True, slots=True)
class SyncItemView:
    """One undelivered item. ``state``: queued (due now), sending (in a request now), waiting (a
    retry is scheduled: ``next_retry``) or rejected (Asgard refused it; it stays until dropped or
    retried). Times are wall-clock epoch seconds; ``size`` is the payload's bytes."""

    id: str
    kind: str
    priority: int
    state: str
    attempts: int
    created: float
    next_retry: float | None
    last_error: str | None
    size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncItemView:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """The link at one moment. Counters (``sent`` .. ``dropped``) are lifetime totals kept in the
    store; ``depth`` counts pending items, ``rejected`` refused ones; ``items`` the first
    :data:`MAX_ITEM_VIEWS` undelivered items by priority. ``url`` never carries the key."""

    configured: bool
    reason: str | None
    state: str
    url: str | None
    depth: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    rejected: int = 0
    throughput_per_minute: float = 0.0
    next_retry: float | None = None
    last_error: str | None = None
    intel_version: int = 0
    intel_indicators: int = 0
    intel_profiles: int = 0
    sensor_id: str | None = None
    max_items: int = 0
    warnings: tuple[str, ...] = ()
    items: tuple[SyncItemView, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["warnings"] = list(self.warnings)
        out["items"] = [item.to_dict() for item in self.items]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncStatus:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["warnings"] = tuple(data.get("warnings") or ())
        values["items"] = tuple(SyncItemView.from_dict(item) for item in data.get("items") or ())
        return cls(**values)
