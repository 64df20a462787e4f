"""The rolling device table: per local device, counters, rates, peers, ports, protocols and names.

All per-packet work is polars: each batch is aggregated with group_by and merged into long-form state
tables (one row per device, per (device, peer), per (device, port), ...). Identity (hostname,
vendor, device-type evidence) changes rarely and lives in Python objects fed by the application
payload parsers.

Memory bounds (all configurable through :class:`DeviceLimits`):
- at most ``max_devices`` devices; past that the least recently seen are evicted;
- a device idle for ``idle_timeout`` seconds of capture time is evicted;
- per device at most ``max_ips`` addresses, ``max_peers`` peers, ``max_ports`` ports and
  ``max_names`` DNS/SNI names; past a cap the least recently seen entries are dropped and counted
  in ``dropped``;
- over all devices at most ``total_peers`` peers, ``total_ports`` ports and ``total_names`` names,
  so the table's memory has a bound whatever the number of devices (a 1,000-device LAN keeps ~64
  recent peers a device, a 30-device home everything up to the per-device caps); past it the least
  recently seen entries of any device go first (the rows live in ``SHARDS`` parts split by device,
  and each part keeps at most its share of the total);
- traffic history: ``history_buckets`` buckets of ``bucket_seconds`` each, per device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from heimdal_tui.decode.headers import (
    ETH_ARP,
    ETH_IPV4,
    ETH_IPV6,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
)
from heimdal_tui.devices.locality import Locality, address_text, mac_is_unicast

_U64 = np.uint64
# The packet columns update() reads.
PACKET_INPUT = (
    "ts",
    "wire_len",
    "src_mac",
    "dst_mac",
    "eth_type",
    "ip_ver",
    "proto",
    "src_hi",
    "src_lo",
    "dst_hi",
    "dst_lo",
    "arp_spa",
)
KEY_IPV4 = 1 << 60
KEY_IPV6 = 2 << 60
_IPV6_KEY_MASK = (1 << 48) - 1


@dataclass(frozen=True, slots=True)
class DeviceLimits:
    max_devices: int = 4096
    idle_timeout: float = 7 * 24 * 3600.0
    max_ips: int = 16
    max_peers: int = 1024
    max_ports: int = 256
    max_names: int = 512
    total_peers: int = 65_536
    total_ports: int = 32_768
    total_names: int = 32_768
    bucket_seconds: float = 10.0
    history_buckets: int = 90


def device_keys(mac: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Device key per row: the MAC where it is a unicast MAC, else one derived from the IP.

    Keys below 2**48 are MACs; IPv4-keyed devices are ``KEY_IPV4 | address``; IPv6-keyed ones
    ``KEY_IPV6 | 48-bit hash``.
    """
    by_mac = mac_is_unicast(mac)
    v4 = (hi == 0) & ((lo >> _U64(32)) == _U64(0xFFFF))
    with np.errstate(over="ignore"):
        h6 = (hi * _U64(0x9E3779B97F4A7C15)) ^ (lo * _U64(0xC2B2AE3D27D4EB4F))
    ip_key = np.where(
        v4, _U64(KEY_IPV4) | (lo & _U64(0xFFFFFFFF)), _U64(KEY_IPV6) | (h6 & _U64(_IPV6_KEY_MASK))
    )
    return np.where(by_mac, mac, ip_key)


def protocol_label(eth_type: int, proto: int) -> str:
    """Short protocol name: tcp, udp, icmp, icmp6, igmp, arp, ip-N or ether-0xNNNN."""
    if eth_type in (ETH_IPV4, ETH_IPV6):
        return _IP_PROTOCOLS.get(proto, f"ip-{proto}")
    if eth_type == ETH_ARP:
        return "arp"
    return f"ether-0x{eth_type & 0xFFFF:04x}"


_IP_PROTOCOLS = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp", PROTO_ICMPV6: "icmp6", 2: "igmp"}


def protocol_labels(eth_type: np.ndarray, proto: np.ndarray) -> np.ndarray:
    """:func:`protocol_label` per row (computed once per distinct pair)."""
    labels, ids = _protocol_ids(eth_type, proto)
    return np.array(labels, dtype=object)[ids]


