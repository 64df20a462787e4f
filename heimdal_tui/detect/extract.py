"""Behaviour items out of one batch, column by column, with a few vectorized passes.

From the flows that started or ended: services used (answered), remote destinations with their
names and countries, services served (answered); from the packets, in polars group_bys run in the
background while the flows are worked through: each device's protocols and its bytes out and in
per minute (kept open until capture time moves past the minute); from the DNS queries: the
registered domains asked for. Text forms (addresses, service and protocol labels, domains) are
made once each and remembered (bounded).

The detectors and the baselines take each item once per batch, at its first time. Drift asks
which items each device used in each drift interval, whatever the batch holds: when a batch spans
several intervals, the item's first time in each later interval is given too, apart, as a
*repeat* (drift's input only), so that a batch holding a whole capture gives drift what one batch
per interval would.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import compress
from typing import TYPE_CHECKING, cast

import numpy as np
import polars as pl

from heimdal_tui.decode.app.dns import DnsMessage
from heimdal_tui.detect.activity import DRIFT_INTERVAL, DRIFT_TABLES, TABLES, MinuteRows, Rows
from heimdal_tui.detect.answers import FLOW_COLUMNS, AnswerWatch
from heimdal_tui.detect.baseline import MINUTE, registered_domain
from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.geo import CountryLookup
from heimdal_tui.devices.locality import address_text
from heimdal_tui.devices.table import protocol_label
from heimdal_tui.flows.table import PROTO_NAMES

if TYPE_CHECKING:
    from polars.lazyframe.in_process import InProcessQuery

MEMO_SIZE = 65_536  # entries per text cache (cleared when full)
_ANSWER_PACKET_COLUMNS = (
    "proto",
    "src_hi",
    "src_lo",
    "dst_hi",
    "dst_lo",
    "sport",
    "dport",
    "tcp_flags",
    "src_dev",
)
_FLOW_COLUMNS = (*FLOW_COLUMNS, "resp_flags", "resp_pkts")  # the answer watch keeps FLOW_COLUMNS
_WATCH_COLUMNS = (*_FLOW_COLUMNS, "orig_p")


def _columns(frame: pl.DataFrame, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy() for name in names}


def _memo1(fn: Callable[[str], str]) -> Callable[[str], str]:
    """``fn`` with a bounded cache (plain dict: cheaper per call than functools.lru_cache)."""
    cache: dict[str, str] = {}

    def cached(arg: str) -> str:
        found = cache.get(arg)
        if found is None:
            if len(cache) >= MEMO_SIZE:
                cache.clear()
            found = cache[arg] = fn(arg)
        return found

    return cached


def _answered(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Flows whose responder answered: a TCP SYN-ACK, or any UDP reply."""
    proto = cols["proto"]
    syn_ack = (cols["resp_flags"] & 0x12) == 0x12
    return ((proto == 6) & syn_ack) | ((proto == 17) & (cols["resp_pkts"] > 0))


