"""Flows waiting for their answer, so that a service counts in the batch its answer arrives.

A service (used by the originator, served by the responder) counts once the responder answered: a
TCP SYN-ACK, or any UDP reply (flows.table's ``resp_flags`` and ``resp_pkts``). A new flow's row
shows its state at the end of the batch it started in; when the answer comes in a later batch, the
flow table reports it only when the flow ends, up to its idle timeout later (60 s for UDP, 300 s
for TCP). In a live sensor, whose batches are a fraction of a second long, that is most flows.

The watch keeps every unanswered new TCP/UDP flow that has a local side, and looks for its answer in
the packets of the batches that follow (the responder's address and port towards the originator's;
TCP flags are accumulated as the flow table does). An answered flow is handed back once, with the
flow's own first time and the responder's device as its first packet names it (a new flow's row
could not know the responder's MAC yet), and forgotten; a flow that ends first, or ended in the batch
it began, is forgotten too (its ended row says all). Everything is numpy: one hash per packet and a
sorted lookup per batch.
"""

from __future__ import annotations

import numpy as np

_U64 = np.uint64
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_SYN_ACK = 0x12
_SYN = 0x02
_TCP, _UDP = 6, 17
# Columns kept per waiting flow (those the service extraction reads).
FLOW_COLUMNS = (
    "orig_dev",
    "resp_dev",
    "proto",
    "resp_p",
    "first_ts",
    "orig_hi",
    "orig_lo",
    "resp_hi",
    "resp_lo",
)