def _protocol_ids(eth_type: np.ndarray, proto: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct protocol labels of the rows, and each row's index into them."""
    # A label depends on the IP protocol (IPv4/IPv6 frames) or on the EtherType (others): one small
    # code per label input, so the distinct ones come from a count instead of a sort.
    ip = (eth_type == ETH_IPV4) | (eth_type == ETH_IPV6)
    codes = np.where(ip, proto & 0xFF, 256 + (eth_type & 0xFFFF))
    present = np.flatnonzero(np.bincount(codes, minlength=256 + 0x10000))
    labels: list[str] = []
    index: dict[str, int] = {}
    lookup = np.zeros(256 + 0x10000, dtype=np.int64)
    for code in present.tolist():
        label = protocol_label(ETH_IPV4, code) if code < 256 else protocol_label(code - 256, -1)
        if label not in index:
            index[label] = len(labels)
            labels.append(label)
        lookup[code] = index[label]
    return labels, lookup[codes]


@dataclass
class DeviceUpdate:
    """What one batch changed: new devices (keys) and counts, for events and detection."""

    new_devices: list[int] = field(default_factory=list)
    evicted_devices: list[int] = field(default_factory=list)
    packets: int = 0
    # Per packet row: the sending / receiving local device's key, 0 when that side is not a device.
    src_dev: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    dst_dev: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))


_DEVICE_SCHEMA: dict[str, type[pl.DataType]] = {
    "device": pl.UInt64,
    "mac": pl.UInt64,
    "first_seen": pl.Float64,
    "last_seen": pl.Float64,
    "packets_in": pl.Int64,
    "packets_out": pl.Int64,
    "bytes_in": pl.Int64,
    "bytes_out": pl.Int64,
}
_IP_SCHEMA: dict[str, type[pl.DataType]] = {
    "device": pl.UInt64,
    "ip_hi": pl.UInt64,
    "ip_lo": pl.UInt64,
    "first_seen": pl.Float64,
    "last_seen": pl.Float64,
}
_PEER_SCHEMA: dict[str, type[pl.DataType]] = {
    "device": pl.UInt64,
    "peer_hi": pl.UInt64,
    "peer_lo": pl.UInt64,
    "first_seen": pl.Float64,
    "last_seen": pl.Float64,
    "packets": pl.Int64,
    "bytes_out": pl.Int64,
    "bytes_in": pl.Int64,
}
_PORT_SCHEMA: dict[str, type[pl.DataType]] = {
    "device": pl.UInt64,
    "proto": pl.Int64,
    "port": pl.Int64,
    "role": pl.String,
    "first_seen": pl.Float64,
    "last_seen": pl.Float64,
    "flows": pl.Int64,
}
_PROTO_SCHEMA: dict[str, type[pl.DataType]] = {
    "device": pl.UInt64,
    "protocol": pl.String,
    "first_seen": pl.Float64,
    "last_seen": pl.Float64,
    "packets": pl.Int64,
    "bytes": pl.Int64,
}
_NAME_SCHEMA: dict[str, type[pl.DataType]] = {
    "device": pl.UInt64,
    "name": pl.String,
    "kind": pl.String,
    "first_seen": pl.Float64,
    "last_seen": pl.Float64,
    "count": pl.Int64,
}
_HISTORY_SCHEMA: dict[str, type[pl.DataType]] = {
    "device": pl.UInt64,
    "bucket": pl.Int64,
    "packets_in": pl.Int64,
    "packets_out": pl.Int64,
    "bytes_in": pl.Int64,
    "bytes_out": pl.Int64,
}


