"""Per-device behavioural baselines, learned in capture time.

A baseline records what a device normally does: the remote peers (addresses) and registered
domains it talks to, the services it uses and serves, its protocols, the countries of its peers,
its traffic volume per minute by hour of day (a bounded sample per hour, so the median and the
median absolute deviation are robust), and the hours it is active.

Learning: a device's baseline is *mature* once the sensor's learning period has passed and the
device was either seen during it or has been observed for a whole learning period on its own.
Before maturity everything observed is learned; after it, new behaviour is not absorbed silently:
it is what the detectors report, and what the operator accepts (drift accepted, false positive)
joins the baseline. Every set is bounded (see the MAX_* constants).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from heimdal_tui.detect.activity import hour_of

MAX_DESTINATIONS = 2048
MAX_DOMAINS = 1024
MAX_SERVICES = 512
MAX_COUNTRIES = 250
MAX_SAMPLES_PER_HOUR = 180
MINUTE = 60.0


def registered_domain(name: str) -> str:
    """The registrable part of a DNS name: the last two labels, or three under a two-letter
    country TLD with a common second level (co.uk, com.au, ...)."""
    labels = [label for label in name.lower().rstrip(".").split(".") if label]
    if len(labels) <= 2:
        return ".".join(labels)
    if len(labels[-1]) == 2 and labels[-2] in _COMMON_SLDS:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


_COMMON_SLDS = frozenset({"co", "com", "org", "net", "gov", "ac", "edu", "ne", "or", "go", "gob", "nic"})


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return 0.0
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def robust_stats(values: list[float]) -> tuple[float, float]:
    """(median, scaled MAD) of ``values``: a spread comparable to a standard deviation."""
    median = _median(values)
    mad = _median([abs(v - median) for v in values])
    return median, 1.4826 * mad


@dataclass
class Baseline:
    device: int
    first_seen: float
    last_seen: float = 0.0
    profile: str | None = None  # golden profile "type@version" this baseline was seeded from
    frozen: bool = False  # the operator froze learning
    destinations: dict[str, int] = field(default_factory=dict)  # peer address -> flows
    domains: dict[str, int] = field(default_factory=dict)  # registered domain -> lookups/flows
    services: dict[str, int] = field(default_factory=dict)  # "tcp/443", "tcp/22 (served)" -> flows
    protocols: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)
    active_hours: dict[int, int] = field(default_factory=dict)  # hour of day (UTC) -> active minutes
    volume_out: dict[int, list[float]] = field(default_factory=dict)  # hour -> bytes per minute
    volume_in: dict[int, list[float]] = field(default_factory=dict)
    minutes_observed: int = 0
    last_learned: float = 0.0  # capture time of the newest minute learned
    # (direction, hour) -> volume(): robust statistics are sorts, and detectors ask every minute.
    _volume_cache: dict[tuple[str, int], tuple[float, float, int]] = field(
        default_factory=dict, repr=False, compare=False
    )

    # -- learning -----------------------------------------------------------------------------
    def learn(self, table: str, key: str | int, count: int = 1) -> None:
        target: dict[Any, int] = getattr(self, table)
        if key in target:
            target[key] += count
        elif len(target) < CAPS[table]:
            target[key] = count

    def learn_minute(self, ts: float, hour: int, bytes_out: float, bytes_in: float) -> None:
        self._volume_cache.clear()
        self.minutes_observed += 1
        self.last_learned = max(self.last_learned, ts)
        self._learn_hour(hour, bytes_out, bytes_in)

    def learn_minutes(self, starts: list[float], bytes_out: list[float], bytes_in: list[float]) -> None:
        """:meth:`learn_minute` for each minute in turn, the hour of day taken from its start (the
        book learns a batch's minutes device by device)."""
        if not starts:
            return
        self._volume_cache.clear()
        self.minutes_observed += len(starts)
        self.last_learned = max(self.last_learned, max(starts))
        for start, out, inb in zip(starts, bytes_out, bytes_in, strict=True):
            self._learn_hour(hour_of(start), out, inb)

    def _learn_hour(self, hour: int, bytes_out: float, bytes_in: float) -> None:
        """One active minute in ``hour``: its count and its volume samples (the newest kept)."""
        hours = self.active_hours
        if hour in hours:
            hours[hour] += 1
        elif len(hours) < CAPS["active_hours"]:
            hours[hour] = 1
        for series, value in ((self.volume_out, bytes_out), (self.volume_in, bytes_in)):
            samples = series.get(hour)
            if samples is None:
                samples = series[hour] = []
            samples.append(value)
            if len(samples) > MAX_SAMPLES_PER_HOUR:
                del samples[0]

    # -- reading ------------------------------------------------------------------------------
    def volume(self, direction: str, hour: int) -> tuple[float, float, int]:
        """(median, spread, samples) of bytes per active minute in ``hour``, else over all hours."""
        key = (direction, hour)
        found = self._volume_cache.get(key)
        if found is None:
            series = self.volume_out if direction == "out" else self.volume_in
            samples = series.get(hour) or [v for values in series.values() for v in values]
            median, spread = robust_stats(samples)
            found = self._volume_cache[key] = (median, spread, len(samples))
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "profile": self.profile,
            "frozen": self.frozen,
            "destinations": self.destinations,
            "domains": self.domains,
            "services": self.services,
            "protocols": self.protocols,
            "countries": self.countries,
            "active_hours": {str(k): v for k, v in self.active_hours.items()},
            "volume_out": {str(k): v for k, v in self.volume_out.items()},
            "volume_in": {str(k): v for k, v in self.volume_in.items()},
            "minutes_observed": self.minutes_observed,
            "last_learned": self.last_learned,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        def hours(value: Any) -> dict[int, Any]:
            return {int(k): v for k, v in (value or {}).items() if str(k).isdigit() and 0 <= int(k) < 24}

        return cls(
            device=int(data["device"]),
            first_seen=float(data.get("first_seen", 0.0)),
            last_seen=float(data.get("last_seen", 0.0)),
            profile=data.get("profile"),
            frozen=bool(data.get("frozen", False)),
            destinations=dict(data.get("destinations") or {}),
            domains=dict(data.get("domains") or {}),
            services=dict(data.get("services") or {}),
            protocols=dict(data.get("protocols") or {}),
            countries=dict(data.get("countries") or {}),
            active_hours=hours(data.get("active_hours")),
            volume_out={
                h: [float(x) for x in v][-MAX_SAMPLES_PER_HOUR:]
                for h, v in hours(data.get("volume_out")).items()
            },
            volume_in={
                h: [float(x) for x in v][-MAX_SAMPLES_PER_HOUR:]
                for h, v in hours(data.get("volume_in")).items()
            },
            minutes_observed=int(data.get("minutes_observed", 0)),
            last_learned=float(data.get("last_learned", 0.0)),
        )


CAPS = {  # the most entries each table holds
    "destinations": MAX_DESTINATIONS,
    "domains": MAX_DOMAINS,
    "services": MAX_SERVICES,
    "protocols": MAX_SERVICES,
    "countries": MAX_COUNTRIES,
    "active_hours": 24,
}


@dataclass(frozen=True, slots=True)
class GoldenProfile:
    """What a device type normally does, delivered by Asgard (for now loaded from a file)."""

    device_type: str
    version: str
    services: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    bytes_out_per_minute: tuple[float, float] | None = None  # typical range

    @property
    def label(self) -> str:
        return f"{self.device_type}@{self.version}"

    def seed(self, baseline: Baseline) -> None:
        for service in self.services:
            baseline.learn("services", service)
        for protocol in self.protocols:
            baseline.learn("protocols", protocol)
        for country in self.countries:
            baseline.learn("countries", country)
        baseline.profile = self.label


def load_profiles(data: dict[str, Any]) -> dict[str, GoldenProfile]:
    """Golden profiles from a parsed JSON/TOML document: {"version": V, "profiles": {type: {...}}}."""
    version = str(data.get("version", "1"))
    out: dict[str, GoldenProfile] = {}
    for device_type, body in (data.get("profiles") or {}).items():
        if not isinstance(body, dict):
            raise ValueError(f"profiles.{device_type}: expected a table")
        volume = body.get("bytes_out_per_minute")
        out[str(device_type)] = GoldenProfile(
            device_type=str(device_type),
            version=str(body.get("version", version)),
            services=tuple(str(s) for s in body.get("services", ())),
            protocols=tuple(str(p) for p in body.get("protocols", ())),
            countries=tuple(str(c) for c in body.get("countries", ())),
            bytes_out_per_minute=(float(volume[0]), float(volume[1])) if volume else None,
        )
    return out


def maturity(baseline: Baseline, now: float, sensor_start: float, learning_period: float) -> float:
    """0..1: how far this baseline is from trustworthy (1 = mature)."""
    if learning_period <= 0:
        return 1.0
    sensor_progress = (now - sensor_start) / learning_period
    if sensor_progress < 1.0:
        return max(0.0, min(sensor_progress, 0.99))
    seen_during_learning = baseline.first_seen <= sensor_start + learning_period
    if seen_during_learning or baseline.profile is not None:
        return 1.0
    return max(0.0, min((now - baseline.first_seen) / learning_period, 1.0))


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())
