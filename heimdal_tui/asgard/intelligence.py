"""Intelligence from Asgard: parsed, checked, kept in the store, applied to the running detection.

``GET /v1/intelligence?since=V`` answers with a version and either the whole set (``full``) or
what changed since V (indicators added or replaced, indicators withdrawn, profiles added or
replaced). Indicators go into :class:`~heimdal_tui.detect.intel.ThreatIntel` with the source
``asgard`` (``asgard:<feed>`` when Asgard names a feed), their confidence and expiry, so the
threat_intel detector matches them like any list; golden profiles go into
:attr:`BaselineBook.profiles <heimdal_tui.detect.learning.BaselineBook.profiles>`, where they seed
the baselines of devices of that type seen from then on (the baseline records ``type@version``).
Both are kept in the store and applied again at start.

A bad entry is skipped and reported; it never stops the others.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from heimdal_tui.common.text import safe_text
from heimdal_tui.detect.baseline import GoldenProfile, load_profiles
from heimdal_tui.detect.intel import ThreatIntel
from heimdal_tui.detect.learning import BaselineBook
from heimdal_tui.store import Store

SOURCE = "asgard"
MAX_PROBLEMS = 20
MAX_INDICATORS = 1_000_000


@dataclass
class IntelUpdate:
    version: int
    full: bool
    indicators: list[dict[str, Any]] = field(default_factory=list)
    withdrawn: list[tuple[str, str]] = field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    skipped: int = 0

    def problem(self, text: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(safe_text(text, 300))


def parse_update(data: Any, since: int) -> IntelUpdate:
    """An update from the JSON Asgard sent. ValueError when the document as a whole is unusable
    (not an object, no version, a version going backwards)."""
    if not isinstance(data, Mapping):
        raise ValueError("the intelligence answer is not a JSON object")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError("the intelligence answer has no integer version")
    full = bool(data.get("full", True))
    if version < since and not full:
        raise ValueError(f"the intelligence version went back from {since} to {version}")
    update = IntelUpdate(version=version, full=full)
    scratch = ThreatIntel()  # canonicalizes and checks each indicator exactly as the detector will
    raw_indicators = data.get("indicators") or []
    if not isinstance(raw_indicators, list):
        raise ValueError("'indicators' must be a list")
    for number, entry in enumerate(raw_indicators[:MAX_INDICATORS]):
        try:
            if not isinstance(entry, Mapping):
                raise ValueError("not an object")
            value = entry.get("indicator")
            if not isinstance(value, str):
                raise ValueError("no indicator")
            feed = entry.get("source") or ""
            indicator = scratch.add(
                value,
                str(entry.get("type") or ""),
                confidence=entry.get("confidence"),
                expiry=entry.get("expiry"),
            )
            update.indicators.append(
                {
                    "value": indicator.value,
                    "type": indicator.type,
                    "confidence": indicator.confidence,
                    "feed": safe_text(str(feed), 64) if feed else "",
                    "expiry": indicator.expiry,
                }
            )
        except (ValueError, TypeError) as exc:
            update.problem(f"indicators[{number}]: {exc}")
    for number, entry in enumerate(data.get("withdrawn") or []):
        if isinstance(entry, Mapping) and isinstance(entry.get("indicator"), str):
            try:
                found = scratch.add(entry["indicator"], str(entry.get("type") or ""))
            except ValueError as exc:
                update.problem(f"withdrawn[{number}]: {exc}")
                continue
            update.withdrawn.append((found.value, found.type))
        else:
            update.problem(f"withdrawn[{number}]: not an indicator object")
    profiles = data.get("profiles") or {}
    if not isinstance(profiles, Mapping):
        raise ValueError("'profiles' must be an object of device type -> profile")
    for device_type, body in profiles.items():
        try:
            if not isinstance(body, Mapping):
                raise ValueError("expected an object")
            checked = dict(body)
            checked.setdefault("version", str(version))
            load_profiles({"version": str(version), "profiles": {str(device_type): checked}})
        except (ValueError, TypeError, IndexError) as exc:
            update.problem(f"profiles.{device_type}: {exc}")
            continue
        update.profiles[safe_text(str(device_type), 64)] = checked
    return update


def _source(feed: str) -> str:
    return f"{SOURCE}:{feed}" if feed else SOURCE


def is_asgard_source(source: str) -> bool:
    return source == SOURCE or source.startswith(SOURCE + ":")


class IntelligenceBook:
    """The intelligence kept in the store, and the detection engines it is applied to."""

    def __init__(self, store: Store | None) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._targets: list[tuple[ThreatIntel | None, BaselineBook | None]] = []
        self._profile_types: dict[int, set[str]] = {}  # id(book) -> the types Asgard gave it

    @property
    def version(self) -> int:
        return self.store.intel_version() if self.store is not None else 0

    def counts(self) -> tuple[int, int]:
        if self.store is None:
            return 0, 0
        return len(self.store.intel_indicators()), len(self.store.intel_profiles())

    def attach(self, intel: ThreatIntel | None, book: BaselineBook | None, now: float) -> None:
        """Apply what the store holds to ``intel`` and ``book`` now, and every update from now on."""
        with self._lock:
            self._targets.append((intel, book))
        self._apply_all(now, [(intel, book)])

    def record(self, update: IntelUpdate, now: float) -> None:
        """Keep ``update`` in the store, then apply the result to every attached engine."""
        if self.store is None:
            return
        self.store.intel_save(
            update.version, update.indicators, update.profiles, full=update.full, withdrawn=update.withdrawn
        )
        with self._lock:
            targets = list(self._targets)
        self._apply_all(now, targets)

    def _apply_all(self, now: float, targets: list[tuple[ThreatIntel | None, BaselineBook | None]]) -> None:
        if self.store is None or not targets:
            return
        self.store.intel_expire(now)
        indicators = self.store.intel_indicators()
        profiles = self.store.intel_profiles()
        golden: dict[str, GoldenProfile] = {}
        for device_type, body in profiles.items():
            try:
                golden.update(
                    load_profiles({"version": body.get("version", "1"), "profiles": {device_type: body}})
                )
            except (ValueError, TypeError, IndexError):
                continue
        for intel, book in targets:
            if intel is not None:
                apply_indicators(intel, indicators)
            if book is not None:
                with self._lock:
                    previous = self._profile_types.get(id(book), set())
                    self._profile_types[id(book)] = set(golden)
                apply_profiles(book, golden, withdrawn=previous - set(golden))


def apply_indicators(intel: ThreatIntel, indicators: list[dict[str, Any]]) -> None:
    """Make Asgard's share of ``intel`` exactly ``indicators`` (others' indicators are left alone)."""
    wanted = {(i["value"], i["type"]) for i in indicators}
    for current in list(intel.indicators()):
        if is_asgard_source(current.source) and (current.value, current.type) not in wanted:
            intel.remove(current.value)
    for i in indicators:
        intel.add(
            i["value"], i["type"], confidence=i["confidence"], source=_source(i["feed"]), expiry=i["expiry"]
        )


def apply_profiles(
    book: BaselineBook,
    golden: Mapping[str, GoldenProfile],
    withdrawn: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Asgard's golden profiles replace the book's of the same device type, and the types Asgard
    withdrew go (rebinding the dict, so a detection thread never sees it half-changed). Baselines
    already seeded keep what they learned."""
    kept = {kind: profile for kind, profile in book.profiles.items() if kind not in withdrawn}
    book.profiles = {**kept, **golden}
