"""port_scan: one source probing many ports or many hosts within a sliding window (no baseline).

Probes, per scanning source (its IP; an ARP sweeper by its MAC):

- TCP probes: packets with neither ACK nor RST set, i.e. SYN (``flags & 0x12 == 0x02``), null, FIN and
  Xmas (FIN+PSH+URG) probes. Servers never send these, so a reply never counts as a probe.
- UDP probes: new UDP flows (the originator is the sender of the first packet; replies belong to the
  same flow, so a DNS server answering many client ports is not a prober).
- ICMP / ICMPv6 echo requests, and ARP who-has requests (``arp_op`` 1, target != sender address).

Scan types and their defaults (distinct counts within ``window`` = 60 s):

- vertical: >= 100 distinct TCP/UDP ports on one host, answered or not. nmap's smallest preset (-F)
  is 100 ports; a normal client uses a handful of ports per server (a browser 1-2, SMB 1, printing
  1-3).
- horizontal: >= 20 distinct hosts on one port that did *not* answer (no SYN-ACK / no UDP reply within
  ``answer_wait`` = 5 s; a RST counts as not answered). Counting failed attempts only keeps a browser
  that opens 40 TLS connections in a minute, or a hub polling every plug on port 80, from looking like
  a worm.
- arp_sweep: >= 50 distinct who-has targets from one MAC that got no ARP reply (a /24 sweep asks for
  254 addresses of which a home has a dozen; a router refreshing its neighbour cache asks for hosts
  that answer - the 1000-device benchmark LAN's router asks ~70 a minute).
- icmp_sweep: >= 30 distinct echo targets from one source that sent no echo reply (a ping sweep; a
  monitoring host pinging every device gets answers).

Horizontal scans and sweeps are therefore decided ``answer_wait`` seconds after the probe that
completes them; vertical scans at once.

How distinct counts are computed (numpy, no per-packet Python): a probe is *fresh* when the same
(source, target, protocol, port) was not probed within the preceding window; the count at a fresh
probe is the number of fresh probes of its group (pair for vertical, source+port for horizontal,
source for sweeps) in (t - window, t], found with one sort and two ``searchsorted`` calls. Every state
table is keyed by capture time, so results do not depend on how packets are split into batches.

Attribution: the finding's device is the scanner's device when the scanner is local; else the (first)
local target's device, with ``peer`` = the scanner's address. A scan between two remote hosts names no
local device and is not reported (device 0 is not allowed); it is counted in ``unattributed``.
Severity: a local device scanning ports/hosts is high, 7.5 (8.5 past five times the threshold): an
infected or hijacked device; a local ARP/ICMP sweep is medium, 6.0 (network-inventory apps do this
too); a remote scanner probing local hosts is medium, 5.0 (internet background noise, visible only when
something is exposed).

A finding is emitted when a threshold is first crossed and again at most once per window per (scan
type, source, target or port) while it continues. Memory: at most ``max_events`` rows per state table
(oldest dropped first) and ``max_sources`` remembered alert keys.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from heimdal_tui.detect.answers import member
from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.model import DetectorSettings, Finding, Severity, setting
from heimdal_tui.devices.locality import address_text, mac_text

US = 1_000_000
KIND_TCP, KIND_UDP, KIND_ICMP, KIND_ARP = 0, 1, 2, 3
KIND_NAMES = ("tcp", "udp", "icmp", "arp")
FLAG_SYN, FLAG_NULL, FLAG_FIN, FLAG_XMAS, FLAG_OTHER, FLAG_UDP, FLAG_ECHO, FLAG_ARP = range(8)
FLAG_NAMES = ("syn", "null", "fin", "xmas", "other_tcp", "udp", "echo", "arp_who_has")
ANSWER_OPEN, ANSWER_RST, ANSWER_UDP = 0, 1, 2
MAX_EXAMPLES = 10
SCAN_TYPES = ("vertical", "horizontal", "icmp_sweep", "arp_sweep")

_U64 = np.uint64
_I64 = np.int64
_V4 = 0xFFFF00000000
_NONE = np.iinfo(np.int64).min
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)

# Columns of a probe table and their dtypes.
_COLUMNS: dict[str, Any] = {
    "t": _I64,  # capture time, microseconds
    "kind": _I64,
    "s_hi": _U64,
    "s_lo": _U64,  # the scanner: its address, or for ARP its MAC
    "d_hi": _U64,
    "d_lo": _U64,  # the target address
    "port": _I64,  # -1 for ICMP and ARP
    "flag": _I64,
    "sdev": _U64,
    "ddev": _U64,
    "spa": _U64,  # ARP sender protocol address
}


@dataclass(frozen=True, slots=True)
class Settings(DetectorSettings):
    window: float = setting(60.0, minimum=5.0, maximum=3600.0, help="sliding window, seconds")
    vertical_ports: int = setting(
        100, minimum=5, maximum=65536, help="distinct ports probed on one host within the window"
    )
    horizontal_hosts: int = setting(
        20, minimum=5, maximum=1_000_000, help="distinct hosts that did not answer on one port, per window"
    )
    arp_targets: int = setting(
        50, minimum=5, maximum=1_000_000, help="unanswered ARP who-has targets from one MAC, per window"
    )
    icmp_targets: int = setting(
        30, minimum=5, maximum=1_000_000, help="unanswered ICMP echo targets from one source, per window"
    )
    answer_wait: float = setting(
        5.0, minimum=0.5, maximum=60.0, help="seconds a probe may wait for its answer (horizontal, sweeps)"
    )
    max_events: int = setting(
        200_000, minimum=1_000, maximum=10_000_000, help="rows kept per state table (oldest dropped)"
    )
    max_sources: int = setting(
        10_000, minimum=100, maximum=1_000_000, help="sources/pairs whose last alert time is remembered"
    )


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (callers silence overflow warnings: the wrap-around is the point)."""
    x = (x ^ (x >> _U64(30))) * _M1
    x = (x ^ (x >> _U64(27))) * _M2
    return x ^ (x >> _U64(31))