def _firsts(mask: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Indices, ascending, of the rows where ``mask`` holds that come first among the rows of
    their key (``unique(keep="first", maintain_order=True)``, for rows in time order)."""
    rows = np.flatnonzero(mask)
    if rows.shape[0] <= 1:
        return rows
    picked = [key[rows] for key in keys]
    order = np.lexsort(picked[::-1])  # stable: equal keys stay in row (time) order
    start = np.zeros(rows.shape[0], dtype=bool)
    start[0] = True
    for key in picked:
        ordered = key[order]
        start[1:] |= ordered[1:] != ordered[:-1]
    return np.sort(rows[order[start]])


def _repeats(mask: np.ndarray, slots: np.ndarray | None, firsts: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Indices, ascending, of the rows where ``mask`` holds that come first among the rows of their
    key in their drift interval (``slots``), leaving out ``firsts`` (the first of each key in the
    batch); empty when ``slots`` is None (the batch's rows lie in one interval)."""
    if slots is None or firsts.shape[0] == 0:
        return _NONE
    return np.setdiff1d(_firsts(mask, *keys, slots), firsts, assume_unique=True)


_NONE = np.zeros(0, dtype=np.intp)


def _distinct(*keys: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The distinct keys of the rows: the index of one row of each (``firsts``) and, per row, the
    position of its key among them (``which``), so that a text made once per key,
    ``texts[which[i]]``, serves every row (a batch's rows repeat a few hundred peers and labels)."""
    n = keys[0].shape[0]
    if n <= 1:
        return np.arange(n), [0] * n
    order = np.lexsort(keys[::-1])
    start = np.zeros(n, dtype=bool)
    start[0] = True
    for key in keys:
        ordered = key[order]
        start[1:] |= ordered[1:] != ordered[:-1]
    which = np.empty(n, dtype=np.intp)
    which[order] = np.cumsum(start) - 1
    return order[start], which.tolist()


class _OpenMinutes:
    """Bytes out and in per (device, minute) of the minutes not complete yet: columns sorted by
    device then minute, merged a batch at a time."""

    def __init__(self) -> None:
        self.devices = np.zeros(0, dtype=np.uint64)
        self.minutes = np.zeros(0, dtype=np.int64)
        self.out_bytes = np.zeros(0, dtype=np.float64)
        self.in_bytes = np.zeros(0, dtype=np.float64)

    def add(
        self, devices: np.ndarray, minutes: np.ndarray, out_bytes: np.ndarray, in_bytes: np.ndarray
    ) -> None:
        if devices.shape[0] == 0:
            return
        dev = np.concatenate((self.devices, devices.astype(np.uint64, copy=False)))
        minute = np.concatenate((self.minutes, minutes.astype(np.int64, copy=False)))
        out = np.concatenate((self.out_bytes, out_bytes.astype(np.float64, copy=False)))
        inb = np.concatenate((self.in_bytes, in_bytes.astype(np.float64, copy=False)))
        order = np.lexsort((minute, dev))  # stable: what was open is summed first, as it came
        dev, minute, out, inb = dev[order], minute[order], out[order], inb[order]
        start = np.ones(dev.shape[0], dtype=bool)
        start[1:] = (dev[1:] != dev[:-1]) | (minute[1:] != minute[:-1])
        firsts = np.flatnonzero(start)
        self.devices, self.minutes = dev[firsts], minute[firsts]
        self.out_bytes, self.in_bytes = np.add.reduceat(out, firsts), np.add.reduceat(inb, firsts)

    def take_before(self, minute: int | None) -> MinuteRows:
        """Remove and return the minutes before ``minute`` (all of them for None)."""
        done = self.minutes < minute if minute is not None else np.ones(self.minutes.shape[0], dtype=bool)
        if not done.any():
            return MinuteRows()
        taken = MinuteRows(
            self.devices[done],
            self.minutes[done].astype(np.float64) * MINUTE,
            self.out_bytes[done],
            self.in_bytes[done],
        )
        keep = ~done
        self.devices, self.minutes = self.devices[keep], self.minutes[keep]
        self.out_bytes, self.in_bytes = self.out_bytes[keep], self.in_bytes[keep]
        return taken


class Extractor:
    """Turns batches into per-table :class:`Rows` and completed minutes."""

    def __init__(self, countries: CountryLookup, interval: float = DRIFT_INTERVAL) -> None:
        self.countries = countries
        self.interval = interval  # drift's interval: repeats are cut by it
        self.open_minutes = _OpenMinutes()
        self.answers = AnswerWatch()
        self._texts: dict[tuple[int, int], str] = {}
        self._pairs: dict[str, tuple[int, int]] = {}
        self._labels: dict[tuple[int, int], str] = {}
        self._services: dict[tuple[int, int, bool], str] = {}
        self._domain = _memo1(registered_domain)

    def rows(self, ctx: BatchContext) -> tuple[dict[str, Rows], dict[str, Rows], list[list[int]]]:
        """The batch's rows per table, the repeats per drift table (each item's first time in each
        later drift interval the batch spans), and the devices in the order they were met (per step)."""
        rows = {table: Rows() for table in TABLES}
        repeats = {table: Rows() for table in DRIFT_TABLES}
        order: list[list[int]] = []
        # The packet group_bys run in polars' threads while the flows are worked through here.
        running = self._packet_queries(ctx)
        self._flows(ctx, rows, repeats, order)
        if running is not None:
            self._packets([query.fetch_blocking() for query in running], rows, repeats, order)
        self._dns(ctx, rows, order)
        return rows, repeats, order

    def _slots(self, ts: np.ndarray) -> np.ndarray | None:
        """The drift interval of each time, or None when they all lie in one (the usual batch)."""
        interval = self.interval
        if ts.shape[0] <= 1 or ts.min() // interval == ts.max() // interval:
            return None
        return (ts // interval).astype(np.int64)

    def minutes_before(self, minute: int | None) -> MinuteRows:
        """The open minutes before ``minute`` (all for None), now complete, taken out."""
        return self.open_minutes.take_before(minute)

    def domain_of(self, name: str) -> str:
        return self._domain(name)

    def address_pair(self, text: str) -> tuple[int, int] | None:
        """The (hi, lo) pair of an address written as text recently, else None."""
        return self._pairs.get(text)

    def _text(self, hi: int, lo: int) -> str:
        key = (hi, lo)
        text = self._texts.get(key)
        if text is None:
            if len(self._texts) >= MEMO_SIZE:
                self._texts.clear()
                self._pairs.clear()
            text = self._texts[key] = address_text(hi, lo)
            self._pairs[text] = key
        return text

    def _service(self, proto: int, port: int, served: bool) -> str:
        key = (proto, port, served)
        label = self._services.get(key)
        if label is None:
            if len(self._services) >= MEMO_SIZE:
                self._services.clear()
            label = self._services[key] = f"{PROTO_NAMES[proto]}/{port}" + (" (served)" if served else "")
        return label

    def _protocol(self, eth_type: int, proto: int) -> str:
        key = (eth_type, proto)
        label = self._labels.get(key)
        if label is None:
            if len(self._labels) >= MEMO_SIZE:
                self._labels.clear()
            label = self._labels[key] = protocol_label(eth_type, proto)
        return label

    def _flows(
        self, ctx: BatchContext, rows: dict[str, Rows], repeats: dict[str, Rows], order: list[list[int]]
    ) -> None:
        # New flows give destinations at once; services count once answered: in the flow's first
        # batch, when the answer comes in a later one (the answer watch), or when the flow ends (a
        # scan probe answered by a reset is not a service).
        new, ended = (
            _columns(f, _WATCH_COLUMNS) if f.height else None for f in (ctx.new_flows, ctx.ended_flows)
        )
        packets = ctx.packets
        answered = self.answers.observe(
            new, ended, _columns(packets, _ANSWER_PACKET_COLUMNS) if packets.height else None
        )
        parts = [f for f in (new, ended) if f is not None]
        if answered is not None:
            # Answered in this batch: a service row (the flow's destination counted when it began).
            count = answered["proto"].shape[0]
            parts.append(
                {
                    **answered,
                    "resp_flags": np.full(count, 0x12, dtype=np.int64),
                    "resp_pkts": np.ones(count, dtype=np.int64),
                    "answer_only": np.ones(count, dtype=bool),
                }
            )
        if not parts:
            return
        cols = {name: np.concatenate([part[name] for part in parts]) for name in _FLOW_COLUMNS}
        cols["answer_only"] = np.concatenate(
            [part.get("answer_only", np.zeros(part["proto"].shape[0], dtype=bool)) for part in parts]
        )
        by_time = np.argsort(cols["first_ts"], kind="stable")
        cols = {name: column[by_time] for name, column in cols.items()}
        replied = _answered(cols)
        orig_dev, resp_dev, proto = cols["orig_dev"], cols["resp_dev"], cols["proto"]
        slots = self._slots(cols["first_ts"])

        using = (orig_dev != 0) & replied & ((proto == 6) | (proto == 17))
        self._service_items(rows, repeats, order, cols, using, slots, "orig_dev", "resp", False)

        hi, lo = cols["resp_hi"], cols["resp_lo"]
        remote = (orig_dev != 0) & (resp_dev == 0) & ~cols["answer_only"]
        if remote.any():
            remote &= ctx.locality.unicast(hi.astype(np.uint64), lo.astype(np.uint64))
        picked = _firsts(remote, orig_dev, hi, lo)
        if picked.shape[0]:
            order.append(self._destination_rows(ctx, rows, cols, picked, with_domains=True))
            again = _repeats(remote, slots, picked, orig_dev, hi, lo)
            if again.shape[0]:
                self._destination_rows(ctx, repeats, cols, again, with_domains=False)

        self._service_items(
            rows, repeats, order, cols, (resp_dev != 0) & replied, slots, "resp_dev", "orig", True
        )

    def _service_items(
        self,
        rows: dict[str, Rows],
        repeats: dict[str, Rows],
        order: list[list[int]],
        cols: dict[str, np.ndarray],
        mask: np.ndarray,
        slots: np.ndarray | None,
        device: str,
        peer: str,
        served: bool,
    ) -> None:
        """The services the flows in ``mask`` used (``served``: served): the first of each
        (device, protocol, port) in the batch, and its repeats in later drift intervals."""
        devices, proto, port = cols[device], cols["proto"], cols["resp_p"]
        first = _firsts(mask, devices, proto, port)
        if not first.shape[0]:
            return
        self._service_rows(rows["services"], cols, first, device, peer, served)
        order.append(devices[first].tolist())
        again = _repeats(mask, slots, first, devices, proto, port)
        if again.shape[0]:
            self._service_rows(repeats["services"], cols, again, device, peer, served)

    def _service_rows(
        self,
        services: Rows,
        cols: dict[str, np.ndarray],
        picked: np.ndarray,
        device: str,
        peer: str,
        served: bool,
    ) -> None:
        """Rows of the services the flows ``picked`` used (``served``: served), named by the
        ``device`` column, the ``peer`` side's address for context."""
        service, text = self._service, self._text
        proto, port = cols["proto"][picked], cols["resp_p"][picked]
        firsts, which = _distinct(proto, port)
        labels = [
            service(p, n, served) for p, n in zip(proto[firsts].tolist(), port[firsts].tolist(), strict=True)
        ]
        hi, lo = cols[f"{peer}_hi"][picked], cols[f"{peer}_lo"][picked]
        peer_firsts, peer_which = _distinct(hi, lo)
        texts = [
            text(h, lo_) for h, lo_ in zip(hi[peer_firsts].tolist(), lo[peer_firsts].tolist(), strict=True)
        ]
        services.add(
            cols[device][picked].tolist(),
            list(map(labels.__getitem__, which)),
            cols["first_ts"][picked].tolist(),
            map(texts.__getitem__, peer_which),
        )

    def _destination_rows(
        self,
        ctx: BatchContext,
        rows: dict[str, Rows],
        cols: dict[str, np.ndarray],
        picked: np.ndarray,
        with_domains: bool,
    ) -> list[int]:
        """Destination rows of the flows ``picked``, with their countries (and the names behind
        them ``with_domains``); returns the devices, row by row."""
        devices = cols["orig_dev"][picked].tolist()
        ts = cols["first_ts"][picked].tolist()
        hi, lo = cols["resp_hi"][picked], cols["resp_lo"][picked]
        # Each peer's text, name and country once: the rows repeat the peers many devices share.
        firsts, which = _distinct(hi, lo)
        pairs = list(zip(hi[firsts].tolist(), lo[firsts].tolist(), strict=True))
        text = self._text
        texts = [text(h, lo_) for h, lo_ in pairs]
        peers = list(map(texts.__getitem__, which))
        rows["destinations"].add(devices, peers, ts, peers)
        domains = rows.get("domains")
        if with_domains and domains is not None:
            peer_name, domain_of = ctx.peer_name, self._domain
            named = [domain_of(name) if (name := peer_name(h, lo_)) else None for h, lo_ in pairs]
            _add_where(domains, list(map(named.__getitem__, which)), devices, ts, peers)
        country_of = self.countries.country
        countries = [country_of(h, lo_) or None for h, lo_ in pairs]
        _add_where(rows["countries"], list(map(countries.__getitem__, which)), devices, ts, peers)
        return devices

    def _packet_queries(self, ctx: BatchContext) -> list[InProcessQuery] | None:
        """Protocols per device (first time each in the batch; and in each later drift interval
        when the batch spans several) and bytes per device and minute: polars group_bys, started
        in the background (None for a batch without packets)."""
        packets = ctx.packets
        if packets.height == 0:
            return None
        frame = packets.lazy()
        sending = frame.filter(pl.col("src_dev") != 0)
        key = ("src_dev", "eth_type", "proto")
        # group_by's order is arbitrary: first seen first, so the same capture gives the same
        # items (two rows can share a label: udp over IPv4 and over IPv6).
        protocols = sending.group_by(*key).agg(pl.col("ts").min()).sort("ts", *key)
        minute = (pl.col("ts") / MINUTE).floor().cast(pl.Int64).alias("minute")
        wire = pl.col("wire_len").cast(pl.Float64)
        zero = pl.lit(0.0, dtype=pl.Float64)
        volume = (
            pl.concat(
                [
                    frame.filter(pl.col("src_dev") != 0).select(
                        pl.col("src_dev").alias("dev"), minute, wire.alias("out"), zero.alias("in")
                    ),
                    frame.filter(pl.col("dst_dev") != 0).select(
                        pl.col("dst_dev").alias("dev"), minute, zero.alias("out"), wire.alias("in")
                    ),
                ]
            )
            .group_by("dev", "minute")
            .agg(pl.col("out").sum(), pl.col("in").sum())
        )
        queries = [protocols, volume]
        ts = packets["ts"]
        interval = self.interval
        if ts.min() // interval != ts.max() // interval:  # type: ignore[operator]
            slot = (pl.col("ts") / interval).floor().cast(pl.Int64).alias("slot")
            per_interval = sending.group_by(*key, slot).agg(pl.col("ts").min())
            queries.append(per_interval.filter(pl.col("ts") > pl.col("ts").min().over(*key)).sort("ts", *key))
        return [query.collect(background=True) for query in queries]

    def _packets(
        self,
        results: list[pl.DataFrame],
        rows: dict[str, Rows],
        repeats: dict[str, Rows],
        order: list[list[int]],
    ) -> None:
        """The rows of :meth:`_packet_queries`' results: protocols, repeats, and the bytes folded
        into the open minutes."""
        seen, totals, *again = results
        order.append(self._protocol_rows(rows["protocols"], seen))
        if again:
            self._protocol_rows(repeats["protocols"], again[0])
        self.open_minutes.add(
            totals["dev"].to_numpy(),
            totals["minute"].to_numpy(),
            totals["out"].to_numpy(),
            totals["in"].to_numpy(),
        )

    def _protocol_rows(self, protocols: Rows, seen: pl.DataFrame) -> list[int]:
        devices = seen["src_dev"].to_list()
        label = self._protocol
        eth_type, proto = seen["eth_type"].to_numpy(), seen["proto"].to_numpy()
        firsts, which = _distinct(eth_type, proto)
        labels = [label(e, p) for e, p in zip(eth_type[firsts].tolist(), proto[firsts].tolist(), strict=True)]
        protocols.add(
            devices, list(map(labels.__getitem__, which)), seen["ts"].to_list(), [None] * len(devices)
        )
        return devices

    def _dns(self, ctx: BatchContext, rows: dict[str, Rows], order: list[list[int]]) -> None:
        domain_of = self._domain
        domains = rows["domains"]
        devices: list[int] = []
        events, senders = ctx.app_events, ctx.app_devices
        for i in ctx.dns_queries():
            device = senders[i]
            if device is None:
                continue
            ev = events[i]
            for qname, _qtype in cast(DnsMessage, ev.message).questions:
                if qname:
                    domains.devices.append(device)
                    domains.values.append(domain_of(qname))
                    domains.ts.append(ev.ts)
                    domains.peers.append(qname)
                    devices.append(device)
        order.append(devices)


def _add_where(
    rows: Rows, values: list[str | None], devices: list[int], ts: list[float], peers: list[str]
) -> None:
    """Add the rows whose value is not None (in row order)."""
    picked = [value is not None for value in values]
    if True not in picked:
        return
    rows.devices += compress(devices, picked)
    rows.values += compress(values, picked)  # type: ignore[arg-type]  # the Nones are left out
    rows.ts += compress(ts, picked)
    rows.peers += compress(peers, picked)
