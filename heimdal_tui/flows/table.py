"""Bidirectional flows (connections), tracked per batch with numpy.

A flow is the traffic between two endpoints (address, port) under one transport protocol (TCP, UDP,
ICMP, ICMPv6), in both directions. Its originator is the sender of its first packet. A flow ends
when it has been idle for longer than its protocol's timeout (TCP flows also end soon after both
sides closed or one side reset), and a later packet with the same endpoints starts a new flow, as
Zeek's conn.log does.

Every batch is sorted by (flow key, time) and cut into segments wherever the gap inside one key
exceeds the timeout; segments are aggregated with ``reduceat`` and merged with the open-flow state by
key (a sorted-key lookup). Nothing here runs per packet (or per flow) in Python, and the open-flow
state is plain numpy columns: polars frames are built only for what a batch returns, because a
polars call costs more than the arithmetic of a whole batch here.

Memory: at most ``max_flows`` open flows; past that the least recently active are closed early.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from heimdal_tui.decode.headers import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, TCP_FIN, TCP_RST

FLOW_PROTOCOLS = (PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6)
PROTO_NAMES = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp", PROTO_ICMPV6: "icmp6"}

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each element."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def flow_keys(
    a_hi: np.ndarray,
    a_lo: np.ndarray,
    a_port: np.ndarray,
    b_hi: np.ndarray,
    b_lo: np.ndarray,
    b_port: np.ndarray,
    proto: np.ndarray,
) -> np.ndarray:
    """A 64-bit hash of canonical (ordered) flow endpoints; collisions are negligible at LAN scale."""
    ports = (a_port.astype(np.uint64) << np.uint64(24)) | (b_port.astype(np.uint64) << np.uint64(8))
    h = _mix(ports | proto.astype(np.uint64))
    for column in (a_hi, a_lo, b_hi, b_lo):
        h = _mix(h ^ column)
    return h


@dataclass(frozen=True, slots=True)
class FlowTimeouts:
    tcp: float = 300.0
    udp: float = 60.0
    icmp: float = 60.0
    tcp_closed: float = 5.0  # after FIN from both sides or a RST


_STATE_SCHEMA: dict[str, type[pl.DataType]] = {
    "key": pl.UInt64,
    "uid": pl.Int64,
    "proto": pl.Int64,
    "a_hi": pl.UInt64,
    "a_lo": pl.UInt64,
    "a_port": pl.Int64,
    "b_hi": pl.UInt64,
    "b_lo": pl.UInt64,
    "b_port": pl.Int64,
    "orig_is_a": pl.Boolean,
    "first_ts": pl.Float64,
    "last_ts": pl.Float64,
    "a_pkts": pl.Int64,
    "a_ip_bytes": pl.Int64,
    "a_bytes": pl.Int64,
    "a_flags": pl.Int64,
    "b_pkts": pl.Int64,
    "b_ip_bytes": pl.Int64,
    "b_bytes": pl.Int64,
    "b_flags": pl.Int64,
    "a_mac": pl.UInt64,
    "b_mac": pl.UInt64,
    "icmp_type": pl.Int64,
}
_NUMPY_TYPES: dict[type[pl.DataType], type[np.generic]] = {
    pl.UInt64: np.uint64,
    pl.Int64: np.int64,
    pl.Float64: np.float64,
    pl.Boolean: np.bool_,
}
_STATE_DTYPES = {name: _NUMPY_TYPES[dtype] for name, dtype in _STATE_SCHEMA.items()}
_SUMS = ("a_pkts", "a_ip_bytes", "a_bytes", "b_pkts", "b_ip_bytes", "b_bytes")
# Columns a continued flow keeps from its open state (the endpoints and who originated it).
_KEPT = ("uid", "a_hi", "a_lo", "a_port", "b_hi", "b_lo", "b_port", "orig_is_a", "first_ts", "icmp_type")

# The packet columns update() reads.
PACKET_INPUT = (
    "ts",
    "proto",
    "src_hi",
    "src_lo",
    "dst_hi",
    "dst_lo",
    "sport",
    "dport",
    "ip_len",
    "payload_wire_len",
    "tcp_flags",
    "src_mac",
)

Columns = dict[str, np.ndarray]


def _empty_state() -> Columns:
    return {name: np.zeros(0, dtype=dtype) for name, dtype in _STATE_DTYPES.items()}


def _take(cols: Columns, index: np.ndarray) -> Columns:
    return {name: column[index] for name, column in cols.items()}


def _concat(parts: list[Columns]) -> Columns:
    parts = [p for p in parts if p["key"].shape[0]]
    if not parts:
        return _empty_state()
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([p[name] for p in parts]) for name in _STATE_SCHEMA}


class FlowTable:
    """Open flows; :meth:`update` folds in a batch and returns the flows that ended."""

    def __init__(self, timeouts: FlowTimeouts | None = None, max_flows: int = 200_000) -> None:
        self.timeouts = timeouts or FlowTimeouts()
        self.max_flows = max_flows
        self._state = _empty_state()
        self.next_uid = 1
        self.flows_started = 0
        self.flows_evicted = 0

    def __len__(self) -> int:
        return int(self._state["key"].shape[0])

    @property
    def state(self) -> pl.DataFrame:
        """The open flows in canonical a/b form (a copy; the table keeps numpy columns)."""
        return _frame(self._state, _STATE_SCHEMA)

    def update(self, packets: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Fold ``packets`` in; returns (flows that started in this batch, flows that ended).

        ``packets`` has the decoded columns ts, proto, src_hi, src_lo, dst_hi, dst_lo, sport, dport,
        ip_len, payload_wire_len, tcp_flags, src_mac (rows that are not TCP/UDP/ICMP are
        ignored). Both frames returned are in orig/resp form (see :func:`to_conn`).
        """
        return self.update_columns({name: packets[name].to_numpy() for name in PACKET_INPUT})

    def update_columns(self, packets: Mapping[str, np.ndarray]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """:meth:`update` for packet columns given as numpy arrays (see ``PACKET_INPUT``)."""
        seg = self._segments(packets)
        if seg is None:
            return _empty_conn(), to_conn(self._expire(None))
        state = self._state
        t = self.timeouts
        n_state = int(state["key"].shape[0])
        seg_key = seg["key"]
        proto = seg["proto"]
        # Each segment's open flow of the same key, if any (state keys are unique).
        if n_state:
            sorter = np.argsort(state["key"], kind="stable")
            sorted_keys = state["key"][sorter]
            at = np.minimum(np.searchsorted(sorted_keys, seg_key), n_state - 1)
            hit = sorted_keys[at] == seg_key
            sidx = sorter[at]
        else:
            hit = np.zeros(seg_key.shape[0], dtype=bool)
            sidx = np.zeros(seg_key.shape[0], dtype=np.int64)
        continues = hit & (seg["seg_rank"] == 0)
        if continues.any():
            s_last = state["last_ts"][sidx]
            continues &= (seg["first_ts"] - s_last) <= _timeouts(proto, t)
            continues &= ~_closed(state["a_flags"][sidx], state["b_flags"][sidx], proto)

        # Open state rows replaced by a new segment of the same key have ended.
        touched = np.zeros(n_state, dtype=bool)
        touched[sidx[hit]] = True
        superseded = np.zeros(n_state, dtype=bool)
        superseded[sidx[hit & ~continues]] = True
        ended_state = _take(state, np.flatnonzero(superseded))

        cont_rows = np.flatnonzero(continues)
        cont = _take(seg, cont_rows)
        old = _take(state, sidx[cont_rows])
        merged: Columns = {"key": cont["key"], "proto": cont["proto"], "last_ts": cont["last_ts"]}
        for name in _KEPT:
            merged[name] = old[name]
        for name in _SUMS:
            merged[name] = cont[name] + old[name]
        merged["a_flags"] = cont["a_flags"] | old["a_flags"]
        merged["b_flags"] = cont["b_flags"] | old["b_flags"]
        merged["a_mac"] = np.where(old["a_mac"] != 0, old["a_mac"], cont["a_mac"])
        merged["b_mac"] = np.where(old["b_mac"] != 0, old["b_mac"], cont["b_mac"])

        fresh_rows = np.flatnonzero(~continues)
        fresh = {name: seg[name][fresh_rows] for name in _STATE_SCHEMA if name != "uid"}
        count = int(fresh_rows.shape[0])
        fresh["uid"] = np.arange(self.next_uid, self.next_uid + count, dtype=np.int64)
        self.next_uid += count
        self.flows_started += count

        # Of several segments of one key in this batch only the last stays open.
        is_last = seg["is_last"]
        ranked_last = np.concatenate((is_last[cont_rows], is_last[fresh_rows]))
        ranked = _concat([merged, fresh])
        still_open = _take(ranked, np.flatnonzero(ranked_last))
        ended_now = _take(ranked, np.flatnonzero(~ranked_last))

        self._state = _concat([_take(state, np.flatnonzero(~touched)), still_open])
        now = float(seg["last_ts"].max())
        ended = _concat([ended_state, ended_now, self._expire(now)])
        return to_conn(fresh), to_conn(ended)

    def close_all(self) -> pl.DataFrame:
        """End every open flow (end of capture) and return them."""
        ended, self._state = self._state, _empty_state()
        return to_conn(ended)

    def open_flows(self) -> pl.DataFrame:
        return to_conn(self._state)

    # -- internals ----------------------------------------------------------------------------
    def _segments(self, packets: Mapping[str, np.ndarray]) -> Columns | None:
        """This batch's flow segments, in (key, time) order, with their state columns.

        Besides the state columns: ``seg_rank`` (0 for the first segment of its key in the batch)
        and ``is_last`` (the last segment of its key in the batch).
        """
        proto_all = packets["proto"]
        sport_all = packets["sport"]
        selected = np.isin(proto_all, FLOW_PROTOCOLS) & (sport_all >= 0)
        rows = np.flatnonzero(selected)
        if rows.shape[0] == 0:
            return None
        if rows.shape[0] == proto_all.shape[0]:
            rows = slice(None)  # type: ignore[assignment]
        proto = proto_all[rows]
        icmp = (proto == PROTO_ICMP) | (proto == PROTO_ICMPV6)
        raw_sport = sport_all[rows]
        sport = np.where(icmp, 0, raw_sport)
        dport = np.where(icmp, 0, packets["dport"][rows])
        s_hi, s_lo = packets["src_hi"][rows], packets["src_lo"][rows]
        d_hi, d_lo = packets["dst_hi"][rows], packets["dst_lo"][rows]
        src_is_a = (s_hi < d_hi) | ((s_hi == d_hi) & ((s_lo < d_lo) | ((s_lo == d_lo) & (sport <= dport))))
        a_hi = np.where(src_is_a, s_hi, d_hi)
        a_lo = np.where(src_is_a, s_lo, d_lo)
        a_port = np.where(src_is_a, sport, dport)
        b_hi = np.where(src_is_a, d_hi, s_hi)
        b_lo = np.where(src_is_a, d_lo, s_lo)
        b_port = np.where(src_is_a, dport, sport)
        key = flow_keys(a_hi, a_lo, a_port, b_hi, b_lo, b_port, proto)
        ts = packets["ts"][rows]
        order = np.lexsort((ts, key))  # by key, then time; stable
        key = key[order]
        ts = ts[order]
        proto = proto[order]
        a = src_is_a[order]
        n = int(key.shape[0])

        # A new segment where the key changes or the gap within a key exceeds the protocol's timeout.
        new_key = np.empty(n, dtype=bool)
        new_key[0] = True
        np.not_equal(key[1:], key[:-1], out=new_key[1:])
        new_seg = new_key.copy()
        new_seg[1:] |= (ts[1:] - ts[:-1]) > _timeouts(proto[1:], self.timeouts)
        starts = np.flatnonzero(new_seg)
        last = np.empty_like(starts)
        last[:-1] = starts[1:] - 1
        last[-1] = n - 1

        ip_len = packets["ip_len"][rows][order]
        pay = packets["payload_wire_len"][rows][order]
        flags = packets["tcp_flags"][rows][order]
        src_mac = packets["src_mac"][rows][order]
        zero = np.zeros(n, dtype=np.int64)
        b = ~a
        first = order[starts]

        def a_or_b_mac(side: np.ndarray) -> np.ndarray:
            # The sender MAC of the side's first packet in the segment, 0 when it sent none.
            where = np.flatnonzero(side)
            if where.shape[0] == 0:
                return np.zeros(starts.shape[0], dtype=np.uint64)
            at = np.searchsorted(where, starts)
            found = at < where.shape[0]
            at = np.minimum(at, where.shape[0] - 1)
            found &= where[at] <= last
            return np.where(found, src_mac[where[at]], np.uint64(0)).astype(np.uint64)

        seg: Columns = {
            "key": key[starts],
            "proto": proto[starts],
            "a_hi": a_hi[first],
            "a_lo": a_lo[first],
            "a_port": a_port[first].astype(np.int64),
            "b_hi": b_hi[first],
            "b_lo": b_lo[first],
            "b_port": b_port[first].astype(np.int64),
            "orig_is_a": a[starts],
            "first_ts": ts[starts],
            "last_ts": ts[last],
            "a_pkts": np.add.reduceat(a.astype(np.int64), starts),
            "a_ip_bytes": np.add.reduceat(np.where(a, ip_len, zero), starts),
            "a_bytes": np.add.reduceat(np.where(a, pay, zero), starts),
            "a_flags": np.bitwise_or.reduceat(np.where(a, flags, zero), starts),
            "b_pkts": np.add.reduceat(b.astype(np.int64), starts),
            "b_ip_bytes": np.add.reduceat(np.where(b, ip_len, zero), starts),
            "b_bytes": np.add.reduceat(np.where(b, pay, zero), starts),
            "b_flags": np.bitwise_or.reduceat(np.where(b, flags, zero), starts),
            "a_mac": a_or_b_mac(a),
            "b_mac": a_or_b_mac(b),
            "icmp_type": np.where(icmp, raw_sport, -1)[first].astype(np.int64),
        }
        # Rank of each segment among the segments of its key (segments of a key are adjacent).
        seg_new_key = new_key[starts]
        key_first = np.flatnonzero(seg_new_key)
        group = np.cumsum(seg_new_key) - 1
        seg["seg_rank"] = np.arange(starts.shape[0], dtype=np.int64) - key_first[group]
        is_last = np.empty(starts.shape[0], dtype=bool)
        is_last[:-1] = seg_new_key[1:]
        is_last[-1] = True
        seg["is_last"] = is_last
        return seg

    def _expire(self, now: float | None) -> Columns:
        """Close flows idle past their timeout at capture time ``now``, and any over the cap."""
        state = self._state
        ended = _empty_state()
        if now is not None and state["key"].shape[0]:
            idle = now - state["last_ts"]
            proto = state["proto"]
            expired = (idle > _timeouts(proto, self.timeouts)) | (
                _closed(state["a_flags"], state["b_flags"], proto) & (idle > self.timeouts.tcp_closed)
            )
            if expired.any():
                ended = _take(state, np.flatnonzero(expired))
                state = self._state = _take(state, np.flatnonzero(~expired))
        height = int(state["key"].shape[0])
        if height > self.max_flows:
            over = height - self.max_flows
            state = _take(state, np.argsort(state["last_ts"], kind="stable"))
            ended = _concat([ended, _take(state, np.arange(over))])
            self._state = _take(state, np.arange(over, height))
            self.flows_evicted += over
        return ended


def _timeouts(proto: np.ndarray, t: FlowTimeouts) -> np.ndarray:
    return np.where(proto == PROTO_TCP, t.tcp, np.where(proto == PROTO_UDP, t.udp, t.icmp))


def _closed(a_flags: np.ndarray, b_flags: np.ndarray, proto: np.ndarray) -> np.ndarray:
    fin_both = ((a_flags & TCP_FIN) > 0) & ((b_flags & TCP_FIN) > 0)
    reset = ((a_flags | b_flags) & TCP_RST) > 0
    return (proto == PROTO_TCP) & (fin_both | reset)


CONN_SCHEMA: dict[str, type[pl.DataType]] = {
    "uid": pl.Int64,
    "proto": pl.Int64,
    "first_ts": pl.Float64,
    "last_ts": pl.Float64,
    "orig_hi": pl.UInt64,
    "orig_lo": pl.UInt64,
    "orig_p": pl.Int64,
    "resp_hi": pl.UInt64,
    "resp_lo": pl.UInt64,
    "resp_p": pl.Int64,
    "orig_pkts": pl.Int64,
    "orig_ip_bytes": pl.Int64,
    "orig_bytes": pl.Int64,
    "orig_flags": pl.Int64,
    "resp_pkts": pl.Int64,
    "resp_ip_bytes": pl.Int64,
    "resp_bytes": pl.Int64,
    "resp_flags": pl.Int64,
    "orig_mac": pl.UInt64,
    "resp_mac": pl.UInt64,
    "icmp_type": pl.Int64,
}


def _empty_conn() -> pl.DataFrame:
    return pl.DataFrame(schema=CONN_SCHEMA)


def _frame(cols: Mapping[str, np.ndarray], schema: dict[str, type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame({name: pl.Series(name, cols[name], dtype=dtype) for name, dtype in schema.items()})


def to_conn(state: pl.DataFrame | Mapping[str, np.ndarray]) -> pl.DataFrame:
    """State rows (canonical a/b endpoints) as conn rows (originator and responder)."""
    if isinstance(state, pl.DataFrame):
        if state.height == 0:
            return _empty_conn()
        state = {name: state[name].to_numpy() for name in _STATE_SCHEMA}
    if state["key"].shape[0] == 0:
        return _empty_conn()
    o = state["orig_is_a"]

    def pick(a_name: str, b_name: str) -> np.ndarray:
        return np.where(o, state[a_name], state[b_name])

    cols = {
        "uid": state["uid"],
        "proto": state["proto"],
        "first_ts": state["first_ts"],
        "last_ts": state["last_ts"],
        "orig_hi": pick("a_hi", "b_hi"),
        "orig_lo": pick("a_lo", "b_lo"),
        "orig_p": pick("a_port", "b_port"),
        "resp_hi": pick("b_hi", "a_hi"),
        "resp_lo": pick("b_lo", "a_lo"),
        "resp_p": pick("b_port", "a_port"),
        "orig_pkts": pick("a_pkts", "b_pkts"),
        "orig_ip_bytes": pick("a_ip_bytes", "b_ip_bytes"),
        "orig_bytes": pick("a_bytes", "b_bytes"),
        "orig_flags": pick("a_flags", "b_flags"),
        "resp_pkts": pick("b_pkts", "a_pkts"),
        "resp_ip_bytes": pick("b_ip_bytes", "a_ip_bytes"),
        "resp_bytes": pick("b_bytes", "a_bytes"),
        "resp_flags": pick("b_flags", "a_flags"),
        "orig_mac": pick("a_mac", "b_mac"),
        "resp_mac": pick("b_mac", "a_mac"),
        "icmp_type": state["icmp_type"],
    }
    return _frame(cols, CONN_SCHEMA)


def handshake_completed(conn: pl.DataFrame) -> pl.Series:
    """TCP flows where the originator sent SYN and ACK and the responder SYN and ACK."""
    syn_ack = 0x12
    return (
        (conn["proto"] == PROTO_TCP)
        & ((conn["orig_flags"] & syn_ack) == syn_ack)
        & ((conn["resp_flags"] & syn_ack) == syn_ack)
    )