def _hash(*columns: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row of the given columns (collisions are negligible at these sizes)."""
    n = columns[0].shape[0]
    h = np.full(n, 0x9E3779B97F4A7C15, dtype=_U64)
    if n == 0:
        return h
    with np.errstate(over="ignore"):
        for column in columns:
            h = _mix(h ^ column.astype(_U64, copy=False))
    return h


class _Table:
    """Columns of equal length (dict of numpy arrays)."""

    __slots__ = ("cols",)

    def __init__(self, cols: dict[str, np.ndarray]) -> None:
        self.cols = cols

    @classmethod
    def empty(cls, extra: dict[str, Any] | None = None) -> _Table:
        spec = {**_COLUMNS, **(extra or {})}
        return cls({name: np.zeros(0, dtype=dtype) for name, dtype in spec.items()})

    def __len__(self) -> int:
        return int(self.cols["t"].shape[0])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def take(self, index: np.ndarray) -> _Table:
        return _Table({name: column[index] for name, column in self.cols.items()})

    def concat(self, other: _Table) -> _Table:
        if len(other) == 0:
            return self
        if len(self) == 0:
            return other
        return _Table(
            {name: np.concatenate((column, other.cols[name])) for name, column in self.cols.items()}
        )

    def with_column(self, name: str, values: np.ndarray) -> _Table:
        return _Table({**self.cols, name: values})

    def recent(self, after_us: int, limit: int) -> _Table:
        """Rows newer than ``after_us``, at most ``limit`` of them (the newest), in time order."""
        keep = self.cols["t"] > after_us
        table = self if keep.all() else self.take(np.flatnonzero(keep))
        if len(table) > limit:
            order = np.argsort(table.cols["t"], kind="stable")[-limit:]
            table = table.take(order)
        return table


def _window_counts(
    group: np.ndarray, t: np.ndarray, query: np.ndarray, window_us: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each row in ``query``: the number of rows of its group with time in (t - window, t].

    Also returns the sort order by (group, time) used (for callers that want the window rows).
    """
    _, gid = np.unique(group, return_inverse=True)
    gid = gid.astype(_I64).reshape(-1)
    tmin = int(t.min())
    rel = t - tmin
    span = int(rel.max()) + window_us + 1
    if span * (int(gid.max()) + 1) >= (1 << 62):  # a batch spanning months: coarser time, same result
        scale = span * (int(gid.max()) + 1) // (1 << 61) + 1
        rel = rel // scale
        window_q = max(1, window_us // scale)
        span = int(rel.max()) + window_q + 1
    else:
        window_q = window_us
    comp = gid * span + rel
    order = np.argsort(comp, kind="stable")
    ordered = comp[order]
    q = comp[query]
    upper = np.searchsorted(ordered, q, side="right")
    lower = np.searchsorted(ordered, q - window_q, side="right")
    return (upper - lower).astype(_I64), order


class _Rolling:
    """Fresh probes of the last window, grouped; counts per group at each new probe."""

    def __init__(self) -> None:
        self.state = _Table.empty({"g": _U64})

    def add(self, events: _Table, window_us: int, now_us: int, limit: int) -> tuple[_Table, np.ndarray]:
        """The combined table (old rows then ``events``) and the count at each of the new rows."""
        if len(events) == 0:
            if len(self.state) and int(self.state["t"].min()) <= now_us - window_us:
                self.state = self.state.recent(now_us - window_us, limit)
            return events, np.zeros(0, dtype=_I64)
        old = len(self.state)
        combined = self.state.concat(events)
        counts, _ = _window_counts(combined["g"], combined["t"], np.arange(old, len(combined)), window_us)
        self.state = combined.recent(now_us - window_us, limit)
        return combined, counts


class PortScanDetector:
    kind: ClassVar[str] = "port_scan"
    settings_type: ClassVar[type[DetectorSettings]] = Settings
    needs_baseline: ClassVar[bool] = False

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings: Settings = settings or Settings()
        self.last_key = np.zeros(0, dtype=_U64)  # probe key -> last time seen (sorted by key)
        self.last_t = np.zeros(0, dtype=_I64)
        self.pending = _Table.empty({"akey": _U64, "answered": np.bool_})
        self.answers = {
            "t": np.zeros(0, _I64),
            "akey": np.zeros(0, _U64),
            "pair": np.zeros(0, _U64),
            "port": np.zeros(0, _I64),
            "akind": np.zeros(0, _I64),
        }
        self.rolling = {scan: _Rolling() for scan in SCAN_TYPES}
        self.emitted: OrderedDict[tuple[str, int], int] = OrderedDict()
        self.unattributed = 0
        self.watermark_us = 0

    # -- per batch ---------------------------------------------------------------------------------
    def observe(self, ctx: BatchContext) -> list[Finding]:
        s = self.settings
        if not s.enabled:
            return []
        window_us = int(s.window * US)
        self.watermark_us = max(self.watermark_us, round(ctx.now * US))
        now_us = self.watermark_us
        events = self._probes(ctx)
        if len(events) == 0 and len(self.pending) == 0:
            self._expire(window_us, now_us)
            return []
        fresh = self._fresh(events, window_us, now_us, s.max_events)
        findings: list[Finding] = []

        if len(fresh):
            akey = _hash(fresh["s_hi"], fresh["s_lo"], fresh["d_hi"], fresh["d_lo"], fresh["port"])
            self.pending = self.pending.concat(
                fresh.with_column("akey", akey).with_column("answered", np.zeros(len(fresh), dtype=bool))
            )
        # Answers first, so the evidence of a scan completed in this batch can count them.
        self._record_answers(ctx)

        tcp_udp = fresh.take(np.flatnonzero(fresh["kind"] <= KIND_UDP)) if len(fresh) else fresh
        vertical = tcp_udp.with_column(
            "g", _hash(tcp_udp["s_hi"], tcp_udp["s_lo"], tcp_udp["d_hi"], tcp_udp["d_lo"])
        )
        findings += self._run("vertical", vertical, s.vertical_ports, window_us, now_us)
        # Horizontal scans and sweeps count the probes nobody answered, once their wait is over.
        settled = self._settle(now_us)
        kinds = settled["kind"]
        horizontal = settled.take(np.flatnonzero(kinds <= KIND_UDP))
        horizontal = horizontal.with_column(
            "g", _hash(horizontal["kind"], horizontal["s_hi"], horizontal["s_lo"], horizontal["port"])
        )
        findings += self._run("horizontal", horizontal, s.horizontal_hosts, window_us, now_us)
        for scan, kind, threshold in (
            ("icmp_sweep", KIND_ICMP, s.icmp_targets),
            ("arp_sweep", KIND_ARP, s.arp_targets),
        ):
            rows = settled.take(np.flatnonzero(kinds == kind))
            rows = rows.with_column("g", _hash(rows["kind"], rows["s_hi"], rows["s_lo"]))
            findings += self._run(scan, rows, threshold, window_us, now_us)
        self._expire(window_us, now_us)
        findings.sort(key=lambda f: f.ts)
        return findings

    def _probes(self, ctx: BatchContext) -> _Table:
        parts: list[_Table] = []
        p = ctx.packets
        if p.height:
            proto = p["proto"].to_numpy()
            flags = p["tcp_flags"].to_numpy() & 0x3F
            sport = p["sport"].to_numpy()
            tcp = (proto == 6) & ((flags & 0x14) == 0)
            echo = ((proto == 1) & (sport == 8)) | ((proto == 58) & (sport == 128))
            arp = (p["eth_type"].to_numpy() == 0x0806) & (p["arp_op"].to_numpy() == 1)
            if arp.any():
                arp &= p["arp_tpa"].to_numpy() != p["arp_spa"].to_numpy()
            ip_rows = np.flatnonzero(tcp | echo)
            if ip_rows.shape[0]:
                f = flags[ip_rows]
                is_tcp = tcp[ip_rows]
                flag = np.select(
                    [~is_tcp, (f & 0x02) != 0, f == 0, f == 0x01, (f & 0x29) == 0x29],
                    [FLAG_ECHO, FLAG_SYN, FLAG_NULL, FLAG_FIN, FLAG_XMAS],
                    FLAG_OTHER,
                ).astype(_I64)
                parts.append(
                    _Table(
                        {
                            "t": _micros(p["ts"].to_numpy()[ip_rows]),
                            "kind": np.where(is_tcp, KIND_TCP, KIND_ICMP).astype(_I64),
                            "s_hi": _col(p, "src_hi", ip_rows, _U64),
                            "s_lo": _col(p, "src_lo", ip_rows, _U64),
                            "d_hi": _col(p, "dst_hi", ip_rows, _U64),
                            "d_lo": _col(p, "dst_lo", ip_rows, _U64),
                            "port": np.where(is_tcp, _col(p, "dport", ip_rows, _I64), -1).astype(_I64),
                            "flag": flag,
                            "sdev": _col(p, "src_dev", ip_rows, _U64),
                            "ddev": _col(p, "dst_dev", ip_rows, _U64),
                            "spa": np.zeros(ip_rows.shape[0], dtype=_U64),
                        }
                    )
                )
            arp_rows = np.flatnonzero(arp)
            if arp_rows.shape[0]:
                sdev = _col(p, "src_dev", arp_rows, _U64)
                sha = _col(p, "arp_sha", arp_rows, _U64)
                mac = np.where(sdev != 0, sdev, sha)
                n = arp_rows.shape[0]
                parts.append(
                    _Table(
                        {
                            "t": _micros(p["ts"].to_numpy()[arp_rows]),
                            "kind": np.full(n, KIND_ARP, dtype=_I64),
                            "s_hi": np.zeros(n, dtype=_U64),
                            "s_lo": mac,
                            "d_hi": np.zeros(n, dtype=_U64),
                            "d_lo": _col(p, "arp_tpa", arp_rows, _U64) | _U64(_V4),
                            "port": np.full(n, -1, dtype=_I64),
                            "flag": np.full(n, FLAG_ARP, dtype=_I64),
                            "sdev": mac,
                            "ddev": np.zeros(n, dtype=_U64),
                            "spa": _col(p, "arp_spa", arp_rows, _U64),
                        }
                    )
                )
        nf = ctx.new_flows
        if nf.height:
            udp = nf["proto"].to_numpy() == 17
            if udp.any():
                udp &= ctx.locality.unicast(
                    nf["resp_hi"].to_numpy().astype(_U64), nf["resp_lo"].to_numpy().astype(_U64)
                ) & (nf["resp_p"].to_numpy() >= 0)
            rows = np.flatnonzero(udp)
            if rows.shape[0]:
                n = rows.shape[0]
                parts.append(
                    _Table(
                        {
                            "t": _micros(nf["first_ts"].to_numpy()[rows]),
                            "kind": np.full(n, KIND_UDP, dtype=_I64),
                            "s_hi": _col(nf, "orig_hi", rows, _U64),
                            "s_lo": _col(nf, "orig_lo", rows, _U64),
                            "d_hi": _col(nf, "resp_hi", rows, _U64),
                            "d_lo": _col(nf, "resp_lo", rows, _U64),
                            "port": _col(nf, "resp_p", rows, _I64),
                            "flag": np.full(n, FLAG_UDP, dtype=_I64),
                            "sdev": _col(nf, "orig_dev", rows, _U64),
                            "ddev": _col(nf, "resp_dev", rows, _U64),
                            "spa": np.zeros(n, dtype=_U64),
                        }
                    )
                )
        if not parts:
            return _Table.empty()
        events = parts[0]
        for part in parts[1:]:
            events = events.concat(part)
        order = np.argsort(events["t"], kind="stable")
        return events.take(order)

    def _fresh(self, events: _Table, window_us: int, now_us: int, limit: int) -> _Table:
        """The probes whose (kind, source, target, port) was not probed in the preceding window."""
        if len(events) == 0:
            return events
        keys = _hash(
            events["kind"], events["s_hi"], events["s_lo"], events["d_hi"], events["d_lo"], events["port"]
        )
        t = events["t"]
        order = np.lexsort((t, keys))
        k = keys[order]
        tt = t[order]
        n = k.shape[0]
        same = np.zeros(n, dtype=bool)
        same[1:] = k[1:] == k[:-1]
        prev = np.full(n, _NONE, dtype=_I64)
        prev[1:][same[1:]] = tt[:-1][same[1:]]
        first = np.flatnonzero(~same)
        if self.last_key.shape[0]:
            pos = np.searchsorted(self.last_key, k[first])
            pos_ok = np.minimum(pos, self.last_key.shape[0] - 1)
            found = (pos < self.last_key.shape[0]) & (self.last_key[pos_ok] == k[first])
            prev[first[found]] = self.last_t[pos_ok[found]]
        fresh_sorted = (prev == _NONE) | (tt - prev >= window_us)
        fresh = np.empty(n, dtype=bool)
        fresh[order] = fresh_sorted
        # remember the last time of every key
        run_end = np.ones(n, dtype=bool)
        run_end[:-1] = ~same[1:]
        all_k = np.concatenate((self.last_key, k[run_end]))
        all_t = np.concatenate((self.last_t, tt[run_end]))
        order2 = np.lexsort((all_t, all_k))
        all_k = all_k[order2]
        all_t = all_t[order2]
        last = np.ones(all_k.shape[0], dtype=bool)
        last[:-1] = all_k[1:] != all_k[:-1]
        keep = last & (all_t > now_us - window_us)
        self.last_key = all_k[keep]
        self.last_t = all_t[keep]
        if self.last_key.shape[0] > limit:
            newest = np.sort(np.argsort(self.last_t, kind="stable")[-limit:])
            self.last_key = self.last_key[newest]
            self.last_t = self.last_t[newest]
        return events.take(np.flatnonzero(fresh))

    def _record_answers(self, ctx: BatchContext) -> None:
        """Answers to pending probes (SYN-ACK or RST, UDP reply, echo reply, ARP reply): logged, and
        the probe marked answered (a RST does not count as answered)."""
        p = ctx.packets
        pending = self.pending
        if p.height == 0 or len(pending) == 0:
            return
        proto = p["proto"].to_numpy()
        flags = p["tcp_flags"].to_numpy()
        sport_all = p["sport"].to_numpy()
        synack = (proto == 6) & ((flags & 0x12) == 0x12)
        rst = (proto == 6) & ((flags & 0x04) != 0)
        echo_reply = ((proto == 1) & (sport_all == 0)) | ((proto == 58) & (sport_all == 129))
        arp_reply = (p["eth_type"].to_numpy() == 0x0806) & (p["arp_op"].to_numpy() == 2)
        candidates = synack | rst | (proto == 17) | echo_reply | arp_reply
        # An answer has the port of the probe it answers (-1: none), and few probes are pending:
        # the rows with no pending probe's port are left out before hashing.
        ports = np.where(echo_reply | arp_reply, -1, sport_all)
        candidates &= _port_set(pending["port"])[ports + 1]
        rows = np.flatnonzero(candidates)
        if rows.shape[0] == 0:
            return
        s_hi = _col(p, "dst_hi", rows, _U64)
        s_lo = _col(p, "dst_lo", rows, _U64)
        d_hi = _col(p, "src_hi", rows, _U64)
        d_lo = _col(p, "src_lo", rows, _U64)
        port = _col(p, "sport", rows, _I64)
        no_port = echo_reply[rows] | arp_reply[rows]
        port[no_port] = -1
        is_arp = arp_reply[rows]
        if is_arp.any():
            # an ARP reply answers the asker (its target hardware address, else the frame's
            # destination) about the address it claims
            tha = _col(p, "arp_tha", rows, _U64)
            dst_mac = _col(p, "dst_mac", rows, _U64)
            asker = np.where(tha != 0, tha, dst_mac)
            s_hi[is_arp] = 0
            s_lo[is_arp] = asker[is_arp]
            d_hi[is_arp] = 0
            d_lo[is_arp] = _col(p, "arp_spa", rows, _U64)[is_arp] | _U64(_V4)
        akey = _hash(s_hi, s_lo, d_hi, d_lo, port)
        hit = np.flatnonzero(member(akey, pending["akey"]))
        if hit.shape[0] == 0:
            return
        t = _micros(p["ts"].to_numpy()[rows[hit]])
        # each answer belongs to the latest pending probe with its key at or before it, if that probe
        # is at most answer_wait older (so the result does not depend on batch boundaries)
        wait_us = int(self.settings.answer_wait * US)
        probe_key, probe_t = pending["akey"], pending["t"]
        group = np.concatenate((probe_key, akey[hit]))
        times = np.concatenate((probe_t, t))
        _, gid = np.unique(group, return_inverse=True)
        gid = gid.astype(_I64).reshape(-1)
        tmin = int(times.min())
        span = int(times.max()) - tmin + wait_us + 2
        comp = gid * span + (times - tmin)
        n_probes = probe_key.shape[0]
        order = np.argsort(comp[:n_probes], kind="stable")
        probes_sorted = comp[:n_probes][order]
        at = np.searchsorted(probes_sorted, comp[n_probes:], side="right") - 1
        at_ok = np.maximum(at, 0)
        valid = (at >= 0) & (comp[n_probes:] - probes_sorted[at_ok] <= wait_us)
        valid &= gid[n_probes:] == gid[:n_probes][order][at_ok]
        if not valid.any():
            return
        idx = hit[valid]
        kind = np.where(proto[rows[idx]] == 17, ANSWER_UDP, np.where(rst[rows[idx]], ANSWER_RST, ANSWER_OPEN))
        new = {
            "t": t[valid],
            "akey": akey[idx],
            "pair": _hash(s_hi[idx], s_lo[idx], d_hi[idx], d_lo[idx]),
            "port": port[idx],
            "akind": kind.astype(_I64),
        }
        self.answers = {name: np.concatenate((self.answers[name], new[name])) for name in new}
        ok = kind != ANSWER_RST
        if ok.any():
            pending["answered"][order[at_ok[valid][ok]]] = True

    def _settle(self, now_us: int) -> _Table:
        """Pending probes whose answer time is over and that got no answer."""
        pending = self.pending
        if len(pending) == 0:
            return _Table.empty()
        due = pending["t"] <= now_us - int(self.settings.answer_wait * US)
        if not due.any():
            return _Table.empty()
        settled = pending.take(np.flatnonzero(due & ~pending["answered"]))
        self.pending = pending.take(np.flatnonzero(~due))
        return _Table({name: settled.cols[name] for name in _COLUMNS})

    def _expire(self, window_us: int, now_us: int) -> None:
        s = self.settings
        if len(self.pending) > s.max_events:
            self.pending = self.pending.recent(_NONE, s.max_events)
        keep_after = now_us - window_us - int(s.answer_wait * US)
        t = self.answers["t"]
        if t.shape[0] and (int(t.min()) <= keep_after or t.shape[0] > s.max_events):
            keep = np.flatnonzero(t > keep_after)[-s.max_events :]
            self.answers = {name: column[keep] for name, column in self.answers.items()}
        if self.last_key.shape[0] and int(self.last_t.min()) <= now_us - window_us:
            live = self.last_t > now_us - window_us
            self.last_key = self.last_key[live]
            self.last_t = self.last_t[live]

    # -- findings ----------------------------------------------------------------------------------
    def _run(self, scan: str, events: _Table, threshold: int, window_us: int, now_us: int) -> list[Finding]:
        if len(events) == 0 and len(self.rolling[scan].state) == 0:
            return []
        combined, counts = self.rolling[scan].add(events, window_us, now_us, self.settings.max_events)
        if counts.shape[0] == 0 or int(counts.max()) < threshold:
            return []
        old = len(combined) - counts.shape[0]
        hit_rows = np.flatnonzero(counts >= threshold) + old
        out: list[Finding] = []
        groups = combined["g"][hit_rows]
        for g in np.unique(groups):
            rows = hit_rows[groups == g]
            rows = rows[np.argsort(combined["t"][rows], kind="stable")]
            times = combined["t"][rows]
            ekey = (scan, int(g))
            last = self.emitted.get(ekey)
            i = 0
            while i < rows.shape[0]:
                t = int(times[i])
                if last is not None and t - last < window_us:
                    i = max(i + 1, int(np.searchsorted(times, last + window_us, side="left")))
                    continue
                finding = self._finding(
                    scan, combined, int(rows[i]), int(counts[rows[i] - old]), threshold, window_us
                )
                last = t
                if finding is not None:
                    out.append(finding)
                i += 1
            if last is not None:
                self.emitted[ekey] = last
                self.emitted.move_to_end(ekey)
        while len(self.emitted) > self.settings.max_sources:
            self.emitted.popitem(last=False)
        return out

    def _finding(
        self, scan: str, combined: _Table, row: int, count: int, threshold: int, window_us: int
    ) -> Finding | None:
        t = int(combined["t"][row])
        in_window = (
            (combined["g"] == combined["g"][row]) & (combined["t"] > t - window_us) & (combined["t"] <= t)
        )
        rows = np.flatnonzero(in_window)
        rows = rows[np.argsort(combined["t"][rows], kind="stable")]
        span = (t - int(combined["t"][rows[0]])) / US if rows.shape[0] else 0.0
        flag_counts = np.bincount(combined["flag"][rows], minlength=len(FLAG_NAMES))
        probe_types = {FLAG_NAMES[i]: int(c) for i, c in enumerate(flag_counts) if c}
        s_hi, s_lo = int(combined["s_hi"][row]), int(combined["s_lo"][row])
        if scan == "arp_sweep":
            spa = int(combined["spa"][row])
            scanner = f"{address_text(0, _V4 | spa)} ({mac_text(s_lo)})" if spa else mac_text(s_lo)
        else:
            scanner = address_text(s_hi, s_lo)
        sdev = int(combined["sdev"][row])
        local_targets = combined["ddev"][rows]
        local_targets = local_targets[local_targets != 0]
        ddev = int(combined["ddev"][row]) or (int(local_targets[0]) if local_targets.shape[0] else 0)
        local_actor = sdev != 0
        device = sdev if local_actor else ddev
        if not device:
            self.unattributed += 1
            return None
        evidence: dict[str, Any] = {
            "scan_type": scan,
            "scanner": scanner,
            "window_s": round(window_us / US, 1),
            "threshold": threshold,
            "span_s": round(span, 1),
            "probe_types": probe_types,
        }
        hosts = [
            address_text(int(h), int(lo))
            for h, lo in zip(combined["d_hi"][rows], combined["d_lo"][rows], strict=True)
        ]
        peer: str | None = None if local_actor else scanner
        if scan == "vertical":
            target = address_text(int(combined["d_hi"][row]), int(combined["d_lo"][row]))
            ports = [
                f"{KIND_NAMES[int(k)]}/{int(p)}"
                for k, p in zip(combined["kind"][rows], combined["port"][rows], strict=True)
            ]
            a = self.answers
            pair = _hash(
                *(
                    np.array([v], dtype=_U64)
                    for v in (s_hi, s_lo, combined["d_hi"][row], combined["d_lo"][row])
                )
            )[0]
            mine = (a["pair"] == pair) & (a["t"] > t - window_us) & (a["t"] <= t)
            rst = int((mine & (a["akind"] == ANSWER_RST)).sum())
            open_ports = sorted({int(x) for x in a["port"][mine & (a["akind"] == ANSWER_OPEN)]})
            evidence |= {
                "target": target,
                "distinct_ports": count,
                "example_ports": ports[:MAX_EXAMPLES],
                "answered_rst": rst,
                "open_ports": open_ports[:MAX_EXAMPLES],
                "open_port_count": len(open_ports),
            }
            if local_actor:
                peer = target
            kinds = "+".join(name.upper() for name in probe_types if name != "other_tcp") or "TCP"
            summary = (
                f"{scanner} probed {count} ports on {target} in {span:.0f} s "
                f"({kinds} probes; {rst} answered with RST)"
            )
        elif scan == "horizontal":
            port_text = f"{KIND_NAMES[int(combined['kind'][row])]}/{int(combined['port'][row])}"
            evidence |= {
                "port": port_text,
                "distinct_hosts_unanswered": count,
                "example_hosts": hosts[:MAX_EXAMPLES],
                "answer_wait_s": self.settings.answer_wait,
            }
            summary = f"{scanner} probed {port_text} on {count} hosts that did not answer, in {span:.0f} s"
        else:
            what = "ARP who-has" if scan == "arp_sweep" else "ICMP echo"
            evidence |= {
                "distinct_targets_unanswered": count,
                "example_targets": hosts[:MAX_EXAMPLES],
                "answer_wait_s": self.settings.answer_wait,
            }
            summary = (
                f"{scanner} sent {what} requests to {count} addresses that did not answer, in {span:.0f} s"
            )
        score = (
            (7.5 if local_actor else 5.0)
            if scan in ("vertical", "horizontal")
            else 6.0
            if local_actor
            else 5.0
        )
        if local_actor and count >= 5 * threshold:
            score = min(8.5, score + 1.0)
        return Finding(
            kind=self.kind,
            device=device,
            peer=peer,
            ts=t / US,
            severity=Severity.from_score(score),
            score=score,
            summary=summary,
            evidence=evidence,
        )


def _port_set(ports: np.ndarray) -> np.ndarray:
    """A lookup table of ``ports`` (each -1..65535, -1 for none) by port + 1: ``isin`` by one
    gather (np.isin's table method first scans both arrays for their range)."""
    table = np.zeros(65_537, dtype=bool)
    table[ports + 1] = True
    return table


def _micros(ts: np.ndarray) -> np.ndarray:
    return np.round(ts.astype(np.float64) * US).astype(_I64)


def _col(frame: Any, name: str, rows: np.ndarray, dtype: Any) -> np.ndarray:
    return frame[name].to_numpy()[rows].astype(dtype, copy=False)