def _hash(*columns: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row (splitmix64 finaliser; collisions are negligible at these sizes)."""
    h = np.full(columns[0].shape[0], 0x9E3779B97F4A7C15, dtype=_U64)
    with np.errstate(over="ignore"):
        for column in columns:
            h ^= column.astype(_U64, copy=False)
            h = (h ^ (h >> _U64(30))) * _M1
            h = (h ^ (h >> _U64(27))) * _M2
            h ^= h >> _U64(31)
    return h


def member(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """``np.isin(values, pool)`` by a binary search per value in the sorted pool: several times
    quicker than isin's sort of both together at a batch's sizes (a few thousand flows, a few
    dozen pending probes)."""
    if pool.shape[0] == 0:
        return np.zeros(values.shape[0], dtype=bool)
    ordered = np.sort(pool)
    at = np.searchsorted(ordered, values)
    at[at == ordered.shape[0]] = 0
    return ordered[at] == values


def _flow_id(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Identity of a flow: its endpoints, ports, protocol and first time."""
    first_us = np.round(cols["first_ts"].astype(np.float64) * 1e6).astype(np.int64)
    return _hash(
        cols["orig_hi"],
        cols["orig_lo"],
        cols["resp_hi"],
        cols["resp_lo"],
        cols["orig_p"],
        cols["resp_p"],
        cols["proto"],
        first_us,
    )


class AnswerWatch:
    """Unanswered new flows (at most ``max_flows``, the oldest dropped first)."""

    def __init__(self, max_flows: int = 200_000) -> None:
        self.max_flows = max_flows
        self.answer_key = np.zeros(0, dtype=_U64)  # hash of (responder -> originator) 5-tuple
        self.flow_id = np.zeros(0, dtype=_U64)
        self.flags = np.zeros(0, dtype=np.int64)  # the responder's TCP flags so far
        self.responder = np.zeros(0, dtype=_U64)  # the responder's device key, once it sent
        self.cols: dict[str, np.ndarray] = {name: np.zeros(0) for name in FLOW_COLUMNS}

    def __len__(self) -> int:
        return int(self.answer_key.shape[0])

    def observe(
        self,
        new_flows: dict[str, np.ndarray] | None,
        ended_flows: dict[str, np.ndarray] | None,
        packets: dict[str, np.ndarray] | None,
    ) -> dict[str, np.ndarray] | None:
        """The flows (FLOW_COLUMNS) whose answer is in ``packets``; then the new unanswered flows
        join the watch. Each argument holds columns (flows.table's conn columns plus ``orig_dev`` /
        ``resp_dev``; the decoded packet columns), or None when empty."""
        ended = _flow_id(ended_flows) if ended_flows is not None else None
        if ended is not None and len(self):
            self._keep(~member(self.flow_id, ended))
        answered = self._answers(packets) if packets is not None and len(self) else None
        if new_flows is not None:
            self._add(new_flows, ended)
        return answered

    def _answers(self, packets: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        proto = packets["proto"]
        tcp = proto == _TCP
        if ((self.flags & _SYN_ACK) == _SYN).any():
            # A responder sent its SYN without the ACK: any of its packets may complete the answer.
            candidates = tcp | (proto == _UDP)
        else:
            # Only a packet carrying SYN can (a TCP answer needs the responder's SYN and ACK).
            candidates = (tcp & ((packets["tcp_flags"] & _SYN) != 0)) | (proto == _UDP)
        rows = np.flatnonzero(candidates)
        if rows.shape[0] == 0:
            return None
        keys = _hash(
            packets["src_hi"][rows],
            packets["src_lo"][rows],
            packets["dst_hi"][rows],
            packets["dst_lo"][rows],
            packets["sport"][rows],
            packets["dport"][rows],
            proto[rows],
        )
        order = np.argsort(self.answer_key, kind="stable")
        sorted_keys = self.answer_key[order]
        at = np.searchsorted(sorted_keys, keys)
        at_ok = np.minimum(at, sorted_keys.shape[0] - 1)
        hit = sorted_keys[at_ok] == keys
        if not hit.any():
            return None
        watched = order[at_ok[hit]]
        np.bitwise_or.at(self.flags, watched, packets["tcp_flags"][rows[hit]].astype(np.int64))
        # The responder's device, from its first packet: a new flow's row could not know its MAC
        # yet (the pipeline keys a side by the MAC of the side's first packet).
        firsts, where = np.unique(watched, return_index=True)
        unset = self.responder[firsts] == 0
        self.responder[firsts[unset]] = packets["src_dev"][rows[hit]][where[unset]].astype(_U64)
        replied = np.zeros(len(self), dtype=bool)
        replied[watched] = True
        tcp = self.cols["proto"] == _TCP
        done = replied & (~tcp | ((self.flags & _SYN_ACK) == _SYN_ACK))
        if not done.any():
            return None
        answered = {name: column[done] for name, column in self.cols.items()}
        answered["resp_dev"] = self.responder[done]
        self._keep(~done)
        return answered

    def _add(self, flows: dict[str, np.ndarray], ended: np.ndarray | None) -> None:
        proto = flows["proto"]
        syn_ack = (flows["resp_flags"] & _SYN_ACK) == _SYN_ACK
        waiting = ((proto == _TCP) & ~syn_ack) | ((proto == _UDP) & (flows["resp_pkts"] == 0))
        waiting &= (flows["orig_dev"] != 0) | (flows["resp_dev"] != 0)
        rows = np.flatnonzero(waiting)
        if rows.shape[0] == 0:
            return
        picked = {name: flows[name][rows] for name in (*FLOW_COLUMNS, "orig_p")}
        ids = _flow_id(picked)
        if ended is not None:
            # Started and ended in this batch: its ended row said all there is to say.
            alive = ~member(ids, ended)
            picked = {name: column[alive] for name, column in picked.items()}
            ids, rows = ids[alive], rows[alive]
            if rows.shape[0] == 0:
                return
        key = _hash(
            picked["resp_hi"],
            picked["resp_lo"],
            picked["orig_hi"],
            picked["orig_lo"],
            picked["resp_p"],
            picked["orig_p"],
            picked["proto"],
        )
        self.answer_key = np.concatenate((self.answer_key, key))
        self.flow_id = np.concatenate((self.flow_id, ids))
        self.flags = np.concatenate((self.flags, (flows["resp_flags"][rows]).astype(np.int64)))
        self.responder = np.concatenate((self.responder, np.zeros(rows.shape[0], dtype=_U64)))
        self.cols = {
            name: np.concatenate((self.cols[name], picked[name])) if len(self.cols[name]) else picked[name]
            for name in FLOW_COLUMNS
        }
        if len(self) > self.max_flows:
            keep = np.zeros(len(self), dtype=bool)
            keep[-self.max_flows :] = True
            self._keep(keep)

    def _keep(self, mask: np.ndarray) -> None:
        self.answer_key = self.answer_key[mask]
        self.flow_id = self.flow_id[mask]
        self.flags = self.flags[mask]
        self.responder = self.responder[mask]
        self.cols = {name: column[mask] for name, column in self.cols.items()}
