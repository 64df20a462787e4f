"""What devices did in one batch, in baseline terms: items, minutes, and the batch as columns.

The BaselineBook turns each batch into a :class:`BatchActivity`: columns of rows (device, value,
capture time, peer) per behaviour table, and the completed minutes of traffic. Detectors read the
columns (a few hundred rows that matter out of thousands); anyone may read it per device as an
:class:`Activity` of :class:`Item` and :class:`Minute`, made on first access.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import compress, repeat
from typing import NamedTuple

import numpy as np

TABLES = ("destinations", "domains", "services", "protocols", "countries")
# Tables whose known items no detector looks at: only the novel ones are kept as items.
NOVEL_TABLES = ("destinations", "services", "protocols")
DRIFT_TABLES = ("destinations", "services", "protocols", "countries")
DRIFT_INTERVAL = 300.0  # seconds of capture time per drift point
# Python bytes per kept row of a behaviour table: its value string (~60), a float (24) and the
# list slots of its columns (5 x 8); measured with tracemalloc on the benchmark LAN.
ROW_BYTES = 130


def hour_of(ts: float) -> int:
    """Hour of day (UTC) of capture time ``ts``: POSIX time has exactly 3600 s in every hour."""
    return int(ts // 3600.0) % 24


class Item(NamedTuple):
    """One behaviour item seen in a batch: ``value`` at capture time ``ts`` (``peer`` for context).

    ``learned`` is set when the item fell inside the device's learning period (the baseline took
    it); detectors comparing with the baseline skip those. (A tuple: the garbage collector stops
    tracking it, which matters for the thousands a sensor keeps.)
    """

    value: str
    ts: float
    peer: str | None = None
    learned: bool = False


class Minute(NamedTuple):
    """One completed minute of a device's traffic, bytes out and in (``learned`` as for Item)."""

    start: float
    bytes_out: float
    bytes_in: float
    learned: bool = False


# Tuples built in C (a NamedTuple's own constructor is a Python function).
_new_item = partial(tuple.__new__, Item)
_new_minute = partial(tuple.__new__, Minute)


@dataclass(slots=True)
class Activity:
    """One device's behaviour in one batch, as the behaviour detectors need it (each item once, at
    its first time): the destinations, services and protocols its baseline does not hold, the
    names behind those destinations, its countries (the first of each, learned or not) and its
    completed minutes (learned ones marked)."""

    destinations: Sequence[Item] = field(default_factory=list)
    domains: Sequence[Item] = field(default_factory=list)
    services: Sequence[Item] = field(default_factory=list)
    protocols: Sequence[Item] = field(default_factory=list)
    countries: Sequence[Item] = field(default_factory=list)
    minutes: Sequence[Minute] = field(default_factory=list)


@dataclass(slots=True)
class Rows:
    """One table's items of a batch, column by column: row i is ``values[i]``, seen by device
    ``devices[i]`` at capture time ``ts[i]`` (``peers[i]`` for context); ``learned[i]`` when the
    baseline took it (None: no row was learned)."""

    devices: list[int] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    peers: list[str | None] = field(default_factory=list)
    learned: list[bool] | None = None

    def __len__(self) -> int:
        return len(self.devices)

    def add(
        self, devices: list[int], values: list[str], ts: list[float], peers: Iterable[str | None]
    ) -> None:
        self.devices += devices
        self.values += values
        self.ts += ts
        self.peers += peers

    def learned_flags(self) -> Sequence[bool]:
        return self.learned if self.learned is not None else [False] * len(self.devices)

    def take(self, picked: Sequence[bool]) -> Rows:
        """The rows where ``picked`` holds."""
        return Rows(
            list(compress(self.devices, picked)),
            list(compress(self.values, picked)),
            list(compress(self.ts, picked)),
            list(compress(self.peers, picked)),
            list(compress(self.learned, picked)) if self.learned is not None else None,
        )

    def items(self) -> Iterator[tuple[int, Item]]:
        """(device, item) per row."""
        learned = self.learned if self.learned is not None else repeat(False)
        return zip(
            self.devices,
            map(_new_item, zip(self.values, self.ts, self.peers, learned)),  # noqa: B905
            strict=False,
        )


@dataclass(slots=True)
class Unlearned:
    """One table's rows the baselines did not learn (drift's input): ``novel[i]`` is False when
    device ``devices[i]``'s baseline already holds ``values[i]``."""

    devices: list[int] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    peers: list[str | None] = field(default_factory=list)
    novel: list[bool] = field(default_factory=list)


@dataclass(slots=True)
class MinuteRows:
    """Completed minutes, sorted by device then time: numpy columns (``starts`` in seconds) and
    ``learned`` flags (None: none was learned)."""

    devices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    bytes_out: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    bytes_in: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    learned: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.devices.shape[0])

    def unlearned(self) -> np.ndarray:
        """Mask of the minutes not learned."""
        if self.learned is None:
            return np.ones(len(self), dtype=bool)
        return ~self.learned

    def minute(self, i: int) -> Minute:
        learned = bool(self.learned[i]) if self.learned is not None else False
        return Minute(float(self.starts[i]), float(self.bytes_out[i]), float(self.bytes_in[i]), learned)

    def items(self) -> Iterator[tuple[int, Minute]]:
        learned = self.learned.tolist() if self.learned is not None else repeat(False)
        rows = zip(self.starts.tolist(), self.bytes_out.tolist(), self.bytes_in.tolist(), learned)  # noqa: B905
        return zip(self.devices.tolist(), map(_new_minute, rows), strict=False)


