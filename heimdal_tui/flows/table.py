"""Bidirectional flows (connections), tracked per batch with polars.

A flow is the traffic between two endpoints (address, port) under one transport protocol (TCP, UDP,
ICMP, ICMPv6), in both directions. Its originator is the sender of its first packet. A flow ends
when it has been idle for longer than its protocol's timeout (TCP flows also end soon after both
sides closed or one side reset), and a later packet with the same endpoints starts a new flow, as
Zeek's conn.log does.

Every batch is sorted by (flow key, time) and cut into segments wherever the gap inside one key
exceeds the timeout; segments are aggregated in one group_by and merged with the open-flow state by
key. Nothing here runs per packet in Python.

Memory: at most ``max_flows`` open flows; past that the least recently active are closed early.
"""

from __future__ import annotations

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

_SUMS = ("a_pkts", "a_ip_bytes", "a_bytes", "b_pkts", "b_ip_bytes", "b_bytes")


class FlowTable:
    """Open flows; :meth:`update` folds in a batch and returns the flows that ended."""

    def __init__(self, timeouts: FlowTimeouts | None = None, max_flows: int = 200_000) -> None:
        self.timeouts = timeouts or FlowTimeouts()
        self.max_flows = max_flows
        self.state = pl.DataFrame(schema=_STATE_SCHEMA)
        self.next_uid = 1
        self.flows_started = 0
        self.flows_evicted = 0

    def __len__(self) -> int:
        return self.state.height

    def update(self, packets: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Fold ``packets`` in; returns (flows that started in this batch, flows that ended).

        ``packets`` has the decoded columns ts, proto, src_hi, src_lo, dst_hi, dst_lo, sport, dport,
        ip_len, payload_wire_len, tcp_flags, src_mac, dst_mac (rows that are not TCP/UDP/ICMP are
        ignored). Both frames returned are in orig/resp form (see :func:`to_conn`).
        """
        segments = self._segments(packets)
        if segments.height == 0:
            return _empty_conn(), self._expire(None)
        t = self.timeouts
        joined = segments.join(self.state, on="key", how="left", suffix="_s")
        timeout = _timeout_expr(t)
        continues = (
            pl.col("uid").is_not_null()
            & (pl.col("seg_rank") == 0)
            & ((pl.col("first_ts") - pl.col("last_ts_s")) <= timeout)
            & ~_closed_expr("a_flags_s", "b_flags_s", "proto")
        )
        joined = joined.with_columns(continues.fill_null(False).alias("continues"))

        # Open state rows replaced by a new segment of the same key have ended.
        superseded_keys = joined.filter(pl.col("uid").is_not_null() & ~pl.col("continues"))["key"].unique()
        ended_state = self.state.filter(pl.col("key").is_in(superseded_keys.implode()))

        cont = joined.filter(pl.col("continues"))
        merged_cont = cont.select(
            "key",
            "uid",
            "proto",
            *[pl.col(f"{c}_s").alias(c) for c in ("a_hi", "a_lo", "a_port", "b_hi", "b_lo", "b_port")],
            pl.col("orig_is_a_s").alias("orig_is_a"),
            pl.col("first_ts_s").alias("first_ts"),
            pl.col("last_ts"),
            *[(pl.col(c) + pl.col(f"{c}_s")).alias(c) for c in _SUMS],
            (pl.col("a_flags") | pl.col("a_flags_s")).alias("a_flags"),
            (pl.col("b_flags") | pl.col("b_flags_s")).alias("b_flags"),
            pl.when(pl.col("a_mac_s") != 0).then(pl.col("a_mac_s")).otherwise(pl.col("a_mac")).alias("a_mac"),
            pl.when(pl.col("b_mac_s") != 0).then(pl.col("b_mac_s")).otherwise(pl.col("b_mac")).alias("b_mac"),
            pl.col("icmp_type_s").alias("icmp_type"),
        ).select(*_STATE_SCHEMA)
        fresh = joined.filter(~pl.col("continues")).select(segments.columns)
        fresh = fresh.with_columns(
            pl.int_range(self.next_uid, self.next_uid + fresh.height, dtype=pl.Int64).alias("uid")
        )
        self.next_uid += fresh.height
        self.flows_started += fresh.height
        fresh = fresh.select(*_STATE_SCHEMA, "seg_rank")
        # Of several segments of one key in this batch only the last stays open.
        is_last = pl.col("seg_rank") == pl.col("seg_rank").max().over("key")
        ranked = pl.concat(
            [merged_cont.with_columns(pl.lit(0, dtype=pl.Int64).alias("seg_rank")), fresh],
            how="vertical_relaxed",
        )
        still_open = ranked.filter(is_last).drop("seg_rank")
        ended_now = ranked.filter(~is_last).drop("seg_rank")

        untouched = self.state.filter(~pl.col("key").is_in(segments["key"].unique().implode()))
        self.state = pl.concat([untouched, still_open.select(list(_STATE_SCHEMA))], how="vertical_relaxed")
        ended = pl.concat([ended_state, ended_now.select(list(_STATE_SCHEMA))], how="vertical_relaxed")
        now = float(segments["last_ts"].max())  # type: ignore[arg-type]
        ended = pl.concat([ended, self._expire(now, raw=True)], how="vertical_relaxed")
        return to_conn(fresh.drop("seg_rank")), to_conn(ended)

    def close_all(self) -> pl.DataFrame:
        """End every open flow (end of capture) and return them."""
        ended, self.state = self.state, pl.DataFrame(schema=_STATE_SCHEMA)
        return to_conn(ended)

    def open_flows(self) -> pl.DataFrame:
        return to_conn(self.state)

    # -- internals ----------------------------------------------------------------------------
    def _segments(self, packets: pl.DataFrame) -> pl.DataFrame:
        pk = packets.filter(pl.col("proto").is_in(FLOW_PROTOCOLS) & (pl.col("sport") >= 0))
        if pk.height == 0:
            return pl.DataFrame()
        proto = pk["proto"].to_numpy()
        icmp = (proto == PROTO_ICMP) | (proto == PROTO_ICMPV6)
        sport = np.where(icmp, 0, pk["sport"].to_numpy())
        dport = np.where(icmp, 0, pk["dport"].to_numpy())
        s_hi, s_lo = pk["src_hi"].to_numpy(), pk["src_lo"].to_numpy()
        d_hi, d_lo = pk["dst_hi"].to_numpy(), pk["dst_lo"].to_numpy()
        src_is_a = (s_hi < d_hi) | ((s_hi == d_hi) & ((s_lo < d_lo) | ((s_lo == d_lo) & (sport <= dport))))
        a_hi = np.where(src_is_a, s_hi, d_hi)
        a_lo = np.where(src_is_a, s_lo, d_lo)
        a_port = np.where(src_is_a, sport, dport)
        b_hi = np.where(src_is_a, d_hi, s_hi)
        b_lo = np.where(src_is_a, d_lo, s_lo)
        b_port = np.where(src_is_a, dport, sport)
        key = flow_keys(a_hi, a_lo, a_port, b_hi, b_lo, b_port, proto)
        frame = pl.DataFrame(
            {
                "key": key,
                "ts": pk["ts"],
                "proto": proto,
                "a_hi": a_hi,
                "a_lo": a_lo,
                "a_port": a_port,
                "b_hi": b_hi,
                "b_lo": b_lo,
                "b_port": b_port,
                "src_is_a": src_is_a,
                "ip_len": pk["ip_len"],
                "pay": pk["payload_wire_len"],
                "flags": pk["tcp_flags"],
                "src_mac": pk["src_mac"],
                "icmp_type": np.where(icmp, pk["sport"].to_numpy(), -1),
            }
        ).sort("key", "ts", maintain_order=True)
        t = self.timeouts
        gap_limit = (
            pl.when(pl.col("proto") == PROTO_TCP)
            .then(pl.lit(t.tcp))
            .when(pl.col("proto") == PROTO_UDP)
            .then(pl.lit(t.udp))
            .otherwise(pl.lit(t.icmp))
        )
        new_segment = (pl.col("key") != pl.col("key").shift(1)).fill_null(True) | (
            (pl.col("ts") - pl.col("ts").shift(1)) > gap_limit
        ).fill_null(True)
        frame = frame.with_columns(new_segment.cum_sum().alias("seg"))
        a = pl.col("src_is_a")
        b = ~pl.col("src_is_a")
        segments = frame.group_by("seg", maintain_order=True).agg(
            pl.col("key").first(),
            pl.col("proto").first(),
            pl.col("a_hi").first(),
            pl.col("a_lo").first(),
            pl.col("a_port").first(),
            pl.col("b_hi").first(),
            pl.col("b_lo").first(),
            pl.col("b_port").first(),
            pl.col("src_is_a").first().alias("orig_is_a"),
            pl.col("ts").first().alias("first_ts"),
            pl.col("ts").last().alias("last_ts"),
            a.sum().cast(pl.Int64).alias("a_pkts"),
            pl.col("ip_len").filter(a).sum().alias("a_ip_bytes"),
            pl.col("pay").filter(a).sum().alias("a_bytes"),
            pl.col("flags").filter(a).bitwise_or().fill_null(0).alias("a_flags"),
            b.sum().cast(pl.Int64).alias("b_pkts"),
            pl.col("ip_len").filter(b).sum().alias("b_ip_bytes"),
            pl.col("pay").filter(b).sum().alias("b_bytes"),
            pl.col("flags").filter(b).bitwise_or().fill_null(0).alias("b_flags"),
            pl.col("src_mac").filter(a).first().fill_null(0).alias("a_mac"),
            pl.col("src_mac").filter(b).first().fill_null(0).alias("b_mac"),
            pl.col("icmp_type").first(),
        )
        segments = segments.with_columns(
            pl.col("seg").rank("ordinal").over("key").cast(pl.Int64).sub(1).alias("seg_rank"),
            *[pl.col(c).cast(pl.Int64) for c in ("a_ip_bytes", "a_bytes", "b_ip_bytes", "b_bytes")],
            pl.col("a_mac").cast(pl.UInt64),
            pl.col("b_mac").cast(pl.UInt64),
        ).drop("seg")
        return segments

    def _expire(self, now: float | None, raw: bool = False) -> pl.DataFrame:
        """Close flows idle past their timeout at capture time ``now``, and any over the cap."""
        ended = pl.DataFrame(schema=_STATE_SCHEMA)
        if now is not None and self.state.height:
            idle = now - pl.col("last_ts")
            expired = (idle > _timeout_expr(self.timeouts)) | (
                _closed_expr("a_flags", "b_flags", "proto") & (idle > self.timeouts.tcp_closed)
            )
            ended = self.state.filter(expired)
            if ended.height:
                self.state = self.state.filter(~expired)
        if self.state.height > self.max_flows:
            over = self.state.height - self.max_flows
            self.state = self.state.sort("last_ts")
            ended = pl.concat([ended, self.state.head(over)])
            self.state = self.state.slice(over)
            self.flows_evicted += over
        return ended if raw else to_conn(ended)


def _timeout_expr(t: FlowTimeouts) -> pl.Expr:
    return (
        pl.when(pl.col("proto") == PROTO_TCP)
        .then(pl.lit(t.tcp))
        .when(pl.col("proto") == PROTO_UDP)
        .then(pl.lit(t.udp))
        .otherwise(pl.lit(t.icmp))
    )


def _closed_expr(a_flags: str, b_flags: str, proto: str) -> pl.Expr:
    fin_both = ((pl.col(a_flags) & TCP_FIN) > 0) & ((pl.col(b_flags) & TCP_FIN) > 0)
    reset = ((pl.col(a_flags) | pl.col(b_flags)) & TCP_RST) > 0
    return (pl.col(proto) == PROTO_TCP) & (fin_both | reset)


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


def to_conn(state: pl.DataFrame) -> pl.DataFrame:
    """State rows (canonical a/b endpoints) as conn rows (originator and responder)."""
    if state.height == 0:
        return _empty_conn()
    o = pl.col("orig_is_a")

    def pick(a_name: str, b_name: str) -> pl.Expr:
        return pl.when(o).then(pl.col(a_name)).otherwise(pl.col(b_name))

    return state.select(
        "uid",
        "proto",
        "first_ts",
        "last_ts",
        pick("a_hi", "b_hi").alias("orig_hi"),
        pick("a_lo", "b_lo").alias("orig_lo"),
        pick("a_port", "b_port").alias("orig_p"),
        pick("b_hi", "a_hi").alias("resp_hi"),
        pick("b_lo", "a_lo").alias("resp_lo"),
        pick("b_port", "a_port").alias("resp_p"),
        pick("a_pkts", "b_pkts").alias("orig_pkts"),
        pick("a_ip_bytes", "b_ip_bytes").alias("orig_ip_bytes"),
        pick("a_bytes", "b_bytes").alias("orig_bytes"),
        pick("a_flags", "b_flags").alias("orig_flags"),
        pick("b_pkts", "a_pkts").alias("resp_pkts"),
        pick("b_ip_bytes", "a_ip_bytes").alias("resp_ip_bytes"),
        pick("b_bytes", "a_bytes").alias("resp_bytes"),
        pick("b_flags", "a_flags").alias("resp_flags"),
        pick("a_mac", "b_mac").alias("orig_mac"),
        pick("b_mac", "a_mac").alias("resp_mac"),
        "icmp_type",
    )


def handshake_completed(conn: pl.DataFrame) -> pl.Series:
    """TCP flows where the originator sent SYN and ACK and the responder SYN and ACK."""
    syn_ack = 0x12
    return (
        (conn["proto"] == PROTO_TCP)
        & ((conn["orig_flags"] & syn_ack) == syn_ack)
        & ((conn["resp_flags"] & syn_ack) == syn_ack)
    )
