"""The book of per-device baselines: it learns each batch's behaviour while a device is still
learning, and hands the batch to the detectors as a :class:`BatchActivity`.

Per batch: the :class:`Extractor` turns the batch into rows per table (a few vectorized passes);
baselines are created for newcomers; the rows seen before their device's maturity are learned
(tight loops over columns, skipped once every device of the batch is mature); each unlearned row is
checked against its device's baseline once. What a detector can act on is kept: the rows a baseline
does not hold (new destinations, services, protocols), the names behind new destinations, the first
row of each country, the completed minutes; every unlearned row goes to drift, with the repeats
(an item's first time in each later drift interval of a batch spanning several: drift's only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import chain, pairwise
from operator import contains

import numpy as np

from heimdal_tui.detect.activity import (
    DRIFT_INTERVAL,
    DRIFT_TABLES,
    NOVEL_TABLES,
    TABLES,
    Activity,
    BatchActivity,
    Item,
    Minute,
    MinuteRows,
    Rows,
    Unlearned,
    hour_of,
)
from heimdal_tui.detect.baseline import CAPS, MINUTE, Baseline, GoldenProfile, maturity
from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.extract import Extractor
from heimdal_tui.detect.geo import CountryLookup

__all__ = [
    "Activity",
    "BaselineBook",
    "BatchActivity",
    "Item",
    "LearningSettings",
    "Minute",
    "hour_of",
]

MAX_BASELINES = 4096


@dataclass(frozen=True, slots=True)
class LearningSettings:
    learning_period: float = 86_400.0
    min_maturity: float = 1.0


class BaselineBook:
    def __init__(
        self,
        settings: LearningSettings | None = None,
        countries: CountryLookup | None = None,
        profiles: dict[str, GoldenProfile] | None = None,
        drift_interval: float = DRIFT_INTERVAL,
    ) -> None:
        self.settings = settings or LearningSettings()
        self.countries = countries or CountryLookup()
        self.profiles = profiles or {}
        self.baselines: dict[int, Baseline] = {}
        self.sensor_start: float | None = None
        self.now = 0.0
        self.activity = BatchActivity()
        self.drift_interval = drift_interval
        self.extract = Extractor(self.countries, drift_interval)
        self.loaded = False  # baselines came from a file/store: treat them as mature
        self.loaded_devices: set[int] = set()
        self.busy_seconds = 0.0

    # -- maturity ------------------------------------------------------------------------------
    def maturity(self, device: int) -> float:
        base = self.baselines.get(device)
        if base is None or self.sensor_start is None:
            return 0.0
        if self.loaded:
            if device in self.loaded_devices:
                return 1.0
            # Not in the loaded baselines: a newcomer learns for a whole period on its own.
            period = self.settings.learning_period
            return 1.0 if period <= 0 else max(0.0, min((self.now - base.first_seen) / period, 1.0))
        return maturity(base, self.now, self.sensor_start, self.settings.learning_period)

    def mature(self, device: int) -> bool:
        return self.maturity(device) >= self.settings.min_maturity

    @property
    def sensor_mature(self) -> bool:
        if self.sensor_start is None:
            return False
        return self.loaded or self.now - self.sensor_start >= self.settings.learning_period

    def baseline(self, device: int, ts: float, device_type: str = "unknown") -> Baseline:
        base = self.baselines.get(device)
        if base is None:
            base = Baseline(device=device, first_seen=ts, last_seen=ts)
            profile = self.profiles.get(device_type)
            if profile is not None:
                profile.seed(base)
            if len(self.baselines) >= MAX_BASELINES:
                oldest = min(self.baselines.values(), key=lambda b: b.last_seen)
                del self.baselines[oldest.device]
            self.baselines[device] = base
        return base

    def address_pair(self, text: str) -> tuple[int, int] | None:
        """The (hi, lo) pair of an address this book wrote as text recently, else None."""
        return self.extract.address_pair(text)

    def domain_of(self, name: str) -> str:
        """baseline.registered_domain, remembered."""
        return self.extract.domain_of(name)

    # -- per batch ----------------------------------------------------------------------------
    def observe(self, ctx: BatchContext) -> BatchActivity:
        """Extract per-device activity from ``ctx``, learn it where still learning, return it."""
        started = time.perf_counter()
        if ctx.packets.height:
            first = float(ctx.packets["ts"].min())  # type: ignore[arg-type]
            self.sensor_start = first if self.sensor_start is None else min(self.sensor_start, first)
        self.now = max(self.now, ctx.now)
        rows, repeats, order = self.extract.rows(ctx)
        minutes = self.extract.minutes_before(int(self.now // MINUTE))
        # Device order: as the items were met (it decides which baseline is created first).
        devices = list(dict.fromkeys(chain(*order, minutes.devices.tolist(), ctx.new_devices)))
        bases = self._baselines_for(ctx, devices, rows)
        until = self._until(bases)
        # Nothing is learned once every device of the batch is mature (the usual case).
        latest = max(until.values(), default=float("-inf"))
        for table in TABLES:
            table_rows = rows[table]
            if table_rows.ts and latest > min(table_rows.ts):
                table_rows.learned = self._learn_rows(table, table_rows, bases, until)
        novel: dict[str, Rows] = {}
        unlearned: dict[str, Unlearned] = {}
        for table in DRIFT_TABLES:
            novel_rows, unlearned[table] = self._check(table, rows[table], bases)
            if table in NOVEL_TABLES:
                novel[table] = novel_rows
            again = repeats[table]
            if again.devices:
                unlearned[table] = _with_repeats(table, unlearned[table], again, bases, until)
        self._learn_minutes(minutes, bases, until, latest)
        activity = BatchActivity(
            devices,
            novel,
            _names_behind(rows["domains"], novel["destinations"]),
            _first_countries(rows["countries"]),
            minutes,
            unlearned,
        )
        self.activity = activity
        self.busy_seconds += time.perf_counter() - started
        return activity

    @staticmethod
    def _check(table: str, rows: Rows, bases: dict[int, Baseline]) -> tuple[Rows, Unlearned]:
        """The rows not learned: those the device's baseline does not hold (novel), and all of them
        with that flag for drift."""
        unlearned = rows.take([not flag for flag in rows.learned]) if rows.learned is not None else rows
        devices, values = unlearned.devices, unlearned.values
        flags = _novel_flags(table, devices, values, bases)
        novel = unlearned.take(flags) if True in flags else Rows()
        return novel, Unlearned(devices, values, unlearned.ts, unlearned.peers, flags)

    def _learn_minutes(
        self, minutes: MinuteRows, bases: dict[int, Baseline], until: dict[int, float], latest: float
    ) -> None:
        """Learn the completed minutes before their device's maturity (and mark them)."""
        if not len(minutes) or latest <= float(minutes.starts.min()):
            return
        # The minutes come sorted by device: one maturity per run of a device, compared at once.
        devices = minutes.devices
        run_starts = np.flatnonzero(np.concatenate(([True], devices[1:] != devices[:-1])))
        run_devices = devices[run_starts].tolist()
        limits = np.repeat(
            np.array([until[device] for device in run_devices], dtype=np.float64),
            np.diff(np.append(run_starts, devices.shape[0])),
        )
        flags = minutes.starts < limits
        if not flags.any():
            return
        picked = np.flatnonzero(flags)
        starts = minutes.starts[picked].tolist()
        out_bytes, in_bytes = minutes.bytes_out[picked].tolist(), minutes.bytes_in[picked].tolist()
        learned_devices = devices[picked]
        bounds = np.flatnonzero(learned_devices[1:] != learned_devices[:-1]) + 1
        edges = [0, *bounds.tolist(), picked.shape[0]]
        for a, b in pairwise(edges):
            bases[int(learned_devices[a])].learn_minutes(starts[a:b], out_bytes[a:b], in_bytes[a:b])
        minutes.learned = flags

    def _baselines_for(
        self, ctx: BatchContext, devices: list[int], rows: dict[str, Rows]
    ) -> dict[int, Baseline]:
        """Each device's baseline, created for newcomers (first seen at their first destination,
        service or protocol of the batch)."""
        baselines = self.baselines
        now = self.now
        bases: dict[int, Baseline] = {}
        newcomers: list[int] = []
        for device in devices:
            base = baselines.get(device)
            if base is None:
                newcomers.append(device)
                continue
            if base.last_seen < now:
                base.last_seen = now
            bases[device] = base
        if newcomers:
            first: dict[int, float] = dict.fromkeys(newcomers, now)
            for table in ("destinations", "services", "protocols"):
                table_rows = rows[table]
                for device, ts in zip(table_rows.devices, table_rows.ts, strict=True):
                    if device in first and ts < first[device]:
                        first[device] = ts
            for device in newcomers:
                # The device's type only matters for picking a golden profile.
                kind = ctx.device_ref(device).type if self.profiles else "unknown"
                base = bases[device] = self.baseline(device, first[device], kind)
                if base.last_seen < now:
                    base.last_seen = now
        return bases

    def _until(self, bases: dict[int, Baseline]) -> dict[int, float]:
        """:meth:`mature_at` of every device in ``bases`` (-inf when its learning is frozen)."""
        never = float("-inf")
        if self.sensor_start is None:
            return {device: never if base.frozen else float("inf") for device, base in bases.items()}
        period = self.settings.learning_period * self.settings.min_maturity
        if self.loaded:
            loaded = self.loaded_devices
            return {
                device: never if base.frozen or device in loaded else base.first_seen + period
                for device, base in bases.items()
            }
        learning_end = self.sensor_start + self.settings.learning_period
        common = self.sensor_start + period
        return {
            device: never
            if base.frozen
            else common
            if base.first_seen <= learning_end or base.profile is not None
            else base.first_seen + period
            for device, base in bases.items()
        }

    def _learn_rows(
        self, table: str, rows: Rows, bases: dict[int, Baseline], until: dict[int, float]
    ) -> list[bool]:
        """Learn the rows seen before their device's maturity; which rows were learned."""
        if max(rows.ts) < min(map(until.__getitem__, dict.fromkeys(rows.devices))):
            flags = [True] * len(rows.ts)  # the usual learning batch: every row comes before maturity
        else:
            flags = [ts < until[device] for device, ts in zip(rows.devices, rows.ts, strict=True)]
        if True in flags:
            cap = CAPS[table]
            targets: dict[int, dict[str, int]] = {}
            for device, value, flag in zip(rows.devices, rows.values, flags, strict=True):
                if not flag:
                    continue
                target = targets.get(device)
                if target is None:
                    target = targets[device] = getattr(bases[device], table)
                if value in target:
                    target[value] += 1
                elif len(target) < cap:
                    target[value] = 1
        return flags

    def mature_at(self, device: int) -> float:
        """Capture time at which the device's baseline is (or will be) mature."""
        base = self.baselines.get(device)
        if base is None or self.sensor_start is None:
            return float("inf")
        period = self.settings.learning_period * self.settings.min_maturity
        if self.loaded:
            return float("-inf") if device in self.loaded_devices else base.first_seen + period
        learning_end = self.sensor_start + self.settings.learning_period
        if base.first_seen <= learning_end or base.profile is not None:
            return self.sensor_start + period
        return base.first_seen + period

    def _learn(self, base: Baseline, items: Activity, until: float = float("inf")) -> None:
        if base.frozen or until == float("-inf"):
            return
        for table, values in (
            ("destinations", items.destinations),
            ("domains", items.domains),
            ("services", items.services),
            ("protocols", items.protocols),
            ("countries", items.countries),
        ):
            for item in values:
                if item.ts < until:
                    base.learn(table, item.value)
        for minute in items.minutes:
            if minute.start < until:
                base.learn_minute(minute.start, hour_of(minute.start), minute.bytes_out, minute.bytes_in)

    def learn_items(self, device: int, items: Activity) -> None:
        """Accept ``items`` into the device's baseline (operator accepted the drift / a false positive)."""
        base = self.baselines.get(device)
        if base is not None:
            frozen, base.frozen = base.frozen, False
            self._learn(base, items)
            base.frozen = frozen

    def flush_minutes(self) -> BatchActivity:
        """End of input: complete the minutes still open."""
        minutes = self.extract.minutes_before(None)
        return BatchActivity(list(dict.fromkeys(minutes.devices.tolist())), minutes=minutes)

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        return {
            "format": "heimdal-baselines",
            "version": 1,
            "sensor_start": self.sensor_start,
            "now": self.now,
            "learning_period": self.settings.learning_period,
            "devices": [b.to_dict() for b in self.baselines.values()],
        }

    def load_dict(self, data: dict[str, object]) -> None:
        if data.get("format") != "heimdal-baselines":
            raise ValueError("not a heimdal baseline file (missing format: heimdal-baselines)")
        devices = data.get("devices")
        if not isinstance(devices, list):
            raise ValueError("baseline file: 'devices' must be a list")
        for entry in devices:
            base = Baseline.from_dict(entry)
            self.baselines[base.device] = base
        self.loaded = True
        self.loaded_devices = set(self.baselines)


