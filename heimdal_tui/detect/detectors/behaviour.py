"""Detectors that compare a device with its own baseline (they wait for the baseline to mature).

- new_device: a device first seen after the sensor's learning period (medium, 5.0).
- new_destination: remote peers whose address and registered domain the baseline never had
  (low, 3.0; one finding per destination, folding into one alert per device per correlation
  window, whose count is the number of destinations and whose summary lists them all so far).
- new_port: services used or served that the baseline never had (served: medium 4.5; used: low 3.0;
  one finding per service, folding like new_destination's).
- protocol_anomaly: a sensitive service (SSH, Telnet, SMB, RDP, VNC, ...) or an IP protocol never
  seen for this device nor allowed by its type's golden profile; high (7.5) for appliance types
  (plugs, cameras, TVs, printers, speakers, IoT), medium (5.5) otherwise.
- volume_spike: a completed minute whose bytes exceed max(median + k·spread, ratio·median,
  min_bytes) of the baseline for that hour of day (medium 6.0; high 7.5 past 10x and 10 MB).
- timing_anomaly: activity in an hour of day the device was never active in, once the baseline
  spans at least a day (low 3.5).
- geo_violation: a peer in a country on the deny list (high 8.0, even while learning), or in a
  country the mature baseline never had (medium 6.0); once per device and country.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from heimdal_tui.common.lru import forget_stale
from heimdal_tui.detect.activity import Activity, BatchActivity, Item, Minute, MinuteRows, hour_of
from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.learning import BaselineBook
from heimdal_tui.detect.model import DetectorSettings, Finding, Severity, setting
from heimdal_tui.devices.snapshot import iso

MAX_REPORTED = 4096
APPLIANCE_TYPES = frozenset(
    {"smart_plug", "camera", "smart_tv", "printer", "smart_speaker", "iot", "streaming_device"}
)
SENSITIVE_SERVICES = {
    "tcp/21": "FTP",
    "tcp/22": "SSH",
    "tcp/23": "Telnet",
    "tcp/2323": "Telnet",
    "tcp/25": "SMTP",
    "tcp/135": "MS-RPC",
    "tcp/139": "NetBIOS session",
    "tcp/445": "SMB",
    "tcp/1080": "SOCKS",
    "tcp/1433": "MS SQL",
    "tcp/3306": "MySQL",
    "tcp/3389": "RDP",
    "tcp/4444": "Metasploit default",
    "tcp/5432": "PostgreSQL",
    "tcp/5900": "VNC",
    "tcp/6667": "IRC",
    "tcp/9001": "Tor",
    "tcp/9050": "Tor SOCKS",
    "udp/69": "TFTP",
}


class _Reported:
    """A bounded per-device memory of what was already reported (so each new item alerts once).

    One store for all devices, holding a 64-bit hash of each (device, value) pair rather than the
    pair: the value's string is not kept alive. ``hash`` of a tuple of an int and a str is keyed
    per process (SipHash), so a peer cannot make two names collide on purpose, and an accidental
    collision (one item not reported because another was) is ~1 in 10^6 even at the cap of 4,096
    items for each of 1,000 devices.

    The hashes of the last ``recent`` reports sit in a set; older ones are packed into a sorted
    array of unsigned 64-bit ints (8 bytes each, where a set of ints takes ~70: new_destination
    after the daemon benchmark's hour, 25,000 hashes, 0.2 MB instead of 2.2), looked up by bisection.
    """

    __slots__ = ("_counts", "_packed", "_recent", "_recent_limit")

    def __init__(self, recent: int = 4096) -> None:
        self._recent_limit = recent
        self._recent: set[int] = set()
        self._packed = np.zeros(0, dtype=np.uint64)
        self._counts: dict[int, int] = {}

    @staticmethod
    def _key(device: int, value: str) -> int:
        return hash((device, value)) & 0xFFFF_FFFF_FFFF_FFFF

    def _holds(self, key: int) -> bool:
        if key in self._recent:
            return True
        packed = self._packed
        if not packed.size:
            return False
        at = int(packed.searchsorted(key))
        return at < packed.size and int(packed[at]) == key

    def __len__(self) -> int:
        return len(self._recent) + int(self._packed.size)

    def first_time(self, device: int, value: str) -> bool:
        key = self._key(device, value)
        if self._holds(key):
            return False
        count = self._counts.get(device, 0)
        if count < MAX_REPORTED:
            self._recent.add(key)
            self._counts[device] = count + 1
            if len(self._recent) >= self._recent_limit:
                self._pack()
        return True

    def already(self, device: int, value: str) -> bool:
        """Reported before (so :meth:`first_time` is False, and asking it changes nothing)."""
        return self._holds(self._key(device, value))

    def _pack(self) -> None:
        recent = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        self._packed = np.union1d(self._packed, recent)
        self._recent.clear()


EPISODE_GAP = 600.0  # seconds of capture time between new items that start a new episode
MAX_EPISODES = 8192
EPISODE_VALUES = 100
EPISODE_LABELS = 10  # labels kept per episode: what the evidence shows as examples


@dataclass(slots=True)
class _Episode:
    """The new items one device reported close together (each less than the gap after the last)."""

    first_ts: float
    last_ts: float
    total: int = 0
    labels: list[str] = field(default_factory=list)  # the first EPISODE_LABELS (the examples)
    values: list[str] = field(default_factory=list)


class _Episodes:
    """The current episode per key (device, or device and role) of a detector that reports items
    one finding each: its summary and evidence describe the whole episode, so the alert they fold
    into says the same whatever batches the items arrived in. Bounded: the oldest keys go first."""

    def __init__(self, gap: float = EPISODE_GAP) -> None:
        self.gap = gap
        self._open: OrderedDict[Any, _Episode] = OrderedDict()

    def add(self, key: Any, ts: float, label: str, value: str) -> _Episode:
        episode = self._open.get(key)
        if episode is None or ts - episode.last_ts > self.gap:
            episode = self._open[key] = _Episode(ts, ts)
            if len(self._open) > MAX_EPISODES:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(key)
        episode.last_ts = max(episode.last_ts, ts)
        episode.total += 1
        if len(episode.values) < EPISODE_VALUES:
            episode.values.append(value)
            if len(episode.labels) < EPISODE_LABELS:
                episode.labels.append(label)
        return episode

    def expire(self, now: float) -> None:
        """Forget episodes, least recently added first, that ended two gaps before ``now``: an
        item that late would start a new episode anyway (items lag the batch by seconds, not by
        ten minutes). Without this an ended episode stayed until its key came back."""
        horizon = now - 2 * self.gap
        forget_stale(self._open, lambda episode: episode.last_ts < horizon)


def _items(
    activity: Mapping[int, Activity],
    table: str,
    worth: Callable[[int, str, bool], bool] | None = None,
) -> Mapping[int, Sequence[Item]]:
    """Each device's items of ``table``, devices in batch order; from a BatchActivity only the
    rows ``worth(device, value, learned)`` keeps (a pre-filter: the detector still checks each)."""
    if isinstance(activity, BatchActivity):
        return activity.by_device(table, worth)
    return {device: items for device, act in activity.items() if (items := getattr(act, table))}


def _in_order(activity: Mapping[int, Activity], devices: Iterable[int]) -> list[int]:
    if isinstance(activity, BatchActivity):
        return sorted(devices, key=activity.position)
    wanted = set(devices)
    return [device for device in activity if device in wanted]


def _minutes(
    activity: Mapping[int, Activity], worth: Callable[[MinuteRows], np.ndarray]
) -> dict[int, list[Minute]]:
    """Each device's unlearned minutes, devices in batch order; from a BatchActivity only those
    ``worth`` keeps (a vectorized pre-filter: the detector still checks each minute)."""
    if isinstance(activity, BatchActivity):
        minutes = activity.minutes
        if not len(minutes):
            return {}
        grouped: dict[int, list[Minute]] = {}
        for device, minute in activity.minute_rows(minutes.unlearned() & worth(minutes)):
            grouped.setdefault(device, []).append(minute)
        return grouped
    return {
        device: unlearned
        for device, act in activity.items()
        if (unlearned := [m for m in act.minutes if not m.learned])
    }


def _examples(values: list[str], limit: int = EPISODE_LABELS) -> list[str]:
    return values[:limit]


class _BehaviourDetector:
    kind: ClassVar[str]
    settings_type: ClassVar[type[DetectorSettings]]
    needs_baseline: ClassVar[bool] = True

    def __init__(self, book: BaselineBook, settings: DetectorSettings | None = None) -> None:
        self.book = book
        self.settings = settings or self.settings_type()
        self.reported = _Reported()
        self.episodes = _Episodes()

    def _pair(self, address: str) -> tuple[int, int]:
        """(hi, lo) of an address the book wrote (remembered there), else parsed."""
        found = self.book.address_pair(address)
        return found if found is not None else _pair(address)

    def _base_evidence(self, device: int) -> dict[str, Any]:
        base = self.book.baselines.get(device)
        return {
            "baseline_maturity": round(self.book.maturity(device), 2),
            "baseline_profile": base.profile if base else None,
        }


# -- new_device ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewDeviceSettings(DetectorSettings):
    pass


class NewDeviceDetector(_BehaviourDetector):
    kind = "new_device"
    settings_type = NewDeviceSettings

    def observe(self, ctx: BatchContext) -> list[Finding]:
        book = self.book
        if not self.settings.enabled or not book.sensor_mature or book.sensor_start is None:
            return []
        learning_end = book.sensor_start + book.settings.learning_period
        out = []
        for device in ctx.new_devices:
            base = book.baselines.get(device)
            first = base.first_seen if base else ctx.now
            if device in book.loaded_devices or (not book.loaded and first < learning_end):
                continue
            if not self.reported.first_time(device, "seen"):
                continue
            ref = ctx.device_ref(device)
            label = ref.name or ref.mac or ref.ip or str(device)
            out.append(
                Finding(
                    kind=self.kind,
                    device=device,
                    peer=None,
                    ts=first,
                    severity=Severity.MEDIUM,
                    score=5.0,
                    summary=f"new device {label} ({ref.type}) joined the network",
                    evidence={
                        "mac": ref.mac,
                        "ip": ref.ip,
                        "hostname": ref.name,
                        "device_type": ref.type,
                        "first_seen": iso(first),
                        "learning_ended": iso(learning_end) if not book.loaded else "baseline file",
                        "known_devices": len(book.baselines) - 1,
                    },
                )
            )
        return out


# -- new_destination -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewDestinationSettings(DetectorSettings):
    pass


class NewDestinationDetector(_BehaviourDetector):
    kind = "new_destination"
    settings_type = NewDestinationSettings

    def observe(self, ctx: BatchContext) -> list[Finding]:
        if not self.settings.enabled:
            return []
        out = []
        book = self.book
        activity = book.activity
        names = _items(activity, "domains")
        peer_name, pair, domain_of, first_time, already = (
            ctx.peer_name,
            self._pair,
            book.domain_of,
            self.reported.first_time,
            self.reported.already,
        )
        episodes = self.episodes
        for device, destinations in _items(activity, "destinations").items():
            base = book.baselines[device]
            known, known_domains = base.destinations, base.domains
            domains_by_peer = {i.peer: i.value for i in names.get(device, ()) if i.peer}
            fresh: list[tuple[float, _Episode]] = []
            for item in destinations:
                value = item.value
                # A destination stays new (and in the batch's rows) until the baseline takes it:
                # one reported already is skipped before its name is looked up.
                if item.learned or value in known or already(device, value):
                    continue
                name = peer_name(*pair(value)) if value else None
                domain = domain_of(name) if name else domains_by_peer.get(value)
                if domain and domain in known_domains:
                    continue
                if first_time(device, value):
                    label = f"{value} ({name})" if name else value
                    fresh.append((item.ts, episodes.add(device, item.ts, label, value)))
            # One finding per destination (the alert's count is how many there were); each carries
            # its episode as it stands after this batch: the newest evidence is what the alert keeps.
            told: dict[int, tuple[str, dict[str, Any]]] = {}
            for ts, episode in fresh:
                said = told.get(id(episode))
                if said is None:
                    said = told[id(episode)] = (
                        f"{episode.total} destination(s) never seen in this device's baseline, "
                        f"e.g. {episode.labels[0]}",
                        {
                            "new_destinations": episode.total,
                            "since": episode.first_ts,
                            "examples": _examples(episode.labels),
                            "new_destination_values": list(episode.values),
                            "baseline_destinations": len(base.destinations),
                            "baseline_domains": len(base.domains),
                            **self._base_evidence(device),
                        },
                    )
                out.append(Finding(self.kind, device, None, ts, Severity.LOW, 3.0, *said))
        self.episodes.expire(ctx.now)
        return out


def _pair(text: str) -> tuple[int, int]:
    from heimdal_tui.devices.locality import address_pair

    try:
        return address_pair(text)
    except ValueError:
        return (0, 0)


# -- new_port ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewPortSettings(DetectorSettings):
    max_client_port: int = setting(
        10_000,
        minimum=1,
        maximum=65_535,
        help="UDP client ports above this are ignored (peer-to-peer apps pick random ports)",
    )
    ignore_services: tuple[str, ...] = setting(
        ("udp/67", "udp/68", "udp/123", "udp/137", "udp/138", "udp/1900", "udp/5353", "udp/5355"),
        help="services never reported (network housekeeping: DHCP, NTP, NetBIOS, SSDP, mDNS, LLMNR)",
    )


class NewPortDetector(_BehaviourDetector):
    kind = "new_port"
    settings_type = NewPortSettings

    def observe(self, ctx: BatchContext) -> list[Finding]:
        settings = self.settings
        assert isinstance(settings, NewPortSettings)
        if not settings.enabled:
            return []
        out = []
        episodes = self.episodes
        for device, services in _items(self.book.activity, "services").items():
            base = self.book.baselines[device]
            fresh: list[tuple[float, bool, _Episode]] = []
            for item in services:
                if item.learned:
                    continue
                served = item.value.endswith("(served)")
                proto, _, rest = item.value.partition("/")
                port = int(rest.split()[0])
                if not served and proto == "udp" and port > settings.max_client_port:
                    continue
                if f"{proto}/{port}" in settings.ignore_services:
                    continue
                if item.value in base.services or not self.reported.first_time(device, item.value):
                    continue
                value = item.value.replace(" (served)", "")
                label = f"{value} (peer {item.peer})"
                fresh.append((item.ts, served, episodes.add((device, served), item.ts, label, value)))
            # One finding per service, carrying its episode (see new_destination).
            evidence: dict[int, dict[str, Any]] = {}
            for ts, served, episode in fresh:
                facts = evidence.get(id(episode))
                if facts is None:
                    facts = evidence[id(episode)] = {
                        "role": "served" if served else "used",
                        "new_services": episode.values[:20],
                        "count": episode.total,
                        "since": episode.first_ts,
                        "examples": _examples(episode.labels),
                        "baseline_services": sorted(base.services)[:20],
                        **self._base_evidence(device),
                    }
                shown = ", ".join(episode.labels[:3])
                out.append(
                    Finding(
                        kind=self.kind,
                        device=device,
                        peer="served" if served else "used",
                        ts=ts,
                        severity=Severity.MEDIUM if served else Severity.LOW,
                        score=4.5 if served else 3.0,
                        summary=(
                            f"answered on {episode.total} port(s) never served before: {shown}"
                            if served
                            else f"used {episode.total} service(s) for the first time: {shown}"
                        ),
                        evidence=facts,
                    )
                )
        self.episodes.expire(ctx.now)
        return out


# -- protocol_anomaly --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProtocolAnomalySettings(DetectorSettings):
    pass


class ProtocolAnomalyDetector(_BehaviourDetector):
    kind = "protocol_anomaly"
    settings_type = ProtocolAnomalySettings

    def observe(self, ctx: BatchContext) -> list[Finding]:
        if not self.settings.enabled:
            return []
        out = []
        activity = self.book.activity
        services, protocols = _items(activity, "services"), _items(activity, "protocols")
        for device in _in_order(activity, services.keys() | protocols.keys()):
            base = self.book.baselines[device]
            ref = None
            candidates = [
                (i, SENSITIVE_SERVICES[i.value])
                for i in services.get(device, ())
                if i.value in SENSITIVE_SERVICES
            ]
            candidates += [(i, i.value) for i in protocols.get(device, ()) if i.value.startswith("ip-")]
            for item, label in candidates:
                if item.learned:
                    continue
                table = base.services if item.value in SENSITIVE_SERVICES else base.protocols
                if item.value in table:
                    continue
                ref = ref or ctx.device_ref(device)
                appliance = ref.type in APPLIANCE_TYPES
                # Computers use SSH, SMB and the like on the LAN all the time: for them only a
                # remote peer is unusual.
                if not appliance and item.peer and ctx.locality.is_local(item.peer):
                    continue
                if not self.reported.first_time(device, item.value):
                    continue
                out.append(
                    Finding(
                        kind=self.kind,
                        device=device,
                        peer=item.peer,
                        ts=item.ts,
                        severity=Severity.HIGH if appliance else Severity.MEDIUM,
                        score=7.5 if appliance else 5.5,
                        summary=f"{ref.type.replace('_', ' ')} speaks {label} ({item.value}), never seen for it",
                        evidence={
                            "protocol": label,
                            "service": item.value,
                            "peer": item.peer,
                            "device_type": ref.type,
                            "baseline_services": sorted(base.services)[:20],
                            "baseline_protocols": sorted(base.protocols),
                            **self._base_evidence(device),
                        },
                    )
                )
        return out


# -- volume_spike ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class VolumeSpikeSettings(DetectorSettings):
    spread_factor: float = setting(6.0, minimum=1.0, maximum=100.0, help="k in median + k·spread")
    ratio: float = setting(5.0, minimum=1.5, maximum=1000.0, help="minimum multiple of the median")
    min_bytes: int = setting(
        500_000,
        minimum=1_000,
        maximum=10_000_000_000,
        help="bytes in a minute below which nothing is a spike",
    )
    min_samples: int = setting(10, minimum=3, maximum=10_000, help="baseline minutes needed")
    inbound: bool = setting(False, help="also watch downloads (uploads are always watched)")


class VolumeSpikeDetector(_BehaviourDetector):
    kind = "volume_spike"
    settings_type = VolumeSpikeSettings

    def observe(self, ctx: BatchContext) -> list[Finding]:
        s = self.settings
        assert isinstance(s, VolumeSpikeSettings)
        if not s.enabled:
            return []
        min_bytes = float(s.min_bytes)

        def large(minutes: MinuteRows) -> np.ndarray:
            # The threshold is never below min_bytes: only those minutes can be spikes.
            over = minutes.bytes_out > min_bytes
            return over | (minutes.bytes_in > min_bytes) if s.inbound else over

        out = []
        for device, unlearned in _minutes(self.book.activity, large).items():
            base = self.book.baselines[device]
            for minute in unlearned:
                if minute.learned:
                    continue
                hour = hour_of(minute.start)
                for direction, observed in (("out", minute.bytes_out), ("in", minute.bytes_in)):
                    if direction == "in" and not s.inbound:
                        continue
                    if observed <= min_bytes:  # the threshold is never below min_bytes
                        continue
                    median, spread, samples = base.volume(direction, hour)
                    if samples < s.min_samples:
                        continue
                    threshold = max(median + s.spread_factor * spread, s.ratio * median, float(s.min_bytes))
                    if observed <= threshold:
                        continue
                    big = observed >= 10 * threshold and observed >= 10_000_000
                    ratio = observed / median if median else math.inf
                    verb = "uploaded" if direction == "out" else "downloaded"
                    out.append(
                        Finding(
                            kind=self.kind,
                            device=device,
                            peer=None,
                            ts=minute.start + 60.0,
                            severity=Severity.HIGH if big else Severity.MEDIUM,
                            score=7.5 if big else 6.0,
                            summary=(
                                f"{verb} {observed / 1e6:.2f} MB in one minute; baseline median "
                                f"{median / 1e3:.0f} kB at this hour"
                            ),
                            evidence={
                                "direction": direction,
                                "window_seconds": 60,
                                "minute_start": iso(minute.start),
                                "observed_bytes": int(observed),
                                "baseline_median_bytes": round(median),
                                "baseline_spread_bytes": round(spread),
                                "baseline_samples": samples,
                                "threshold_bytes": round(threshold),
                                "ratio_to_median": round(ratio, 1) if math.isfinite(ratio) else None,
                                "hour_utc": hour,
                                **self._base_evidence(device),
                            },
                        )
                    )
        return out


# -- timing_anomaly ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TimingAnomalySettings(DetectorSettings):
    min_baseline_days: float = setting(1.0, minimum=0.5, maximum=60.0, help="baseline span needed, in days")


class TimingAnomalyDetector(_BehaviourDetector):
    kind = "timing_anomaly"
    settings_type = TimingAnomalySettings

    def observe(self, ctx: BatchContext) -> list[Finding]:
        s = self.settings
        assert isinstance(s, TimingAnomalySettings)
        if not s.enabled:
            return []
        span = s.min_baseline_days * 86_400
        book = self.book
        if not book.loaded and (book.sensor_start is None or book.now - book.sensor_start < span):
            # Learned baselines start at or after the sensor did: none can span enough days yet.
            return []
        baselines = book.baselines

        def spanned(minutes: MinuteRows) -> np.ndarray:
            # Only devices whose baseline spans enough days are judged.
            devices = minutes.devices.tolist()
            judged = {
                d
                for d in dict.fromkeys(devices)
                if (b := baselines.get(d)) is not None
                and b.minutes_observed > 0
                and b.last_learned - b.first_seen >= span
            }
            return np.array([d in judged for d in devices], dtype=bool)

        out = []
        for device, unlearned in _minutes(self.book.activity, spanned).items():
            base = baselines[device]
            if base.minutes_observed == 0 or base.last_learned - base.first_seen < span:
                continue
            for minute in unlearned:
                if minute.learned:
                    continue
                hour = hour_of(minute.start)
                day = int(minute.start // 86_400)
                if hour in base.active_hours or not self.reported.first_time(device, f"{day}:{hour}"):
                    continue
                out.append(
                    Finding(
                        kind=self.kind,
                        device=device,
                        peer=None,
                        ts=minute.start,
                        severity=Severity.LOW,
                        score=3.5,
                        summary=f"active at {hour:02d}:00 UTC, an hour it never was active in",
                        evidence={
                            "hour_utc": hour,
                            "baseline_active_hours": sorted(base.active_hours),
                            "bytes_that_minute": int(minute.bytes_out + minute.bytes_in),
                            **self._base_evidence(device),
                        },
                    )
                )
        return out


# -- geo_violation --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GeoViolationSettings(DetectorSettings):
    deny_countries: tuple[str, ...] = setting((), help="ISO country codes always alerted on")


class GeoViolationDetector(_BehaviourDetector):
    kind = "geo_violation"
    settings_type = GeoViolationSettings

    def observe(self, ctx: BatchContext) -> list[Finding]:
        s = self.settings
        assert isinstance(s, GeoViolationSettings)
        if not s.enabled:
            return []
        deny = {c.upper() for c in s.deny_countries}
        baselines = self.book.baselines

        def worth(device: int, value: str, learned: bool) -> bool:
            # Denied, or new to a baseline that has countries: the rows the loop below reports.
            if value in deny:
                return True
            held = baselines[device].countries
            return not learned and bool(held) and value not in held

        out = []
        for device, countries in _items(self.book.activity, "countries", worth).items():
            base = self.book.baselines[device]
            for item in countries:
                denied = item.value in deny
                if not denied and (item.learned or not base.countries or item.value in base.countries):
                    continue
                if not self.reported.first_time(device, item.value):
                    continue
                name = ctx.peer_name(*self._pair(item.peer or ""))
                peer_label = f"{item.peer} ({name})" if name else item.peer
                out.append(
                    Finding(
                        kind=self.kind,
                        device=device,
                        peer=item.peer,
                        ts=item.ts,
                        severity=Severity.HIGH if denied else Severity.MEDIUM,
                        score=8.0 if denied else 6.0,
                        summary=(
                            f"talked to {peer_label} in {item.value}, a denied country"
                            if denied
                            else f"first contact with {item.value}: {peer_label}; baseline countries "
                            f"{', '.join(sorted(base.countries))}"
                        ),
                        evidence={
                            "country": item.value,
                            "peer": item.peer,
                            "peer_name": name,
                            "denied": denied,
                            "baseline_countries": sorted(base.countries),
                            **self._base_evidence(device),
                        },
                    )
                )
        return out


BEHAVIOUR_DETECTORS: tuple[type[_BehaviourDetector], ...] = (
    NewDeviceDetector,
    NewDestinationDetector,
    NewPortDetector,
    ProtocolAnomalyDetector,
    VolumeSpikeDetector,
    TimingAnomalyDetector,
    GeoViolationDetector,
)
