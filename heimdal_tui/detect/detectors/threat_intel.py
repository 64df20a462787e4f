"""threat_intel: traffic to or from an indicator on a threat-intelligence list (no baseline).

Matched against the indicators of a shared :class:`~heimdal_tui.detect.intel.ThreatIntel`:

- both endpoints of every new flow (vectorized: one hash lookup per prefix length in use);
- DNS query names (the device asked for a listed domain) and DNS answers received (a listed domain
  as a CNAME target or answer name, a listed address in an A/AAAA record);
- the TLS ClientHello SNI and the HTTP Host header a device sends.

The device is the local side: the querier/client for DNS, TLS and HTTP; for flows the local endpoint
(inbound or outbound); if the listed address is itself a local device, that device. Nothing is
reported when no local device is involved. ``peer`` is the address as observed (one address of a
listed network) or the listed domain (the name looked up is in the evidence).

Severity: high (8.0) by default, critical (9.5) when the indicator's confidence is at least
``critical_confidence`` = 0.9. Indicators below ``min_confidence`` are ignored, and an indicator
whose expiry is at or before the capture time is not matched (the clock is the capture's, so a
replay of an old capture matches what was listed then). A finding repeats at most once per
``repeat`` = 600 s per (device, indicator). Memory: at most ``max_reported`` remembered keys.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from heimdal_tui.decode.app.dns import DnsMessage
from heimdal_tui.decode.app.http import HttpRequest
from heimdal_tui.decode.app.tls import TlsClientHello
from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.intel import Indicator, ThreatIntel
from heimdal_tui.detect.model import DetectorSettings, Finding, Severity, setting
from heimdal_tui.devices.locality import address_text
from heimdal_tui.devices.table import device_keys
from heimdal_tui.flows.table import PROTO_NAMES

_ADDRESS_TYPES = frozenset({1, 28})  # A, AAAA
_NAME_TYPES = frozenset({5, 2, 12, 39})  # CNAME, NS, PTR, DNAME


@dataclass(frozen=True, slots=True)
class Settings(DetectorSettings):
    min_confidence: float = setting(
        0.0, minimum=0.0, maximum=1.0, help="ignore indicators below this confidence"
    )
    critical_confidence: float = setting(
        0.9, minimum=0.0, maximum=1.0, help="confidence from which a match is critical"
    )
    repeat: float = setting(600.0, minimum=1.0, maximum=86_400.0, help="repeat per device and indicator, s")
    match_flows: bool = setting(True, help="match both endpoints of new flows")
    match_dns: bool = setting(True, help="match DNS query names and answers")
    match_tls_http: bool = setting(True, help="match TLS SNI and HTTP Host")
    max_reported: int = setting(
        100_000, minimum=100, maximum=10_000_000, help="remembered (device, indicator)"
    )


class ThreatIntelDetector:
    kind: ClassVar[str] = "threat_intel"
    settings_type: ClassVar[type[DetectorSettings]] = Settings
    needs_baseline: ClassVar[bool] = False

    def __init__(self, settings: Settings | None = None, intel: ThreatIntel | None = None) -> None:
        self.settings: Settings = settings or Settings()
        self.intel = intel if intel is not None else ThreatIntel()
        self.reported: OrderedDict[tuple[int, str], float] = OrderedDict()

    def observe(self, ctx: BatchContext) -> list[Finding]:
        s = self.settings
        intel = self.intel
        if not s.enabled or len(intel) == 0:
            return []
        hits: list[tuple[float, int, str, Indicator, str, dict[str, Any]]] = []
        if s.match_flows and ctx.new_flows.height and intel.has_addresses:
            hits += self._flows(ctx)
        if ctx.app_events and (s.match_dns or s.match_tls_http):
            hits += self._messages(ctx)
        if not hits:
            return []
        hits.sort(key=lambda h: h[0])
        findings = []
        for ts, device, observed, indicator, where, extra in hits:
            finding = self._finding(ctx, ts, device, observed, indicator, where, extra)
            if finding is not None:
                findings.append(finding)
        return findings

    def _usable(self, indicator: Indicator | None, now: float) -> bool:
        return (
            indicator is not None
            and indicator.confidence >= self.settings.min_confidence
            and indicator.live(now)
        )

    def _flows(self, ctx: BatchContext) -> list[tuple[float, int, str, Indicator, str, dict[str, Any]]]:
        nf = ctx.new_flows
        n = nf.height
        hi = np.concatenate((nf["orig_hi"].to_numpy(), nf["resp_hi"].to_numpy())).astype(np.uint64)
        lo = np.concatenate((nf["orig_lo"].to_numpy(), nf["resp_lo"].to_numpy())).astype(np.uint64)
        matches = self.intel.match_ips(hi, lo)
        out: list[tuple[float, int, str, Indicator, str, dict[str, Any]]] = []
        if not any(m is not None for m in matches):
            return out
        first_ts = nf["first_ts"].to_numpy()
        devs = (nf["orig_dev"].to_numpy(), nf["resp_dev"].to_numpy())
        proto = nf["proto"].to_numpy()
        resp_p = nf["resp_p"].to_numpy()
        for j, indicator in enumerate(matches):
            if indicator is None:
                continue
            row, side = j % n, j // n
            ts = float(first_ts[row])
            if not self._usable(indicator, ts):
                continue
            own, other = int(devs[side][row]), int(devs[1 - side][row])
            device = own or other
            if not device:
                continue
            listed = address_text(int(hi[j]), int(lo[j]))
            other_addr = address_text(int(hi[row + (1 - side) * n]), int(lo[row + (1 - side) * n]))
            extra = {
                "direction": "outbound" if side == 1 else "inbound",
                "local_address": other_addr if not own else listed,
                "service": f"{PROTO_NAMES.get(int(proto[row]), str(int(proto[row])))}/{int(resp_p[row])}",
            }
            peer = listed if not own else other_addr
            out.append((ts, device, peer, indicator, "flow", extra))
        return out

    def _messages(self, ctx: BatchContext) -> list[tuple[float, int, str, Indicator, str, dict[str, Any]]]:
        s = self.settings
        intel = self.intel
        out: list[tuple[float, int, str, Indicator, str, dict[str, Any]]] = []
        domains = intel.has_domains
        addresses = intel.has_addresses
        for ev, sender in zip(ctx.app_events, ctx.app_devices, strict=False):
            msg = ev.message
            checks: list[tuple[str, str, bool]] = []  # (observed value, where, is an address)
            inbound = False  # the device is the receiver (a DNS response), not the sender
            if isinstance(msg, DnsMessage):
                if not s.match_dns or 5353 in (ev.sport, ev.dport):
                    continue
                if domains:
                    checks += [(name, "dns_query", False) for name, _ in msg.questions if name]
                if msg.is_response:
                    inbound = True
                    for record in msg.answers:
                        if record.rtype in _ADDRESS_TYPES and addresses:
                            checks.append((record.value, "dns_answer", True))
                        elif record.rtype in _NAME_TYPES and domains:
                            checks.append((record.value, "dns_answer", False))
            elif isinstance(msg, TlsClientHello):
                if not s.match_tls_http or not msg.sni or not domains:
                    continue
                checks.append((msg.sni, "tls_sni", False))
            elif isinstance(msg, HttpRequest):
                if not s.match_tls_http or not msg.host:
                    continue
                host = _host_of(msg.host)
                checks.append((host, "http_host", _looks_numeric(host)))
            for value, where, is_address in checks:
                indicator = intel.match_address(value) if is_address else intel.match_domain(value)
                if indicator is None or not self._usable(indicator, ev.ts):
                    continue
                if inbound:
                    device = _local_key(ctx, ev.dst_mac, ev.dst_hi, ev.dst_lo)
                    server = address_text(ev.src_hi, ev.src_lo)
                else:
                    device = sender or 0
                    server = address_text(ev.dst_hi, ev.dst_lo)
                if device:
                    out.append((ev.ts, int(device), value, indicator, where, {"server": server}))
        return out

    def _finding(
        self,
        ctx: BatchContext,
        ts: float,
        device: int,
        observed: str,
        indicator: Indicator,
        where: str,
        extra: dict[str, Any],
    ) -> Finding | None:
        s = self.settings
        key = (device, indicator.value)
        last = self.reported.get(key)
        if last is not None and ts - last < s.repeat:
            return None
        self.reported[key] = ts
        self.reported.move_to_end(key)
        while len(self.reported) > s.max_reported:
            self.reported.popitem(last=False)
        critical = indicator.confidence >= s.critical_confidence
        ref = ctx.device_ref(device)
        who = ref.name or ref.ip or ref.mac or str(device)
        verb = {
            "flow": "exchanged traffic with",
            "dns_query": "looked up",
            "dns_answer": "received a DNS answer pointing to",
            "tls_sni": "opened TLS to",
            "http_host": "sent an HTTP request to",
        }[where]
        listed = (
            indicator.value if indicator.value == observed.lower() else f"{indicator.type} {indicator.value}"
        )
        source = f" from {indicator.source}" if indicator.source else ""
        shown = observed if len(observed) <= 80 else observed[:79] + "…"
        return Finding(
            kind=self.kind,
            device=device,
            peer=indicator.value if indicator.type == "domain" else observed,
            ts=ts,
            severity=Severity.CRITICAL if critical else Severity.HIGH,
            score=9.5 if critical else 8.0,
            summary=(
                f"{who} {verb} {shown}, listed as malicious ({listed}{source}, "
                f"confidence {indicator.confidence:.2f})"
            ),
            evidence={
                "matched": observed,
                "where": where,
                "indicator": indicator.value,
                "indicator_type": indicator.type,
                "confidence": indicator.confidence,
                "source": indicator.source,
                "expiry": indicator.expiry,
                "critical_confidence": s.critical_confidence,
                **extra,
            },
        )


def _host_of(host: str) -> str:
    """The host of an HTTP Host header: without the port, IPv6 brackets removed."""
    text = host.strip()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text


def _looks_numeric(host: str) -> bool:
    return ":" in host or host.replace(".", "").isdigit()


def _local_key(ctx: BatchContext, mac: int, hi: int, lo: int) -> int:
    """The device key of a local address (as the pipeline computes it), else 0."""
    h = np.array([hi], dtype=np.uint64)
    low = np.array([lo], dtype=np.uint64)
    if not ctx.locality.local(h, low)[0]:
        return 0
    return int(device_keys(np.array([mac], dtype=np.uint64), h, low)[0])
