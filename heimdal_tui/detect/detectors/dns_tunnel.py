"""dns_tunnel: data carried in DNS query names (no baseline).

Input: DNS queries (``DnsMessage`` that are not responses) on port 53 (UDP or TCP) and LLMNR (5355);
mDNS (5353) is ignored. Queries are grouped per (querying device, zone) in a sliding window of
``window`` = 300 s, where the zone is the registered domain (last two labels, three under a common
second level such as co.uk; see baseline.registered_domain). Names whose last label cannot be a
top-level domain (digits, hex, longer than 63) are pooled into one pseudo-zone per device, so a
tunnel without a domain (dnscat2's direct mode: ``dnscat.<hex>.<hex>``) is still one group.

Per group, over the unique names in the window (the *payload label* of a name is its longest label
left of the zone):

- volume gate: >= ``min_unique`` = 30 unique names (a browsing device asks a few names per zone;
  the sample's tunnel asks 226 in 150 s, iodine 81 in 9 s, dnscat2 150 in 60 s);
- signal "long": mean payload-label length >= ``min_label_length`` = 20 (CDN names are 5-15
  characters: e4518.dscx, rr3---sn-4g5e6nzz; encoders fill labels to 50-63);
- signal "random": mean Shannon entropy of the labels left of the zone (joined) >= ``min_entropy`` =
  3.5 bits per character (teams.pcap's Microsoft names average 3.2, the benign sample 1.7; dnscat2's
  hex 3.9, iodine 3.6, the sample's base32 4.4). The joined labels are used, not the longest alone,
  because the entropy of a short string is biased low;
- signal "record types": share of TXT/NULL/ANY queries >= ``min_txt_share`` = 0.5 (browsers ask
  A/AAAA/HTTPS; tunnels want big answers).

A finding needs the volume gate and ``min_signals`` = 2 of the 3 signals. Severity: medium (6.0)
with two signals, high (7.5) with all three; +0.5 past five times the volume gate. Reverse lookups
(in-addr.arpa, ip6.arpa) and the zones in ``ignore_domains`` (anti-virus and DNSBL reputation
lookups, which look exactly like tunnels by design) are skipped. A finding repeats at most once per
window per (device, zone) while it continues.

Device: the querier; when a remote host queries a local server, the server's device, with the
querier's address as evidence. Memory: at most ``max_groups`` groups (least recently active
dropped), each holding at most ``max_names`` queries of its window.
"""

from __future__ import annotations

import math
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import ClassVar, cast

import numpy as np

from heimdal_tui.common.lru import forget_stale
from heimdal_tui.decode.app.dns import RTYPE_NAMES, DnsMessage
from heimdal_tui.detect.baseline import registered_domain
from heimdal_tui.detect.context import BatchContext
from heimdal_tui.detect.model import DetectorSettings, Finding, Severity, setting
from heimdal_tui.devices.locality import address_text
from heimdal_tui.devices.table import device_keys

BIG_ANSWER_TYPES = frozenset({16, 10, 255})  # TXT, NULL, ANY
PSEUDO_ZONE = "(no valid TLD)"
MAX_EXAMPLES = 5
MAX_EXAMPLE_CHARS = 100
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_REVERSE = (".in-addr.arpa", ".ip6.arpa")
ZONE_CACHE = 8192

DEFAULT_IGNORE = (
    "sophosxl.net",
    "avqs.mcafee.com",
    "e5.sk",
    "spamhaus.org",
    "spamcop.net",
    "barracudacentral.org",
    "surbl.org",
    "uribl.com",
    "dnswl.org",
    "senderbase.org",
)


@dataclass(frozen=True, slots=True)
class Settings(DetectorSettings):
    window: float = setting(300.0, minimum=10.0, maximum=86_400.0, help="sliding window, seconds")
    min_unique: int = setting(
        30, minimum=3, maximum=1_000_000, help="unique names under one zone per window (volume gate)"
    )
    min_label_length: float = setting(20.0, minimum=4.0, maximum=63.0, help="mean payload-label length")
    min_entropy: float = setting(3.5, minimum=1.0, maximum=6.0, help="mean payload-label entropy, bits/char")
    min_txt_share: float = setting(0.5, minimum=0.0, maximum=1.0, help="share of TXT/NULL/ANY queries")
    min_signals: int = setting(2, minimum=1, maximum=3, help="signals (long, random, record types) needed")
    ignore_domains: tuple[str, ...] = setting(
        DEFAULT_IGNORE, help="zones never reported (reputation lookups that look like tunnels)"
    )
    max_groups: int = setting(10_000, minimum=16, maximum=1_000_000, help="(device, zone) groups tracked")
    max_names: int = setting(4096, minimum=64, maximum=1_000_000, help="queries kept per group window")


def entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character (0 for an empty string)."""
    n = len(text)
    if n == 0:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def zone_of(name: str) -> tuple[str, str, str]:
    """(zone, longest label, all labels joined) of the part of ``name`` left of its zone.

    The zone is PSEUDO_ZONE when the last label cannot be a top-level domain; then every label is
    payload.
    """
    labels = [label for label in name.rstrip(".").split(".") if label]
    if not labels:
        return PSEUDO_ZONE, "", ""
    if not _TLD.match(labels[-1].lower()):
        sub = labels
        zone = PSEUDO_ZONE
    else:
        zone = registered_domain(name)
        sub = labels[: len(labels) - zone.count(".") - 1]
    if not sub:
        return zone, "", ""
    return zone, max(sub, key=len), "".join(sub)


@dataclass(slots=True)
class _Group:
    """One (device, zone)'s queries in the window. Thousands of groups live at once (a few per
    device and zone it asks), nearly all of them a handful of queries: the window is a list read
    from ``head`` (a deque starts at 600 bytes), names and their metrics share one dict."""

    queries: list[tuple[float, str, int]] = field(default_factory=list)  # (ts, name, qtype)
    head: int = 0  # queries before it have left the window
    # unique names in window -> [occurrences, payload label length, entropy, the name as first seen]
    names: dict[str, list] = field(default_factory=dict)
    sum_length: float = 0.0
    sum_entropy: float = 0.0
    big: int = 0  # TXT/NULL/ANY queries in window
    resolvers: list[tuple[int, int]] = field(default_factory=list)
    client: tuple[int, int] = (0, 0)  # the querier's address, as last seen
    last_emit: float | None = None

    @property
    def total(self) -> int:
        """Queries in the window."""
        return len(self.queries) - self.head

    def qtypes(self) -> dict[int, int]:
        """Queries in the window per record type, in the order first seen (counted when a finding
        needs them: a dict per group would cost every group its 200 bytes)."""
        counts: dict[int, int] = {}
        for _, _, qtype in self.queries[self.head :]:
            counts[qtype] = counts.get(qtype, 0) + 1
        return counts

    @property
    def oldest(self) -> float | None:
        return self.queries[self.head][0] if self.head < len(self.queries) else None

    @property
    def newest(self) -> float | None:
        return self.queries[-1][0] if self.head < len(self.queries) else None

    def add(self, ts: float, name: str, qtype: int, shown: str, length: int, ent: float) -> None:
        self.queries.append((ts, name, qtype))
        entry = self.names.get(name)
        if entry is None:
            self.names[name] = [1, length, ent, shown]
            self.sum_length += length
            self.sum_entropy += ent
        else:
            entry[0] += 1
        if qtype in BIG_ANSWER_TYPES:
            self.big += 1

    def expire(self, before: float, limit: int) -> None:
        q = self.queries
        head = self.head
        end = len(q)
        while head < end and (q[head][0] <= before or end - head > limit):
            _, name, qtype = q[head]
            head += 1
            entry = self.names[name]
            entry[0] -= 1
            if not entry[0]:
                del self.names[name]
                self.sum_length -= entry[1]
                self.sum_entropy -= entry[2]
            if qtype in BIG_ANSWER_TYPES:
                self.big -= 1
        if head and head * 2 >= end:
            del q[:head]  # the expired half goes at once: each query is moved O(1) times
            head = 0
        self.head = head


class DnsTunnelDetector:
    kind: ClassVar[str] = "dns_tunnel"
    settings_type: ClassVar[type[DetectorSettings]] = Settings
    needs_baseline: ClassVar[bool] = False

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings: Settings = settings or Settings()
        self.groups: OrderedDict[tuple[int, str], _Group] = OrderedDict()
        # name -> (zone, payload-label length, entropy): a bounded cache (names repeat a lot)
        self._zones: dict[str, tuple[str, int, float]] = {}
        self._ignore_for: tuple[str, ...] | None = None
        self._ignore: tuple[frozenset[str], tuple[str, ...]] = (frozenset(), ())

    def _ignored(self) -> tuple[frozenset[str], tuple[str, ...]]:
        wanted = self.settings.ignore_domains
        if wanted != self._ignore_for:
            names = [d.lower().strip(".") for d in wanted if d.strip(".")]
            self._ignore = (frozenset(names), (*_REVERSE, *("." + d for d in names)))
            self._ignore_for = wanted
        return self._ignore

    def _metrics(self, name: str) -> tuple[str, int, float]:
        found = self._zones.get(name)
        if found is None:
            if len(self._zones) >= ZONE_CACHE:
                self._zones.clear()
            zone, longest, joined = zone_of(name)
            found = self._zones[name] = (zone, len(longest), entropy(joined))
        return found

    def observe(self, ctx: BatchContext) -> list[Finding]:
        s = self.settings
        if not s.enabled or not ctx.app_events:
            return []
        queries: list[tuple[float, int, str, int, tuple[int, int], tuple[int, int]]] = []
        events, senders = ctx.app_events, ctx.app_devices
        for i in ctx.dns_queries():
            ev = events[i]
            if ev.sport == 5353:
                continue
            msg = cast(DnsMessage, ev.message)
            dev = senders[i]
            device = dev or _local_key(ctx, ev.dst_mac, ev.dst_hi, ev.dst_lo)
            if not device:
                continue
            # the other side: the resolver asked, or the remote client when a local server is asked
            other = (ev.dst_hi, ev.dst_lo) if dev else (ev.src_hi, ev.src_lo)
            for qname, qtype in msg.questions:
                if qname:
                    queries.append((ev.ts, device, qname, qtype, other, (ev.src_hi, ev.src_lo)))
        if not queries:
            return []
        queries.sort(key=lambda q: q[0])
        exact, suffixes = self._ignored()
        findings: list[Finding] = []
        for ts, device, qname, qtype, other, client in queries:
            lowered = qname.lower().rstrip(".")
            if lowered.endswith(suffixes) or lowered in exact:
                continue
            zone, length, ent = self._metrics(qname)
            key = (device, zone)
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = _Group()
                while len(self.groups) > s.max_groups:
                    self.groups.popitem(last=False)
            else:
                self.groups.move_to_end(key)
            group.expire(ts - s.window, s.max_names - 1)
            group.add(ts, lowered, qtype, qname, length, ent)
            if len(group.resolvers) < 3 and other not in group.resolvers:
                group.resolvers.append(other)
            group.client = client
            finding = self._check(key, group, ts, qname)
            if finding is not None:
                findings.append(finding)
        self._forget_idle(ctx.now - s.window)
        return findings

    def _forget_idle(self, before: float) -> None:
        """Drop the groups whose newest query is older than ``before`` (a window ago): their window
        is empty and their last finding (no later than that query) no longer holds a repeat back,
        so a group that starts again behaves the same from scratch (only the resolvers it lists
        start again too). Groups are in least-recently-queried order, so the scan stops at the
        first live one."""
        forget_stale(self.groups, lambda group: group.newest is None or group.newest <= before)

    def _check(self, key: tuple[int, str], group: _Group, ts: float, qname: str) -> Finding | None:
        s = self.settings
        unique = len(group.names)
        if unique < s.min_unique:
            return None
        if group.last_emit is not None and ts - group.last_emit < s.window:
            return None
        total = group.total
        mean_length = group.sum_length / unique
        mean_entropy = group.sum_entropy / unique
        big_share = group.big / total if total else 0.0
        signals = []
        if mean_length >= s.min_label_length:
            signals.append("long")
        if mean_entropy >= s.min_entropy:
            signals.append("random")
        if big_share >= s.min_txt_share:
            signals.append("record_types")
        if len(signals) < s.min_signals:
            return None
        group.last_emit = ts
        device, zone = key
        score = 6.0 + 1.5 * (len(signals) - 2 if len(signals) > 2 else 0)
        if unique >= 5 * s.min_unique:
            score += 0.5
        score = max(5.0, min(score, 9.0))
        examples = []
        for entry in group.names.values():
            name = entry[3]
            examples.append(name if len(name) <= MAX_EXAMPLE_CHARS else name[: MAX_EXAMPLE_CHARS - 1] + "…")
            if len(examples) >= MAX_EXAMPLES:
                break
        oldest = group.oldest
        span = ts - oldest if oldest is not None else 0.0
        # As Counter.most_common: by count, ties in the order first seen.
        common = sorted(group.qtypes().items(), key=lambda kv: kv[1], reverse=True)[:8]
        qtypes = {RTYPE_NAMES.get(t, str(t)): c for t, c in common}
        shown = zone if zone != PSEUDO_ZONE else "names without a real top-level domain"
        client = address_text(*group.client)
        summary = (
            f"{client} asked for {unique} unique DNS names under {shown} in {span:.0f} s "
            f"(mean label {mean_length:.0f} chars, {mean_entropy:.1f} bits/char, "
            f"{big_share:.0%} TXT/NULL/ANY)"
        )
        return Finding(
            kind=self.kind,
            device=device,
            peer=zone if zone != PSEUDO_ZONE else None,
            ts=ts,
            severity=Severity.from_score(score),
            score=score,
            summary=summary,
            evidence={
                "domain": zone,
                "client": client,
                "unique_names": unique,
                "queries": total,
                "window_s": s.window,
                "span_s": round(span, 1),
                "mean_label_length": round(mean_length, 1),
                "mean_entropy": round(mean_entropy, 2),
                "txt_null_any_share": round(big_share, 3),
                "qtypes": qtypes,
                "signals": signals,
                "thresholds": {
                    "min_unique": s.min_unique,
                    "min_label_length": s.min_label_length,
                    "min_entropy": s.min_entropy,
                    "min_txt_share": s.min_txt_share,
                    "min_signals": s.min_signals,
                },
                "examples": examples,
                "servers_or_clients": [address_text(hi, lo) for hi, lo in group.resolvers],
            },
        )


def _local_key(ctx: BatchContext, mac: int, hi: int, lo: int) -> int:
    """The device key of a local address (as the pipeline computes it), else 0."""
    h = np.array([hi], dtype=np.uint64)
    low = np.array([lo], dtype=np.uint64)
    if not ctx.locality.local(h, low)[0]:
        return 0
    return int(device_keys(np.array([mac], dtype=np.uint64), h, low)[0])