def _with_repeats(
    table: str, unlearned: Unlearned, repeats: Rows, bases: dict[int, Baseline], until: dict[int, float]
) -> Unlearned:
    """``unlearned`` and the repeats not seen before their device's maturity (those are neither
    learned nor drift's: the baseline took the item's first time in the batch), flagged alike."""
    mine = [ts >= until[device] for device, ts in zip(repeats.devices, repeats.ts, strict=True)]
    if True not in mine:
        return unlearned
    repeats = repeats.take(mine)
    flags = _novel_flags(table, repeats.devices, repeats.values, bases)
    return Unlearned(
        unlearned.devices + repeats.devices,
        unlearned.values + repeats.values,
        unlearned.ts + repeats.ts,
        unlearned.peers + repeats.peers,
        unlearned.novel + flags,
    )


def _novel_flags(table: str, devices: list[int], values: list[str], bases: dict[int, Baseline]) -> list[bool]:
    """Per row, whether its device's baseline lacks the value in ``table``."""
    held = {device: getattr(bases[device], table) for device in dict.fromkeys(devices)}
    # C-level maps (each row's table, then "holds it?"): the per-row zip loop costs twice as much.
    known = map(contains, map(held.__getitem__, devices), values)
    return [not flag for flag in known]


def _names_behind(domains: Rows, destinations: Rows) -> Rows:
    """The domain rows naming a new destination of their device (what new_destination reads)."""
    if not destinations.devices or not domains.devices:
        return Rows()
    wanted = set(zip(destinations.devices, destinations.values, strict=True))
    picked = [pair in wanted for pair in zip(domains.devices, domains.peers, strict=True)]
    return domains.take(picked) if True in picked else Rows()


def _first_countries(countries: Rows) -> Rows:
    """The first row of each (device, country, learned): a country's later rows change nothing for
    geo_violation, and a denied country alerts even while learning."""
    if not countries.devices:
        return countries
    seen: set[tuple[int, str, bool]] = set()
    picked = []
    for key in zip(countries.devices, countries.values, countries.learned_flags(), strict=True):
        picked.append(key not in seen)
        seen.add(key)
    return countries.take(picked)