class BatchActivity(Mapping[int, Activity]):
    """Every active device's behaviour in one batch, as columns.

    - ``devices``: the devices active in the batch, in the order they were met;
    - ``novel[table]`` (destinations, services, protocols): rows the device's baseline does not
      hold and did not just learn;
    - ``domains``: the names behind those new destinations;
    - ``countries``: the first row of each (device, country, learned);
    - ``minutes``: the completed minutes;
    - ``unlearned[table]`` (destinations, services, protocols, countries): every row the baselines
      did not learn, known or not, and each item again at its first time in each further drift
      interval the batch spans (drift's input: the items each device used in each interval).

    As a mapping, device -> :class:`Activity` (made when first asked for).
    """

    __slots__ = ("_made", "_position", "countries", "devices", "domains", "minutes", "novel", "unlearned")

    def __init__(
        self,
        devices: list[int] | None = None,
        novel: dict[str, Rows] | None = None,
        domains: Rows | None = None,
        countries: Rows | None = None,
        minutes: MinuteRows | None = None,
        unlearned: dict[str, Unlearned] | None = None,
    ) -> None:
        self.devices = devices or []
        self.novel = novel or {}
        self.domains = domains or Rows()
        self.countries = countries or Rows()
        self.minutes = minutes or MinuteRows()
        self.unlearned = unlearned or {}
        self._position: dict[int, int] | None = None
        self._made: dict[int, Activity] | None = None

    # -- column access for detectors -------------------------------------------------------------
    def position(self, device: int) -> int:
        """Where the device comes in ``devices`` (the order detectors report in)."""
        if self._position is None:
            self._position = {device: i for i, device in enumerate(self.devices)}
        return self._position.get(device, len(self._position))

    def by_device(
        self, table: str, worth: Callable[[int, str, bool], bool] | None = None
    ) -> dict[int, list[Item]]:
        """The table's items per device, devices in batch order (``table``: a novel table,
        "domains" or "countries"); only the rows ``worth(device, value, learned)`` keeps, if given."""
        rows = self.novel.get(table) if table in NOVEL_TABLES else getattr(self, table)
        if rows is None or not rows.devices:
            return {}
        if worth is not None:
            picked = list(map(worth, rows.devices, rows.values, rows.learned_flags()))
            if True not in picked:
                return {}
            rows = rows.take(picked)
        grouped: dict[int, list[Item]] = {}
        for device, item in rows.items():
            found = grouped.get(device)
            if found is None:
                grouped[device] = [item]
            else:
                found.append(item)
        if len(grouped) > 1:
            position = self.position
            grouped = dict(sorted(grouped.items(), key=lambda kv: position(kv[0])))
        return grouped

    def minute_rows(self, mask: np.ndarray) -> list[tuple[int, Minute]]:
        """(device, minute) where ``mask`` holds, devices in batch order, minutes in time order."""
        picked = np.flatnonzero(mask)
        if picked.shape[0] == 0:
            return []
        minutes = self.minutes
        out = [(int(minutes.devices[i]), minutes.minute(int(i))) for i in picked]
        position = self.position
        out.sort(key=lambda dm: (position(dm[0]), dm[1].start))
        return out

    # -- mapping -----------------------------------------------------------------------------------
    def _all(self) -> dict[int, Activity]:
        if self._made is None:
            made: dict[int, Activity] = {device: Activity([], [], [], [], [], []) for device in self.devices}
            for table in NOVEL_TABLES:
                for device, items in self.by_device(table).items():
                    setattr(made.setdefault(device, Activity()), table, items)
            for table in ("domains", "countries"):
                for device, items in self.by_device(table).items():
                    setattr(made.setdefault(device, Activity()), table, items)
            for device, minute in self.minutes.items():
                act = made.setdefault(device, Activity())
                act.minutes.append(minute)  # type: ignore[attr-defined]  # made above as a list
            self._made = made
        return self._made

    def without_drift_rows(self) -> BatchActivity:
        """The same batch without drift's input (``unlearned``, every row the baselines did not
        learn) and without the per-device caches: what a detector re-run needs, for keeping."""
        return BatchActivity(self.devices, self.novel, self.domains, self.countries, self.minutes)

    def estimated_size(self) -> int:
        """Bytes this batch holds, roughly: each row's Python objects (a string, a float, a list
        slot per column) plus the minutes' numpy columns."""
        rows = sum(len(r) for r in self.novel.values()) + len(self.domains) + len(self.countries)
        rows += sum(len(u.devices) for u in self.unlearned.values())
        minutes = self.minutes
        numpy_bytes = minutes.devices.nbytes + minutes.starts.nbytes + 2 * minutes.bytes_out.nbytes
        return ROW_BYTES * rows + numpy_bytes + 64 * len(self.devices)

    def __getitem__(self, device: int) -> Activity:
        return self._all()[device]

    def __iter__(self) -> Iterator[int]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())
