"""arp_spoof: a MAC claiming an IP that another, still active, MAC holds (no baseline).

Bindings IP -> MAC come from ARP: the sender fields (spa, sha) of requests and replies (probes from
0.0.0.0 are ignored). Each IP has an *owner*: the first MAC that claimed it. When another MAC claims it:

- the owner was silent (no frame from its MAC, no ARP claim) for more than ``silence`` = 600 s: this is
  a DHCP re-assignment; the claimer becomes the owner, nothing is reported. The same holds when both
  MACs belong to devices announcing the same host name (a phone back with a new randomized MAC),
  except for the gateway's address;
- otherwise it is an IP-to-MAC flip: a finding on the claiming device. Critical (9.5) when the claimed
  IP is the gateway's (a man-in-the-middle on all of the LAN's internet traffic), high (8.0) for any
  other IP (a MITM of one device, or an IP conflict).

The gateway is learned from traffic, not configured: the MAC that receives most frames sent by local
devices to non-local addresses; its IPs are those it owns in ARP. A device claiming its own IP again
and again is not a conflict.

A gratuitous-reply flood (>= ``flood_replies`` = 30 unsolicited ARP replies - broadcast, or claiming
spa == tpa - from one MAC within ``window`` = 60 s) is reported too, medium (5.5), unless that MAC is
already reported for a flip in the same window.

Findings repeat at most once per window per (claimed IP, claiming MAC). The device is the claimer
(the frame's sender MAC when unicast, else the ARP sender MAC); ``peer`` is the claimed IP.

Cost: ARP claims are handled per (IP, MAC) pair per batch (ARP is a tiny share of traffic); the
activity of MACs and the gateway counts come from at most ``sample_rows`` evenly spaced rows per
batch (vectorized), and the exact frames of the batch are consulted only when a conflict needs the
owner's last activity. Memory: at most ``max_bindings`` IPs and MACs are tracked (least recently
seen dropped).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.model import DetectorSettings, Finding, Severity, setting
from heimdal_tui.devices.locality import address_text, mac_text

_U64 = np.uint64
_V4 = 0xFFFF00000000
_GROUP_BIT = 1 << 40
_BROADCAST = 0xFFFFFFFFFFFF
MAX_VICTIMS = 10
MAX_CLAIM_TIMES = 4096
BULK_ROWS = 256  # ARP rows per batch past which plain re-claims are folded in vectorized


@dataclass(frozen=True, slots=True)
class Settings(DetectorSettings):
    window: float = setting(60.0, minimum=5.0, maximum=3600.0, help="counting window and repeat interval, s")
    silence: float = setting(
        600.0,
        minimum=10.0,
        maximum=86_400.0,
        help="an owner silent this long may lose its IP to another MAC without alert (DHCP re-use)",
    )
    flood_replies: int = setting(
        30, minimum=3, maximum=1_000_000, help="unsolicited ARP replies from one MAC per window (flood)"
    )
    gateway_min_frames: int = setting(
        20, minimum=1, maximum=1_000_000, help="frames towards the internet before a gateway is trusted"
    )
    sample_rows: int = setting(
        2048, minimum=64, maximum=1_000_000, help="rows per batch sampled for activity and gateway learning"
    )
    max_bindings: int = setting(10_000, minimum=16, maximum=1_000_000, help="IPs and MACs tracked")


@dataclass(slots=True)
class _Owner:
    mac: int
    since: float
    last_claim: float


@dataclass(slots=True)
class _Challenge:
    times: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_CLAIM_TIMES))
    victims: list[str] = field(default_factory=list)
    last_emit: float | None = None


def _unicast(mac: int) -> bool:
    return mac != 0 and not mac & _GROUP_BIT


def _same_host(ctx: BatchContext, old: int, new: int) -> bool:
    """Both MACs belong to devices announcing the same host name (DHCP, mDNS, NetBIOS)."""
    first = ctx.device_ref(old).name
    return bool(first) and first == ctx.device_ref(new).name


class ArpSpoofDetector:
    kind: ClassVar[str] = "arp_spoof"
    settings_type: ClassVar[type[DetectorSettings]] = Settings
    needs_baseline: ClassVar[bool] = False

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings: Settings = settings or Settings()
        self.owners: OrderedDict[int, _Owner] = OrderedDict()  # IPv4 (int) -> owner
        self.challenges: OrderedDict[tuple[int, int], _Challenge] = OrderedDict()
        self.activity: OrderedDict[int, float] = OrderedDict()  # MAC -> last frame seen
        self.gateway_frames: dict[int, float] = {}
        self.replies: OrderedDict[int, deque[float]] = OrderedDict()  # MAC -> unsolicited reply times
        self.flood_emitted: dict[int, float] = {}
        self.flip_emitted: dict[int, float] = {}
        self.reassigned = 0

    @property
    def gateway(self) -> int | None:
        """The learned gateway MAC, or None while unknown."""
        if not self.gateway_frames:
            return None
        mac, frames = max(self.gateway_frames.items(), key=lambda kv: kv[1])
        return mac if frames >= self.settings.gateway_min_frames else None

    def gateway_ips(self) -> list[int]:
        gw = self.gateway
        return [ip for ip, owner in self.owners.items() if owner.mac == gw] if gw is not None else []

    # -- per batch ---------------------------------------------------------------------------------
    def observe(self, ctx: BatchContext) -> list[Finding]:
        s = self.settings
        if not s.enabled:
            return []
        p = ctx.packets
        if p.height == 0:
            return []
        self._learn_gateway(p)
        eth = p["eth_type"].to_numpy()
        arp = eth == 0x0806
        findings: list[Finding] = []
        if arp.any():
            op = p["arp_op"].to_numpy()
            spa = p["arp_spa"].to_numpy().astype(_U64)
            arp &= ((op == 1) | (op == 2)) & (spa != 0) & (spa != _U64(0xFFFFFFFF))
            rows = np.flatnonzero(arp)
            if rows.shape[0]:
                findings = self._claims(ctx, rows)
        self._learn_activity(p)
        return findings

    def _sample(self, n: int) -> np.ndarray:
        step = max(1, n // self.settings.sample_rows)
        return np.arange(n - 1, -1, -step)[::-1]

    def _learn_gateway(self, p: Any) -> None:
        """Count frames from local devices to non-local unicast addresses, by receiving MAC."""
        idx = self._sample(p.height)
        step = max(1, p.height // self.settings.sample_rows)
        src_dev = p["src_dev"].to_numpy()[idx]
        dst_dev = p["dst_dev"].to_numpy()[idx]
        ip_ver = p["ip_ver"].to_numpy()[idx]
        dst_mac = p["dst_mac"].to_numpy()[idx].astype(_U64)
        out = (
            (src_dev != 0)
            & (dst_dev == 0)
            & (ip_ver > 0)
            & (dst_mac != 0)
            & ((dst_mac & _U64(_GROUP_BIT)) == 0)
        )
        if not out.any():
            return
        macs, counts = np.unique(dst_mac[out], return_counts=True)
        frames = self.gateway_frames
        for mac, count in zip(macs.tolist(), counts.tolist(), strict=True):
            frames[mac] = frames.get(mac, 0.0) + count * step
        if len(frames) > 256:
            for mac, _ in sorted(frames.items(), key=lambda kv: kv[1])[: len(frames) - 128]:
                del frames[mac]
        if sum(frames.values()) > 1e9:  # slow decay so a replaced router takes over in time
            for mac in frames:
                frames[mac] /= 2

    def _learn_activity(self, p: Any) -> None:
        idx = self._sample(p.height)
        macs = p["src_mac"].to_numpy()[idx][::-1]
        ts = p["ts"].to_numpy()[idx][::-1]
        uniq, first = np.unique(macs, return_index=True)  # latest occurrence (reversed order)
        activity = self.activity
        for mac, t in zip(uniq.tolist(), ts[first].tolist(), strict=True):
            if mac and float(t) > activity.get(mac, float("-inf")):
                activity[mac] = float(t)
                activity.move_to_end(mac)
        while len(activity) > self.settings.max_bindings:
            activity.popitem(last=False)

    def _last_active(self, p: Any, mac: int, before: float) -> float:
        """The owner's last frame or claim at or before ``before`` (state plus this batch, exactly)."""
        last = self.activity.get(mac, float("-inf"))
        src = p["src_mac"].to_numpy()
        ts = p["ts"].to_numpy()
        mine = (src == mac) & (ts <= before)
        if mine.any():
            last = max(last, float(ts[mine].max()))
        if last > before:  # activity learned from a later frame in an earlier, out-of-order batch
            last = before
        return last

    def _claims(self, ctx: BatchContext, rows: np.ndarray) -> list[Finding]:
        p = ctx.packets
        ts = p["ts"].to_numpy()[rows].astype(np.float64)
        op = p["arp_op"].to_numpy()[rows]
        spa = p["arp_spa"].to_numpy()[rows].astype(np.int64)
        sha = p["arp_sha"].to_numpy()[rows].astype(np.int64)
        src_mac = p["src_mac"].to_numpy()[rows].astype(np.int64)
        dst_mac = p["dst_mac"].to_numpy()[rows].astype(np.int64)
        tpa = p["arp_tpa"].to_numpy()[rows].astype(np.int64)
        unsolicited = (op == 2) & ((dst_mac == _BROADCAST) | (tpa == spa))
        if rows.shape[0] > BULK_ROWS:
            keep = self._bulk(spa, sha, ts, unsolicited)
            ts, op, spa, sha = ts[keep], op[keep], spa[keep], sha[keep]
            src_mac, dst_mac, tpa, unsolicited = src_mac[keep], dst_mac[keep], tpa[keep], unsolicited[keep]
        order = np.argsort(ts, kind="stable")
        findings: list[Finding] = []
        columns = (ts, op, spa, sha, src_mac, dst_mac, tpa, unsolicited)
        for t, op_i, ip, mac, src, dst, target, unsol in zip(
            *(c[order].tolist() for c in columns), strict=True
        ):
            if not _unicast(mac):
                continue
            sender = src if _unicast(src) else mac
            finding = self._claim(ctx, ip, mac, sender, t, target, dst, op_i)
            if finding is not None:
                findings.append(finding)
            if unsol:
                flood = self._unsolicited(sender, t, ip)
                if flood is not None:
                    findings.append(flood)
        return findings

    def _claim(
        self, ctx: BatchContext, ip: int, mac: int, sender: int, t: float, target: int, dst: int, op: int
    ) -> Finding | None:
        owner = self.owners.get(ip)
        if owner is None:
            self.owners[ip] = _Owner(mac, t, t)
            self._bound()
            return None
        self.owners.move_to_end(ip)
        if owner.mac == mac:
            owner.last_claim = max(owner.last_claim, t)
            return None
        owner_last = max(owner.last_claim, self._last_active(ctx.packets, owner.mac, t))
        if t - owner_last > self.settings.silence or (
            owner.mac != self.gateway and _same_host(ctx, owner.mac, mac)
        ):
            # the owner went quiet long ago (a re-assigned address), or it is the same host back with
            # a new (randomized) MAC: not an attack
            self.owners[ip] = _Owner(mac, t, t)
            self.challenges.pop((ip, mac), None)
            self.reassigned += 1
            return None
        return self._conflict(ip, mac, sender, owner, owner_last, t, target, dst, op)

    def _bulk(self, spa: np.ndarray, sha: np.ndarray, ts: np.ndarray, unsolicited: np.ndarray) -> np.ndarray:
        """Rows needing the per-claim path; plain re-claims by an IP's owner are folded in at once.

        A row is folded when its MAC owns its IP already, it is not an unsolicited reply, and no other
        row of the batch for that IP needs the per-claim path (so ownership cannot change meanwhile).
        """
        ips, inverse = np.unique(spa, return_inverse=True)
        owners = self.owners
        owner_of = np.array([owners[ip].mac if ip in owners else -1 for ip in ips.tolist()], dtype=np.int64)
        trivial = (owner_of[inverse.reshape(-1)] == sha) & ~unsolicited
        trivial &= ~np.isin(spa, spa[~trivial])
        if trivial.any():
            order = np.lexsort((ts[trivial], spa[trivial]))
            ip_sorted = spa[trivial][order]
            t_sorted = ts[trivial][order]
            last = np.ones(ip_sorted.shape[0], dtype=bool)
            last[:-1] = ip_sorted[1:] != ip_sorted[:-1]
            for ip, t in zip(ip_sorted[last].tolist(), t_sorted[last].tolist(), strict=True):
                owner = owners[ip]
                owner.last_claim = max(owner.last_claim, t)
        return np.flatnonzero(~trivial)

    def _bound(self) -> None:
        limit = self.settings.max_bindings
        while len(self.owners) > limit:
            self.owners.popitem(last=False)
        while len(self.challenges) > limit:
            self.challenges.popitem(last=False)
        while len(self.replies) > limit:
            self.replies.popitem(last=False)

    def _conflict(
        self,
        ip: int,
        mac: int,
        sender: int,
        owner: _Owner,
        owner_last: float,
        t: float,
        tpa: int,
        dst_mac: int,
        op: int,
    ) -> Finding | None:
        s = self.settings
        key = (ip, mac)
        challenge = self.challenges.get(key)
        if challenge is None:
            challenge = self.challenges[key] = _Challenge()
            self._bound()
        self.challenges.move_to_end(key)
        challenge.times.append(t)
        while challenge.times and challenge.times[0] <= t - s.window:
            challenge.times.popleft()
        if dst_mac != _BROADCAST and _unicast(dst_mac):
            victim = f"{address_text(0, _V4 | tpa)} ({mac_text(dst_mac)})" if tpa else mac_text(dst_mac)
        else:
            victim = "broadcast"
        if victim not in challenge.victims and len(challenge.victims) < MAX_VICTIMS:
            challenge.victims.append(victim)
        if challenge.last_emit is not None and t - challenge.last_emit < s.window:
            return None
        challenge.last_emit = t
        self.flip_emitted[sender] = t
        if len(self.flip_emitted) > s.max_bindings:
            self.flip_emitted.pop(next(iter(self.flip_emitted)))
        gateway = self.gateway
        is_gateway = gateway is not None and owner.mac == gateway
        ip_text = address_text(0, _V4 | ip)
        claim = f"{mac_text(mac)}"
        score = 9.5 if is_gateway else 8.0
        what = "the gateway " if is_gateway else ""
        summary = (
            f"{claim} claims {what}{ip_text}, which belongs to {mac_text(owner.mac)} "
            f"(active {t - owner_last:.0f} s ago): ARP spoofing"
        )
        if sender != mac:
            summary += f" (frames sent by {mac_text(sender)})"
        return Finding(
            kind=self.kind,
            device=sender,
            peer=ip_text,
            ts=t,
            severity=Severity.CRITICAL if is_gateway else Severity.HIGH,
            score=score,
            summary=summary,
            evidence={
                "claimed_ip": ip_text,
                "claimed_by": mac_text(mac),
                "sender_mac": mac_text(sender),
                "owner_mac": mac_text(owner.mac),
                "owner_since": round(owner.since, 3),
                "owner_last_active_s_ago": round(t - owner_last, 1),
                "silence_threshold_s": s.silence,
                "gateway_impersonation": is_gateway,
                "gateway_mac": mac_text(gateway) if gateway is not None else None,
                "claims_in_window": len(challenge.times),
                "window_s": s.window,
                "arp_op": "reply" if op == 2 else "request",
                "victims": list(challenge.victims),
            },
        )

    def _unsolicited(self, sender: int, t: float, ip: int) -> Finding | None:
        s = self.settings
        times = self.replies.get(sender)
        if times is None:
            times = self.replies[sender] = deque(maxlen=MAX_CLAIM_TIMES)
            self._bound()
        self.replies.move_to_end(sender)
        times.append(t)
        while times and times[0] <= t - s.window:
            times.popleft()
        if len(times) < s.flood_replies:
            return None
        last = self.flood_emitted.get(sender)
        if last is not None and t - last < s.window:
            return None
        last_flip = self.flip_emitted.get(sender)
        if last_flip is not None and t - last_flip < s.window:
            return None  # already reported as spoofing in this window
        self.flood_emitted[sender] = t
        if len(self.flood_emitted) > s.max_bindings:
            self.flood_emitted.pop(next(iter(self.flood_emitted)))
        ip_text = address_text(0, _V4 | ip)
        return Finding(
            kind=self.kind,
            device=sender,
            peer=None,
            ts=t,
            severity=Severity.MEDIUM,
            score=5.5,
            summary=(
                f"{mac_text(sender)} sent {len(times)} unsolicited ARP replies in {s.window:.0f} s "
                f"(latest claims {ip_text})"
            ),
            evidence={
                "flood": True,
                "sender_mac": mac_text(sender),
                "unsolicited_replies": len(times),
                "threshold": s.flood_replies,
                "window_s": s.window,
                "latest_claimed_ip": ip_text,
            },
        )
