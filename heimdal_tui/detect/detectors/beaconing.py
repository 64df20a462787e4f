"""beaconing: a device opening connections to one remote peer at a regular interval (no baseline).

Input: new flows originated by a local device (``orig_dev != 0``), TCP and UDP, grouped per (device,
remote peer, protocol, responder port). Per group the start times of the last ``window`` = 7200 s are
kept (at most ``max_history`` = 64; starts closer than ``min_gap`` = 1 s to the previous one are one
check-in, so a client opening two connections at a time still looks periodic).

Once a group has >= ``min_connections`` = 6 starts, with intervals I:

- median interval m >= ``min_interval`` = 10 s (faster repeats are sessions, polling, retries);
- jitter = MAD(I) / m, the median absolute deviation relative to the median (robust to a missed
  or delayed check-in), must be <= a tolerance that grows with the evidence:
  ``max_jitter`` (0.1) x min(1, (n - 1) / (``full_evidence`` (20) - 1)) for n starts. A beacon with
  1-2 % jitter is reported after 6 connections; one with 5 % jitter after ~10; irregular traffic -
  or telemetry with +-30 % random spread, like the sample TV's 5-minute heartbeat, whose sample MAD
  can look small over 7 intervals - is not.

Not considered (configurable): UDP ports 53, 123, 5353, 67, 68, 1900, 137, 138 (DNS, NTP, mDNS, DHCP,
SSDP, NetBIOS: periodic by design); multicast/broadcast peers; peers inside the local networks; peers
in ``ignore_peers`` (addresses or networks) and peers whose DNS name ends with one of
``ignore_domains``.

Severity: medium (6.0): regular check-ins are also how much legitimate software phones home; 7.0 when
the device contacts the peer by bare IP (no DNS name seen for it). Repeats at most once per
``repeat`` = 3600 s per group. Memory: at most ``max_groups`` groups (least recently active dropped).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass
from itertools import pairwise
from typing import ClassVar

import numpy as np

from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.model import DetectorSettings, Finding, Severity, setting
from heimdal_tui.devices.locality import address_text
from heimdal_tui.flows.table import PROTO_NAMES

DEFAULT_IGNORE_UDP = (53, 123, 5353, 67, 68, 1900, 137, 138)


@dataclass(frozen=True, slots=True)
class Settings(DetectorSettings):
    window: float = setting(7200.0, minimum=60.0, maximum=7 * 86_400.0, help="history kept per peer, s")
    min_connections: int = setting(6, minimum=3, maximum=1000, help="connections before judging regularity")
    min_interval: float = setting(10.0, minimum=1.0, maximum=86_400.0, help="shortest median interval, s")
    max_jitter: float = setting(
        0.1, minimum=0.0, maximum=1.0, help="MAD / median interval allowed with full evidence"
    )
    full_evidence: int = setting(
        20, minimum=3, maximum=1000, help="connections at which the full jitter tolerance applies"
    )
    min_gap: float = setting(
        1.0, minimum=0.0, maximum=60.0, help="starts closer than this are one check-in, s"
    )
    repeat: float = setting(
        3600.0, minimum=60.0, maximum=7 * 86_400.0, help="repeat a finding at most this often, s"
    )
    ignore_udp_ports: tuple[int, ...] = setting(
        DEFAULT_IGNORE_UDP, help="UDP ports of periodic infrastructure"
    )
    ignore_tcp_ports: tuple[int, ...] = setting((), help="TCP ports never considered")
    ignore_peers: tuple[str, ...] = setting((), help="peer addresses or networks never considered")
    ignore_domains: tuple[str, ...] = setting((), help="peer DNS names (suffixes) never considered")
    max_history: int = setting(64, minimum=8, maximum=10_000, help="starts kept per group")
    max_groups: int = setting(10_000, minimum=16, maximum=1_000_000, help="groups tracked")


class BeaconingDetector:
    kind: ClassVar[str] = "beaconing"
    settings_type: ClassVar[type[DetectorSettings]] = Settings
    needs_baseline: ClassVar[bool] = False

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings: Settings = settings or Settings()
        # (device, peer hi, peer lo, proto, port) -> recent start times, least recently active
        # first. Tuples of floats: the garbage collector stops tracking them, so ten thousand
        # groups add nothing to its passes.
        self.groups: OrderedDict[tuple[int, int, int, int, int], tuple[float, ...]] = OrderedDict()
        self.last_emit: dict[tuple[int, int, int, int, int], float] = {}
        self._nets_for: tuple[str, ...] | None = None
        self._nets: list[ipaddress.IPv6Network] = []

    def _ignored_nets(self) -> list[ipaddress.IPv6Network]:
        wanted = self.settings.ignore_peers
        if wanted != self._nets_for:
            nets = []
            for text in wanted:
                try:
                    net = ipaddress.ip_network(text.strip(), strict=False)
                except ValueError:
                    continue
                if isinstance(net, ipaddress.IPv4Network):
                    net = ipaddress.IPv6Network(f"::ffff:{net.network_address}/{96 + net.prefixlen}")
                nets.append(net)
            self._nets, self._nets_for = nets, wanted
        return self._nets

    def observe(self, ctx: BatchContext) -> list[Finding]:
        s = self.settings
        nf = ctx.new_flows
        if not s.enabled or nf.height == 0:
            return []
        proto = nf["proto"].to_numpy()
        orig_dev = nf["orig_dev"].to_numpy()
        port = nf["resp_p"].to_numpy()
        rows = (orig_dev != 0) & ((proto == 6) | (proto == 17))
        if s.ignore_udp_ports:
            rows &= ~((proto == 17) & np.isin(port, np.asarray(s.ignore_udp_ports, dtype=np.int64)))
        if s.ignore_tcp_ports:
            rows &= ~((proto == 6) & np.isin(port, np.asarray(s.ignore_tcp_ports, dtype=np.int64)))
        if not rows.any():
            return []
        hi = nf["resp_hi"].to_numpy().astype(np.uint64)
        lo = nf["resp_lo"].to_numpy().astype(np.uint64)
        rows &= ctx.locality.unicast(hi, lo) & ~ctx.locality.local(hi, lo)
        idx = np.flatnonzero(rows)
        if idx.shape[0] == 0:
            return []
        first_ts = nf["first_ts"].to_numpy()
        order = idx[np.argsort(first_ts[idx], kind="stable")]
        nets = self._ignored_nets()
        domains = tuple(d.lower().strip(".") for d in s.ignore_domains)
        findings: list[Finding] = []
        groups, last_emit = self.groups, self.last_emit
        window, min_gap, history, repeat = s.window, s.min_gap, s.max_history, s.repeat
        for device, h, lo_, proto_, port_, t in zip(
            orig_dev[order].tolist(),
            hi[order].tolist(),
            lo[order].tolist(),
            proto[order].tolist(),
            port[order].tolist(),
            first_ts[order].tolist(),
            strict=True,
        ):
            key = (device, h, lo_, proto_, port_)
            if nets:
                value = ipaddress.IPv6Address((h << 64) | lo_)
                if any(value in net for net in nets):
                    continue
            starts = groups.get(key)
            if starts is None:
                starts = groups[key] = ()
                while len(groups) > s.max_groups:
                    dropped, _ = groups.popitem(last=False)
                    last_emit.pop(dropped, None)
            else:
                groups.move_to_end(key)
            if starts and t - starts[-1] < min_gap:
                continue
            starts += (t,)
            n = len(starts)
            drop = 0
            while drop < n and (starts[drop] <= t - window or n - drop > history):
                drop += 1
            if drop:
                starts = starts[drop:]
            groups[key] = starts
            if len(starts) < s.min_connections:
                continue
            emitted = last_emit.get(key)
            if emitted is not None and t - emitted < repeat:
                continue
            finding = self._judge(ctx, key, starts, t, domains)
            if finding is not None:
                last_emit[key] = t
                findings.append(finding)
        return findings

    def _judge(
        self,
        ctx: BatchContext,
        key: tuple[int, int, int, int, int],
        starts: tuple[float, ...],
        t: float,
        domains: tuple[str, ...],
    ) -> Finding | None:
        s = self.settings
        # A few dozen starts: plain floats (numpy's median costs ~10 us a call at this size, and
        # most groups judged are not regular); the same arithmetic as np.diff and np.median.
        times = sorted(starts)
        intervals = [later - earlier for earlier, later in pairwise(times)]
        median = _median(intervals)
        if median < s.min_interval or median <= 0:
            return None
        mad = _median([abs(interval - median) for interval in intervals])
        jitter = mad / median
        n = len(times)
        tolerance = s.max_jitter * min(1.0, (n - 1) / max(1, s.full_evidence - 1))
        if jitter > tolerance:
            return None
        device, hi, lo, proto, port = key
        name = ctx.peer_name(hi, lo)
        if name and domains:
            lowered = name.lower().rstrip(".")
            if any(lowered == d or lowered.endswith("." + d) for d in domains):
                return None
        peer = address_text(hi, lo)
        proto_name = PROTO_NAMES.get(proto, str(proto))
        label = f"{peer} ({name})" if name else peer
        ref = ctx.device_ref(device)
        who = ref.ip or ref.name or ref.mac or str(device)
        score = 6.0 if name else 7.0
        span = times[-1] - times[0]
        return Finding(
            kind=self.kind,
            device=device,
            peer=peer,
            ts=t,
            severity=Severity.from_score(score),
            score=score,
            summary=(
                f"{who} made {n} connections to {label} {proto_name}/{port} every {median:.0f} s "
                f"(jitter {jitter:.1%}) over {span / 60:.0f} min"
            ),
            evidence={
                "peer": peer,
                "peer_name": name,
                "service": f"{proto_name}/{port}",
                "connections": n,
                "median_interval_s": round(median, 2),
                "min_interval_s": round(min(intervals), 2),
                "max_interval_s": round(max(intervals), 2),
                "jitter": round(jitter, 4),
                "jitter_tolerance": round(tolerance, 4),
                "max_jitter": s.max_jitter,
                "span_s": round(span, 1),
                "window_s": s.window,
                "min_connections": s.min_connections,
            },
        )


def _median(values: list[float]) -> float:
    """np.median of ``values``: the middle one, or the mean of the middle two."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
