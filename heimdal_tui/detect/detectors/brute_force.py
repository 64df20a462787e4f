"""brute_force: bursts of connections from one source to an authentication service (no baseline).

Input: new TCP flows to one of ``ports`` (default 21 FTP, 22 SSH, 23 Telnet, 3389 RDP, 5900 VNC,
445 SMB, 110 POP3, 143 IMAP, 3306 MySQL, 5432 PostgreSQL, 1433 MS SQL, 8291 MikroTik Winbox), counted
per (source, target, port) in a sliding ``window`` = 60 s. ``min_attempts`` = 10 connections within
the window is a finding: password guessing tools open a connection per try (or per few tries), while
a legitimate client keeps one session open (an SSH login, an SMB mount, a mail client's 1-5 IMAP
connections). The sample's SSH attack makes 51 connections in 150 s (~20 per minute), Zeek's FTP
brute-force trace 30 in 59 s.

Connections are counted when they start (the flow's first packet), so the count does not wait for
flows to end and does not depend on batch boundaries. Failed logins *inside* one connection (several
USER/PASS pairs over one FTP control connection, several password prompts in one SSH session) are
not visible: detectors see headers, flows and the parsed application messages (DNS, DHCP, TLS
ClientHello, HTTP requests), not FTP or SSH payloads.

Attribution: the target's device when the target is local and the source remote (an exposed service
under attack; ``peer`` = the source); otherwise the source's device (a local device guessing
passwords, ``peer`` = the target); between two remote hosts nothing is reported (counted in
``unattributed``). Severity: a local device attacking is high, 8.0 (lateral movement, compromised
device); a remote source against a local service is high, 7.0 (the service is exposed and attacked).
+0.5 past five times the threshold. Repeats at most once per window per (source, target, port).
Memory: at most ``max_pairs`` tracked (least recently active dropped), each with at most
``max_attempts`` start times. A pair whose last connection started a whole ``window`` ago is
forgotten: none of its starts still count and its repeat guard has expired, so dropping it changes
no finding (only ``distinct_source_ports`` starts again when the pair comes back).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from heimdal_tui.common.lru import forget_stale
from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.model import DetectorSettings, Finding, Severity, setting
from heimdal_tui.devices.locality import address_text

DEFAULT_PORTS = (21, 22, 23, 3389, 5900, 445, 110, 143, 3306, 5432, 1433, 8291)
SERVICE_NAMES = {
    21: "FTP",
    22: "SSH",
    23: "Telnet",
    110: "POP3",
    143: "IMAP",
    445: "SMB",
    1433: "MS SQL",
    3306: "MySQL",
    3389: "RDP",
    5432: "PostgreSQL",
    5900: "VNC",
    8291: "Winbox",
}


@dataclass(frozen=True, slots=True)
class Settings(DetectorSettings):
    window: float = setting(60.0, minimum=5.0, maximum=3600.0, help="sliding window, seconds")
    min_attempts: int = setting(10, minimum=2, maximum=1_000_000, help="connections within the window")
    ports: tuple[int, ...] = setting(DEFAULT_PORTS, help="TCP ports of authentication services")
    max_pairs: int = setting(10_000, minimum=16, maximum=1_000_000, help="(source, target, port) tracked")
    max_attempts: int = setting(10_000, minimum=16, maximum=1_000_000, help="start times kept per pair")


@dataclass(slots=True)
class _Pair:
    starts: deque[float] = field(default_factory=deque)
    src_ports: set[int] = field(default_factory=set)
    last_emit: float | None = None


class BruteForceDetector:
    kind: ClassVar[str] = "brute_force"
    settings_type: ClassVar[type[DetectorSettings]] = Settings
    needs_baseline: ClassVar[bool] = False

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings: Settings = settings or Settings()
        self.pairs: OrderedDict[tuple[int, int, int, int, int], _Pair] = OrderedDict()
        self.unattributed = 0

    def observe(self, ctx: BatchContext) -> list[Finding]:
        s = self.settings
        nf = ctx.new_flows
        if not s.enabled or nf.height == 0 or not s.ports:
            return []
        proto = nf["proto"].to_numpy()
        port = nf["resp_p"].to_numpy()
        rows = np.flatnonzero((proto == 6) & np.isin(port, np.asarray(s.ports, dtype=np.int64)))
        if rows.shape[0] == 0:
            return []
        first_ts = nf["first_ts"].to_numpy()
        rows = rows[np.argsort(first_ts[rows], kind="stable")]
        o_hi, o_lo = nf["orig_hi"].to_numpy(), nf["orig_lo"].to_numpy()
        r_hi, r_lo = nf["resp_hi"].to_numpy(), nf["resp_lo"].to_numpy()
        o_dev, r_dev = nf["orig_dev"].to_numpy(), nf["resp_dev"].to_numpy()
        o_port = nf["orig_p"].to_numpy()
        findings: list[Finding] = []
        for i in rows.tolist():
            key = (int(o_hi[i]), int(o_lo[i]), int(r_hi[i]), int(r_lo[i]), int(port[i]))
            t = float(first_ts[i])
            pair = self.pairs.get(key)
            if pair is None:
                pair = self.pairs[key] = _Pair()
                while len(self.pairs) > s.max_pairs:
                    self.pairs.popitem(last=False)
            else:
                self.pairs.move_to_end(key)
            starts = pair.starts
            starts.append(t)
            while starts and (starts[0] <= t - s.window or len(starts) > s.max_attempts):
                starts.popleft()
            if len(pair.src_ports) < 1024:
                pair.src_ports.add(int(o_port[i]))
            if len(starts) < s.min_attempts:
                continue
            if pair.last_emit is not None and t - pair.last_emit < s.window:
                continue
            pair.last_emit = t
            finding = self._finding(key, pair, t, int(o_dev[i]), int(r_dev[i]))
            if finding is None:
                self.unattributed += 1
            else:
                findings.append(finding)
        # Pairs whose last start is a window old: none of their starts count, their repeat guard
        # has expired.
        horizon = float(first_ts[rows[-1]]) - s.window
        forget_stale(self.pairs, lambda pair: not pair.starts or pair.starts[-1] <= horizon)
        return findings

    def _finding(
        self, key: tuple[int, int, int, int, int], pair: _Pair, t: float, o_dev: int, r_dev: int
    ) -> Finding | None:
        s = self.settings
        o_hi, o_lo, r_hi, r_lo, port = key
        source = address_text(o_hi, o_lo)
        target = address_text(r_hi, r_lo)
        if r_dev and not o_dev:
            device, peer, score = r_dev, source, 7.0
        elif o_dev:
            device, peer, score = o_dev, target, 8.0
        else:
            return None
        attempts = len(pair.starts)
        if attempts >= 5 * s.min_attempts:
            score += 0.5
        service = SERVICE_NAMES.get(port, f"tcp/{port}")
        span = t - pair.starts[0]
        return Finding(
            kind=self.kind,
            device=device,
            peer=peer,
            ts=t,
            severity=Severity.from_score(score),
            score=score,
            summary=f"{source} opened {attempts} {service} connections to {target}:{port} in {span:.0f} s",
            evidence={
                "source": source,
                "target": target,
                "service": service,
                "port": port,
                "attempts": attempts,
                "threshold": s.min_attempts,
                "window_s": s.window,
                "span_s": round(span, 1),
                "per_minute": round(attempts / max(span, 1.0) * 60.0, 1),
                "distinct_source_ports": len(pair.src_ports),
                "direction": "inbound" if peer == source else "outbound",
            },
        )