def _empty(schema: dict[str, type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


# The key of each capped table's rows besides the device: what breaks a tie on last_seen.
_CAP_TIES: dict[str, tuple[str, ...]] = {
    "ips": ("ip_hi", "ip_lo"),
    "peers": ("peer_hi", "peer_lo"),
    "ports": ("proto", "port", "role"),
    "names": ("name", "kind"),
}


def _merge(
    state: pl.DataFrame, batch: pl.DataFrame, keys: list[str], sums: tuple[str, ...] = ()
) -> pl.DataFrame:
    """Fold ``batch`` aggregates into ``state`` by ``keys``: first_seen min, last_seen max, sums."""
    if batch.height == 0:
        return state
    both = pl.concat([state, batch.select(state.columns)], how="vertical_relaxed")
    aggs = [pl.col("first_seen").min(), pl.col("last_seen").max(), *[pl.col(c).sum() for c in sums]]
    others = [
        c for c in state.columns if c not in keys and c not in sums and c not in ("first_seen", "last_seen")
    ]
    aggs += [pl.col(c).max() for c in others]
    return both.group_by(keys).agg(aggs).select(state.columns)


def _over_cap(frame: pl.DataFrame, limit: int) -> bool:
    """Whether some device has more than ``limit`` rows in ``frame``."""
    if frame.height <= limit:
        return False
    return int(frame.group_by("device").len()["len"].max()) > limit  # type: ignore[arg-type]


_SHARD_BITS = 3
SHARDS = 1 << _SHARD_BITS


def _shards(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """``frame``'s rows split by device into ``SHARDS`` parts (a Fibonacci hash of the key)."""
    if frame.height == 0:
        return [frame] * SHARDS
    with np.errstate(over="ignore"):
        shard = (frame["device"].to_numpy() * _U64(0x9E3779B97F4A7C15)) >> _U64(64 - _SHARD_BITS)
    parts = frame.with_columns(pl.Series("_shard", shard.astype(np.uint8))).partition_by(
        "_shard", as_dict=True, include_key=False
    )
    empty = frame.clear()
    return [parts.get((i,), empty) for i in range(SHARDS)]


class _Rolling:
    """A state table folded from per-batch aggregates lazily, kept in shards by device.

    Folding a batch in rewrites the table (a concat and a group_by), so doing it every batch costs
    time and memory in proportion to the table, which grows with the capture; folding many batches
    at once costs one rewrite. Every merge here is a min/max/sum by key, so the result is the same.
    The queued aggregates are folded in once they hold half as many rows as the table (the queue
    never costs more than half the table's memory on top of it, for 1.5 times the merge work per
    row of folding at the table's size), when it is read, or when it is replaced. The rows live in
    ``SHARDS`` parts split by device and each part is merged on its own, one after the other: the
    memory a merge needs on top of the table (the concat, the group_by's hash table) is that of an
    eighth of the table, not of all of it.

    A cap (per device, and on the part's share of the total) is applied after each merge. Which
    entries it keeps does not depend on when it runs (the most recently seen of everything seen);
    only an entry that was dropped and then came back counts differently: folded batch by batch it
    restarts its counts, folded together with the batches from before its drop it keeps them.
    """

    MIN_QUEUE = 4096  # rows queued before a merge even while the table is small
    # Queued batches joined into one frame once this many small ones wait. At a live pace a batch
    # is a quarter second (a few hundred rows), so a fold waits for hundreds of them, and each
    # small polars frame costs ~20 kB of its own besides its rows: ~5 MB more at 2,000 packets/s
    # than the same rows in big batches (measured in process, 500- against 3,000-frame batches).
    COMPACT_FRAMES = 16

    def __init__(
        self,
        schema: dict[str, type[pl.DataType]],
        merge: Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame],
        cap: Callable[[pl.DataFrame], pl.DataFrame] | None,
    ) -> None:
        self.merge = merge
        self.cap = cap
        self.parts = [_empty(schema)] * SHARDS
        self.height = 0
        self.queue: list[pl.DataFrame] = []
        self.queued = 0
        self._compacted = 0  # the queue's first frames, joined, MIN_QUEUE rows or more each
        self._joined: pl.DataFrame | None = self.parts[0]

    def add(self, batch: pl.DataFrame) -> None:
        if batch.height == 0:
            return
        self.queue.append(batch)
        self.queued += batch.height
        if self.queued >= max(self.height // 2, self.MIN_QUEUE):
            self.flush()
        elif len(self.queue) - self._compacted >= self.COMPACT_FRAMES:
            self._compact()

    def _compact(self) -> None:
        """Join the small frames at the queue's end into one, in order (the fold sees the same rows
        in the same order). A join of MIN_QUEUE rows or more stays as it is; a smaller one is joined
        again with the next small frames."""
        queue, start = self.queue, self._compacted
        joined = pl.concat(queue[start:], rechunk=True)
        del queue[start:]
        queue.append(joined)
        if joined.height >= self.MIN_QUEUE:
            self._compacted += 1

    def get(self) -> pl.DataFrame:
        self.flush()
        if self._joined is None:
            self._joined = pl.concat(self.parts, rechunk=False)
        return self._joined

    def set(self, frame: pl.DataFrame) -> None:
        self.flush()
        self.parts = _shards(frame)
        self.height = frame.height
        self._joined = frame

    def keep(self, rows: pl.Expr) -> None:
        """Keep only the rows ``rows`` selects, shard by shard (a device's rows stay in its shard)."""
        self.flush()
        self.parts = [part.filter(rows) for part in self.parts]
        self.height = sum(part.height for part in self.parts)
        self._joined = None

    def flush(self) -> None:
        if not self.queue:
            return
        queue, self.queue = self.queue, []
        step = max(self.MIN_QUEUE, self.queued // SHARDS)
        self.queued = 0
        self._compacted = 0
        self._joined = None
        # Split the queue into shards a group of batches at a time (about an eighth of it), each
        # batch let go once split: the queue and its pieces are never both held whole, as they
        # were when the whole queue was concatenated and then split.
        queue.reverse()  # taken from the end: oldest first
        pieces: list[list[pl.DataFrame]] = [[] for _ in range(SHARDS)]
        group: list[pl.DataFrame] = []
        rows = 0
        while queue:
            group.append(queue.pop())
            rows += group[-1].height
            if rows >= step or not queue:
                frame = pl.concat(group, how="vertical_relaxed") if len(group) > 1 else group[0]
                group, rows = [], 0
                for i, part in enumerate(_shards(frame)):
                    if part.height:
                        pieces[i].append(part)
                del frame
        for i in range(SHARDS):
            if not pieces[i]:
                continue
            pending, pieces[i] = pieces[i], []
            merged = self.merge(
                self.parts[i], pl.concat(pending, how="vertical_relaxed") if len(pending) > 1 else pending[0]
            )
            del pending
            if self.cap is not None:
                merged = self.cap(merged)
            self.height += merged.height - self.parts[i].height
            self.parts[i] = merged


class DeviceTable:
    """Local devices and what they do; fed decoded packets, flows and application observations."""

    def __init__(self, locality: Locality | None = None, limits: DeviceLimits | None = None) -> None:
        self.locality = locality or Locality()
        self.limits = limits or DeviceLimits()
        self.devices = _empty(_DEVICE_SCHEMA)
        self.ips = _empty(_IP_SCHEMA)
        # The larger per-device tables fold batches in lazily (see _Rolling).
        peer_sums = ("packets", "bytes_out", "bytes_in")
        self._peers = _Rolling(
            _PEER_SCHEMA,
            lambda s, b: _merge(s, b, ["device", "peer_hi", "peer_lo"], peer_sums),
            lambda f: self._capped_over(f, "peers", self.limits.max_peers, self.limits.total_peers),
        )
        self._ports = _Rolling(
            _PORT_SCHEMA,
            lambda s, b: _merge(s, b, ["device", "proto", "port", "role"], ("flows",)),
            lambda f: self._capped_over(f, "ports", self.limits.max_ports, self.limits.total_ports),
        )
        self._protocols = _Rolling(
            _PROTO_SCHEMA, lambda s, b: _merge(s, b, ["device", "protocol"], ("packets", "bytes")), None
        )
        # Names arrive a few at a time from Python (DNS questions, SNI, HTTP Host): queued as small
        # frames and folded like the others (a frame holds them in a fraction of what dicts of
        # Python strings and lists would take).
        self._names = _Rolling(
            _NAME_SCHEMA,
            lambda s, b: _merge(s, b, ["device", "name", "kind"], ("count",)),
            lambda f: self._capped_over(f, "names", self.limits.max_names, self.limits.total_names),
        )
        self._history = _Rolling(_HISTORY_SCHEMA, self._merge_history, None)
        self.now = 0.0
        self._dropped: dict[str, int] = {"devices": 0, "ips": 0, "peers": 0, "ports": 0, "names": 0}
        self._known: set[int] = set()

    def __len__(self) -> int:
        return self.devices.height

    # -- packets ------------------------------------------------------------------------------
    def update(self, packets: pl.DataFrame) -> DeviceUpdate:
        """Fold one batch of decoded packets (columns as in DecodedBatch) into the table."""
        return self.update_columns({name: packets[name].to_numpy() for name in PACKET_INPUT})

    def update_columns(self, packets: Mapping[str, np.ndarray]) -> DeviceUpdate:
        """:meth:`update` for packet columns given as numpy arrays (see ``PACKET_INPUT``)."""
        ts = packets["ts"]
        result = DeviceUpdate(packets=int(ts.shape[0]))
        if ts.shape[0] == 0:
            return result
        loc = self.locality
        src_hi, src_lo = packets["src_hi"], packets["src_lo"]
        dst_hi, dst_lo = packets["dst_hi"], packets["dst_lo"]
        src_mac, dst_mac = packets["src_mac"], packets["dst_mac"]
        eth_type = packets["eth_type"]
        is_ip = packets["ip_ver"] > 0
        is_arp = eth_type == ETH_ARP

        # ARP speaks for its sender: the sender's IP is the one the frame claims.
        arp_spa = packets["arp_spa"]
        arp_ip = is_arp & (arp_spa != 0)
        if arp_ip.any():
            src_lo = np.where(arp_ip, _U64(0xFFFF00000000) | arp_spa, src_lo)
            src_hi = np.where(arp_ip, _U64(0), src_hi)

        src_unicast, src_local = loc.classify(src_hi, src_lo)
        dst_unicast, dst_local = loc.classify(dst_hi, dst_lo)
        src_unicast_mac = mac_is_unicast(src_mac)
        dst_unicast_mac = mac_is_unicast(dst_mac)
        # A frame counts for its sender when the sender is a local host: a local IP, or a link-layer
        # frame (ARP, LLDP, ... and DHCP from 0.0.0.0) from a unicast MAC.
        unspecified_src = is_ip & (src_hi == 0) & ((src_lo == 0) | (src_lo == _U64(0xFFFF00000000)))
        out_side = (is_ip & src_local) | ((~is_ip | unspecified_src) & src_unicast_mac)
        # ...and for its receiver when addressed to a local unicast host (a frame sent to a group
        # MAC is nobody's inbound traffic).
        has_macs = (src_mac != 0) | (dst_mac != 0)
        in_side = is_ip & dst_local & np.where(has_macs, dst_unicast_mac, True)
        in_side |= ~is_ip & ~is_arp & dst_unicast_mac
        in_side |= is_arp & dst_unicast_mac

        src_key = device_keys(
            np.where(is_ip & ~src_local & ~unspecified_src, _U64(0), src_mac), src_hi, src_lo
        )
        dst_key = device_keys(dst_mac, dst_hi, dst_lo)
        wire = packets["wire_len"]
        self.now = max(self.now, float(ts.max()))

        result.src_dev = np.where(out_side, src_key, _U64(0))
        result.dst_dev = np.where(in_side, dst_key, _U64(0))
        out_rows = np.flatnonzero(out_side)
        in_rows = np.flatnonzero(in_side)
        n_out = int(out_rows.shape[0])
        if n_out + int(in_rows.shape[0]) == 0:
            return result
        # One row per (packet, local side): the packet as its sender sent it and as its receiver
        # got it. Every aggregate below is a plain sum/min/max over these rows (direction-split
        # columns are precomputed: a filtered aggregation is several times slower in polars).
        rows = np.concatenate((out_rows, in_rows))
        out = np.zeros(rows.shape[0], dtype=bool)
        out[:n_out] = True
        side_wire = wire[rows]
        wire_out = np.where(out, side_wire, 0)
        peer_hi = np.concatenate((dst_hi[out_rows], src_hi[in_rows]))
        peer_lo = np.concatenate((dst_lo[out_rows], src_lo[in_rows]))
        ip_hi = np.concatenate((src_hi[out_rows], dst_hi[in_rows]))
        ip_lo = np.concatenate((src_lo[out_rows], dst_lo[in_rows]))
        labels, label_ids = _protocol_ids(eth_type, packets["proto"])
        side_ts = ts[rows]
        sides = pl.DataFrame(
            {
                "device": np.concatenate((src_key[out_rows], dst_key[in_rows])),
                "mac": np.concatenate(
                    (
                        np.where(src_unicast_mac[out_rows], src_mac[out_rows], _U64(0)),
                        np.where(dst_unicast_mac[in_rows], dst_mac[in_rows], _U64(0)),
                    )
                ),
                "ts": side_ts,
                "out": out.astype(np.int64),
                "in": (~out).astype(np.int64),
                "wire": side_wire,
                "wire_out": wire_out,
                "wire_in": side_wire - wire_out,
                "peer_hi": peer_hi,
                "peer_lo": peer_lo,
                "ip_hi": ip_hi,
                "ip_lo": ip_lo,
                "protocol": label_ids[rows],
                "bucket": np.floor(side_ts / self.limits.bucket_seconds).astype(np.int64),
            }
        )
        sides = sides.with_columns(
            pl.Series(
                "peer_ok",
                np.concatenate(((is_ip & dst_unicast)[out_rows], (is_ip & src_unicast)[in_rows])),
            ),
            pl.Series(
                "ip_ok",
                np.concatenate((((is_ip & src_local) | arp_ip)[out_rows], (is_ip & dst_local)[in_rows])),
            ),
        )
        # One pass over the packet rows, by every key any table below needs: a batch holds tens of
        # thousands of packets but a few thousand of these groups (a device talks to one peer over
        # one protocol for many packets), and each table is then a small aggregation of the groups.
        fine = sides.group_by(
            "device", "peer_hi", "peer_lo", "protocol", "ip_hi", "ip_lo", "bucket", "peer_ok", "ip_ok"
        ).agg(
            pl.col("mac").max(),
            pl.col("ts").min().alias("first_seen"),
            pl.col("ts").max().alias("last_seen"),
            pl.len().cast(pl.Int64).alias("packets"),
            pl.col("wire").sum().alias("bytes"),
            pl.col("in").sum().alias("packets_in"),
            pl.col("out").sum().alias("packets_out"),
            pl.col("wire_in").sum().alias("bytes_in"),
            pl.col("wire_out").sum().alias("bytes_out"),
        )
        first_seen = pl.col("first_seen").min()
        last_seen = pl.col("last_seen").max()
        directions = [pl.col(c).sum() for c in ("packets_in", "packets_out", "bytes_in", "bytes_out")]
        hist = fine.group_by("device", "bucket").agg(pl.col("mac").max(), first_seen, last_seen, *directions)
        per_device = hist.group_by("device").agg(pl.col("mac").max(), first_seen, last_seen, *directions)
        ips = fine.filter(pl.col("ip_ok")).group_by("device", "ip_hi", "ip_lo").agg(first_seen, last_seen)
        peers = (
            fine.filter(pl.col("peer_ok"))
            .group_by("device", "peer_hi", "peer_lo")
            .agg(
                first_seen,
                last_seen,
                pl.col("packets").sum(),
                pl.col("bytes_out").sum(),
                pl.col("bytes_in").sum(),
            )
        )
        protos = (
            fine.group_by("device", "protocol")
            .agg(first_seen, last_seen, pl.col("packets").sum(), pl.col("bytes").sum())
            .with_columns(
                pl.col("protocol").replace_strict(range(len(labels)), labels, return_dtype=pl.String)
            )
        )

        known = self._known
        new_keys = sorted(k for k in per_device["device"].to_list() if k not in known)
        result.new_devices = new_keys
        known.update(new_keys)
        self.devices = _merge(
            self.devices, per_device, ["device"], ("packets_in", "packets_out", "bytes_in", "bytes_out")
        )
        self.ips = _merge(self.ips, ips, ["device", "ip_hi", "ip_lo"])
        self._peers.add(peers)
        self._protocols.add(protos)
        self._history.add(hist.select(list(_HISTORY_SCHEMA)))
        result.evicted_devices = self._enforce_limits()
        return result

    def _merge_history(self, state: pl.DataFrame, batch: pl.DataFrame) -> pl.DataFrame:
        # Buckets older than the history window go. The window only moves forward, so dropping them
        # at a later merge drops exactly what dropping them batch by batch would.
        both = pl.concat([state, batch.select(state.columns)], how="vertical_relaxed")
        oldest = int(self.now // self.limits.bucket_seconds) - self.limits.history_buckets + 1
        return (
            both.filter(pl.col("bucket") >= oldest)
            .group_by("device", "bucket")
            .agg([pl.col(c).sum() for c in ("packets_in", "packets_out", "bytes_in", "bytes_out")])
            .select(state.columns)
        )

    # -- the lazily merged tables ---------------------------------------------------------------
    @property
    def dropped(self) -> dict[str, int]:
        """Entries dropped by the caps so far, per table (and devices evicted over max_devices)."""
        for table in (self._peers, self._ports, self._names):
            table.flush()
        return self._dropped

    @property
    def peers(self) -> pl.DataFrame:
        """(device, peer_hi, peer_lo, first_seen, last_seen, packets, bytes_out, bytes_in)."""
        return self._peers.get()

    @peers.setter
    def peers(self, frame: pl.DataFrame) -> None:
        self._peers.set(frame)

    @property
    def ports(self) -> pl.DataFrame:
        """(device, proto, port, role, first_seen, last_seen, flows): services used and served."""
        return self._ports.get()

    @ports.setter
    def ports(self, frame: pl.DataFrame) -> None:
        self._ports.set(frame)

    @property
    def protocols(self) -> pl.DataFrame:
        """(device, protocol, first_seen, last_seen, packets, bytes)."""
        return self._protocols.get()

    @protocols.setter
    def protocols(self, frame: pl.DataFrame) -> None:
        self._protocols.set(frame)

    @property
    def history(self) -> pl.DataFrame:
        """(device, bucket, packets_in, packets_out, bytes_in, bytes_out) per history bucket."""
        return self._history.get()

    @history.setter
    def history(self, frame: pl.DataFrame) -> None:
        self._history.set(frame)

    # -- flows and names ----------------------------------------------------------------------
    def _known_only(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Rows for devices in the table (facts about evicted or never-seen devices are dropped)."""
        if rows.height == 0:
            return rows
        return rows.filter(pl.col("device").is_in(self.devices["device"].implode()))

    def add_ips(self, rows: pl.DataFrame) -> None:
        """Fold (device, ip_hi, ip_lo, first_seen, last_seen) rows in (e.g. DHCP-assigned addresses)."""
        rows = self._known_only(rows)
        if rows.height:
            self.ips = _merge(self.ips, rows, ["device", "ip_hi", "ip_lo"])
            self._cap("ips", self.limits.max_ips)

    def add_ports(self, rows: pl.DataFrame) -> None:
        """Fold (device, proto, port, role, first_seen, last_seen, flows) rows in."""
        self._ports.add(self._known_only(rows))

    def add_names(self, rows: pl.DataFrame) -> None:
        """Fold (device, name, kind, first_seen, last_seen, count) rows in."""
        rows = self._known_only(rows)
        if rows.height:
            self._names.add(rows.select(list(_NAME_SCHEMA)).cast(_NAME_SCHEMA))  # type: ignore[arg-type]

    def add_name_sightings(self, sightings: list[tuple[int, str, str, float]]) -> None:
        """Fold (device, name, kind, ts) sightings in, each counting once."""
        known = self._known
        # Facts about evicted or never-seen devices are dropped.
        rows = [s for s in sightings if s[0] in known]
        if not rows:
            return
        devices, names, kinds, stamps = zip(*rows, strict=True)
        self._names.add(
            pl.DataFrame(
                {
                    "device": pl.Series(devices, dtype=pl.UInt64),
                    "name": pl.Series(names, dtype=pl.String),
                    "kind": pl.Series(kinds, dtype=pl.String),
                    "first_seen": pl.Series(stamps, dtype=pl.Float64),
                    "last_seen": pl.Series(stamps, dtype=pl.Float64),
                    "count": pl.repeat(1, len(rows), dtype=pl.Int64, eager=True),
                }
            )
        )

    @property
    def names(self) -> pl.DataFrame:
        """(device, name, kind, first_seen, last_seen, count): names a device looked up or contacted."""
        return self._names.get()

    @names.setter
    def names(self, frame: pl.DataFrame) -> None:
        self._names.set(frame)

    # -- bounds -------------------------------------------------------------------------------
    def _enforce_limits(self) -> list[int]:
        lim = self.limits
        evicted: list[int] = []
        idle = self.devices.filter(pl.col("last_seen") < self.now - lim.idle_timeout)
        evicted += [int(k) for k in idle["device"].to_list()]
        over = self.devices.height - len(idle) - lim.max_devices
        if over > 0:
            rest = self.devices.filter(pl.col("last_seen") >= self.now - lim.idle_timeout)
            oldest = rest.sort("last_seen").head(over)
            evicted += [int(k) for k in oldest["device"].to_list()]
            self._dropped["devices"] += over
        if evicted:
            kept = ~pl.col("device").is_in(pl.Series(evicted, dtype=pl.UInt64).implode())
            self.devices = self.devices.filter(kept)
            self.ips = self.ips.filter(kept)
            for table in (self._peers, self._ports, self._protocols, self._names, self._history):
                table.keep(kept)
            self._known.difference_update(evicted)
        self._cap("ips", lim.max_ips)
        # (peers are capped as each batch is folded in, see _Rolling)
        return evicted

    def _cap(self, name: str, limit: int) -> None:
        frame: pl.DataFrame = getattr(self, name)
        if _over_cap(frame, limit):
            setattr(self, name, self._capped(frame, name, limit))

    def _capped_over(self, frame: pl.DataFrame, name: str, limit: int, total: int) -> pl.DataFrame:
        """One part of a rolling table held to ``limit`` rows per device and to its share of
        ``total`` (``frame`` itself when it is within both)."""
        share = -(-total // SHARDS)
        if frame.height <= share and not _over_cap(frame, limit):
            return frame
        return self._capped(frame, name, limit, share)

    def _capped(self, frame: pl.DataFrame, name: str, limit: int, total: int | None = None) -> pl.DataFrame:
        """``frame`` with at most ``limit`` rows per device and ``total`` in all: the most recently
        seen, ties broken by the row's device and key (its order in ``frame`` comes from a
        group_by: it differs run to run)."""
        ties = ["device", *_CAP_TIES[name]]
        ordered = frame.sort(["last_seen", *ties], descending=[True, *[False] * len(ties)])
        kept = ordered.filter(pl.int_range(pl.len()).over("device") < limit)
        if total is not None and kept.height > total:
            kept = kept.head(total)
        self._dropped[name] = self._dropped.get(name, 0) + frame.height - kept.height
        return kept

    # -- reading ------------------------------------------------------------------------------
    def first_ip(self, device: int) -> str | None:
        """The device's most recently used address (IPv4 preferred), as text."""
        rows = self.ips.filter(pl.col("device") == device)
        if rows.height == 0:
            return None
        rows = rows.with_columns((pl.col("ip_hi") == 0).alias("v4")).sort(
            ["v4", "last_seen"], descending=True
        )
        return address_text(int(rows["ip_hi"][0]), int(rows["ip_lo"][0]))

    def rates(self) -> pl.DataFrame:
        """Per device: bytes/s and packets/s over the last 10 s, 1 min and 5 min of capture time."""
        b = self.limits.bucket_seconds
        current = int(self.now // b)
        hist = self.history.with_columns(
            (pl.col("bytes_in") + pl.col("bytes_out")).alias("bytes"),
            (pl.col("packets_in") + pl.col("packets_out")).alias("packets"),
            (current - pl.col("bucket")).alias("age"),
        )
        aggs = []
        for label, seconds in (("10s", 10.0), ("1m", 60.0), ("5m", 300.0)):
            buckets = max(round(seconds / b), 1)
            recent = pl.col("age") < buckets
            aggs += [
                (pl.col("bytes").filter(recent).sum() / seconds).alias(f"bps_{label}"),
                (pl.col("packets").filter(recent).sum() / seconds).alias(f"pps_{label}"),
            ]
        return hist.group_by("device").agg(aggs)

    def sparklines(self, buckets: int | None = None) -> dict[int, list[int]]:
        """Per device, bytes per history bucket, oldest first, ending at the current bucket."""
        n = buckets or self.limits.history_buckets
        current = int(self.now // self.limits.bucket_seconds)
        out: dict[int, list[int]] = {}
        frame = self.history.filter(pl.col("bucket") > current - n).with_columns(
            (pl.col("bytes_in") + pl.col("bytes_out")).alias("bytes")
        )
        for device, bucket, value in frame.select("device", "bucket", "bytes").iter_rows():
            series = out.setdefault(int(device), [0] * n)
            series[n - 1 - (current - int(bucket))] = int(value)
        return out
