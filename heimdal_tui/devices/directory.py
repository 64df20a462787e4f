"""Who each device is: hostnames by source, vendor, device-type evidence, names of remote peers.

Fed the parsed application messages (DHCP, mDNS, DNS, NetBIOS, SSDP, HTTP, TLS) of each batch; all
strings in them were made safe and bounded by the parsers. Hostname sources rank DHCP > mDNS >
NetBIOS > DNS answers: the device's own claim over what others say about it.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from heimdal_tui.decode.app.dhcp import DhcpMessage
from heimdal_tui.decode.app.dns import DnsMessage, mdns_hostnames, mdns_services
from heimdal_tui.decode.app.http import HttpRequest
from heimdal_tui.decode.app.netbios import NbnsMessage
from heimdal_tui.decode.app.ssdp import SsdpMessage
from heimdal_tui.decode.app.tls import TlsClientHello
from heimdal_tui.decode.app_select import AppEvent
from heimdal_tui.devices.identity import (
    DeviceTypeGuess,
    IdentityEvidence,
    gives_clues,
    guess_device_type,
    is_locally_administered,
    vendor_for_mac,
)
from heimdal_tui.devices.locality import Locality, address_pair, mac_text
from heimdal_tui.devices.table import device_keys

HOSTNAME_SOURCES = ("dhcp", "mdns", "netbios", "dns")  # best first
MAX_PEER_NAMES = 50_000
_MAX_SET = 8
_DNS_PORTS = (53, 5355)
_MDNS_PORT = 5353


@dataclass(slots=True)
class Identity:
    """Identity facts about one device."""

    mac: int = 0
    hostnames: dict[str, str] = field(default_factory=dict)  # source -> latest name
    evidence: IdentityEvidence = field(default_factory=IdentityEvidence)
    dhcp_ips: list[str] = field(default_factory=list)
    _guess: DeviceTypeGuess | None = None

    @property
    def hostname(self) -> str | None:
        for source in HOSTNAME_SOURCES:
            if source in self.hostnames:
                return self.hostnames[source]
        return None

    @property
    def hostname_source(self) -> str | None:
        return next((s for s in HOSTNAME_SOURCES if s in self.hostnames), None)

    def guess(self) -> DeviceTypeGuess:
        if self._guess is None:
            self.evidence.hostname = self.hostname
            self._guess = guess_device_type(self.evidence)
        return self._guess

    def changed(self) -> None:
        self._guess = None


def _add_bounded(target: set[str], value: str | None) -> bool:
    if value and value not in target and len(target) < _MAX_SET:
        target.add(value)
        return True
    return False


class DeviceDirectory:
    """Identity per device key, and names for remote addresses learned from DNS/SNI/HTTP."""

    def __init__(self, locality: Locality) -> None:
        self.locality = locality
        self.identities: dict[int, Identity] = {}
        self.peer_names: OrderedDict[tuple[int, int], str] = OrderedDict()
        self._local_names: dict[tuple[int, int], str] = {}
        self.pending_names: list[tuple[int, str, str, float]] = []  # device, name, kind, ts
        self.pending_ips: list[tuple[int, int, int, float]] = []  # device, hi, lo, ts
        self._local_cache: dict[tuple[int, int], bool] = {}

    def identity(self, key: int, mac: int = 0) -> Identity:
        ident = self.identities.get(key)
        if ident is None:
            ident = Identity(mac=mac)
            if mac:
                text = mac_text(mac)
                ident.evidence.vendor = vendor_for_mac(text)
                ident.evidence.randomized_mac = is_locally_administered(text)
            self.identities[key] = ident
        return ident

    def forget(self, keys: list[int]) -> None:
        for key in keys:
            self.identities.pop(key, None)

    def ensure(self, keys: list[int]) -> None:
        """Create identities (vendor lookup) for newly seen device keys."""
        for key in keys:
            self.identity(key, key if key < (1 << 48) else 0)

    # -- ingest -------------------------------------------------------------------------------
    def sender(self, ev: AppEvent) -> int | None:
        unspecified = ev.src_hi == 0 and ev.src_lo in (0, 0xFFFF00000000)
        if unspecified:
            return ev.src_mac if ev.src_mac and not ev.src_mac & (1 << 40) else None
        if not self._is_local(ev.src_hi, ev.src_lo):
            return None
        return self._key(ev.src_mac, ev.src_hi, ev.src_lo)

    def _is_local(self, hi: int, lo: int) -> bool:
        cached = self._local_cache.get((hi, lo))
        if cached is None:
            cached = self.locality.pair_is_local(hi, lo)
            if len(self._local_cache) > 65_536:
                self._local_cache.clear()
            self._local_cache[(hi, lo)] = cached
        return cached

    @staticmethod
    def _key(mac: int, hi: int, lo: int) -> int:
        if mac and not mac & (1 << 40):
            return mac
        arr = [np.array([v], dtype=np.uint64) for v in (mac, hi, lo)]
        return int(device_keys(arr[0], arr[1], arr[2])[0])

    def ingest(self, events: list[AppEvent]) -> None:
        for ev in events:
            msg = ev.message
            if ev.repeat and isinstance(msg, (SsdpMessage, NbnsMessage)):
                continue  # the same announcement from the same sender: nothing new to learn
            if ev.repeat and isinstance(msg, DnsMessage) and msg.is_response:
                continue  # the same answers again: the names they taught are known
            if isinstance(msg, DhcpMessage):
                self._dhcp(ev, msg)
            elif isinstance(msg, DnsMessage):
                self._dns(ev, msg)
            elif isinstance(msg, TlsClientHello):
                if msg.sni:
                    self._peer_name(ev.dst_hi, ev.dst_lo, msg.sni)
                    self._device_name(ev, msg.sni, "sni")
            elif isinstance(msg, HttpRequest):
                if msg.host:
                    self._peer_name(ev.dst_hi, ev.dst_lo, msg.host)
                    self._device_name(ev, msg.host, "http")
                key = self.sender(ev)
                if key is not None and msg.user_agent:
                    ident = self.identity(key, ev.src_mac)
                    if _add_bounded(ident.evidence.user_agents, msg.user_agent) and gives_clues(
                        "user_agent", msg.user_agent
                    ):
                        ident.changed()
            elif isinstance(msg, NbnsMessage):
                self._netbios(ev, msg)
            elif isinstance(msg, SsdpMessage):
                key = self.sender(ev)
                if key is not None:
                    ident = self.identity(key, ev.src_mac)
                    server = _add_bounded(ident.evidence.ssdp_servers, msg.server)
                    agent = _add_bounded(ident.evidence.user_agents, msg.user_agent)
                    # The guess is made again only when what was added can change it.
                    if (server and gives_clues("ssdp", msg.server or "")) or (
                        agent and gives_clues("user_agent", msg.user_agent or "")
                    ):
                        ident.changed()

    def _device_name(self, ev: AppEvent, name: str, kind: str) -> None:
        key = self.sender(ev)
        if key is not None:
            self.pending_names.append((key, name, kind, ev.ts))

    def _peer_name(self, hi: int, lo: int, name: str) -> None:
        self.peer_names[(hi, lo)] = name
        self.peer_names.move_to_end((hi, lo))
        while len(self.peer_names) > MAX_PEER_NAMES:
            self.peer_names.popitem(last=False)

    def _set_hostname(self, key: int, mac: int, source: str, name: str) -> None:
        ident = self.identity(key, mac)
        if ident.hostnames.get(source) != name:
            shown = ident.hostname
            ident.hostnames[source] = name
            if ident.hostname != shown:  # the type guess reads the best name only
                ident.changed()

    def _dhcp(self, ev: AppEvent, msg: DhcpMessage) -> None:
        if msg.op == 1 and msg.client_mac:
            mac = int(msg.client_mac.replace(":", ""), 16)
            key = mac
            ident = self.identity(key, mac)
            name = msg.hostname or (msg.client_fqdn.split(".")[0] if msg.client_fqdn else None)
            if name:
                self._set_hostname(key, mac, "dhcp", name)
            ev_ = ident.evidence
            if msg.vendor_class and ev_.dhcp_vendor_class != msg.vendor_class:
                ev_.dhcp_vendor_class = msg.vendor_class
                ident.changed()
            if msg.param_list and ev_.dhcp_param_list != msg.param_list:
                ev_.dhcp_param_list = msg.param_list
                ident.changed()
        elif msg.op == 2 and msg.client_mac and msg.msg_type == 5 and msg.yiaddr not in ("", "0.0.0.0"):
            mac = int(msg.client_mac.replace(":", ""), 16)
            ident = self.identity(mac, mac)
            if msg.yiaddr not in ident.dhcp_ips:
                ident.dhcp_ips = [*ident.dhcp_ips[-3:], msg.yiaddr]
            hi, lo = address_pair(msg.yiaddr)
            self.pending_ips.append((mac, hi, lo, ev.ts))

    def _dns(self, ev: AppEvent, msg: DnsMessage) -> None:
        mdns = _MDNS_PORT in (ev.sport, ev.dport)
        if mdns:
            if not msg.is_response:
                return
            key = self.sender(ev)
            if key is None:
                return
            ident = self.identity(key, ev.src_mac)
            for name in sorted(mdns_hostnames(msg))[:1]:
                self._set_hostname(key, ev.src_mac, "mdns", name)
            services = mdns_services(msg)
            known = ident.evidence.mdns_services
            telling = False
            for svc in sorted(services):
                if len(known) >= 32:
                    break
                if svc not in known:
                    known.add(svc)
                    telling = telling or gives_clues("mdns", svc)
            if telling:
                ident.changed()
            return
        if not msg.is_response:
            if ev.dport in _DNS_PORTS:
                for qname, _qtype in msg.questions:
                    self._device_name(ev, qname.lower(), "dns")
            return
        for rec in msg.answers:
            if rec.rtype in (1, 28):
                try:
                    hi, lo = address_pair(rec.value)
                except ValueError:
                    continue
                self._peer_name(hi, lo, rec.name.lower())
                if self._is_local(hi, lo):
                    self._local_names[(hi, lo)] = rec.name
            elif rec.rtype == 12:
                address = _reverse_pointer_address(rec.name)
                if address is not None and self._is_local(*address_pair(address)):
                    self._local_names[address_pair(address)] = rec.value

    def _netbios(self, ev: AppEvent, msg: NbnsMessage) -> None:
        key = self.sender(ev)
        if key is None or not msg.name or msg.name == "*":
            return
        src = str(ipaddress.IPv6Address((ev.src_hi << 64) | ev.src_lo).ipv4_mapped or "")
        if src and src in msg.addresses and msg.suffix in (0x00, 0x20):
            self._set_hostname(key, ev.src_mac, "netbios", msg.name)

    # -- reading ------------------------------------------------------------------------------
    def apply_local_names(self, ips: pl.DataFrame) -> None:
        """Hostnames from DNS answers that named a local address, for the devices holding it."""
        if not self._local_names or ips.height == 0:
            return
        for device, hi, lo in ips.select("device", "ip_hi", "ip_lo").iter_rows():
            name = self._local_names.get((int(hi), int(lo)))
            if name:
                self._set_hostname(int(device), 0, "dns", name)

    def take_pending_sightings(self) -> list[tuple[int, str, str, float]]:
        """The (device, name, kind, ts) sightings since the last call."""
        rows, self.pending_names = self.pending_names, []
        return rows

    def take_pending_names(self) -> pl.DataFrame:
        rows, self.pending_names = self.pending_names, []
        if not rows:
            return pl.DataFrame()
        frame = pl.DataFrame(rows, schema=["device", "name", "kind", "ts"], orient="row")
        return (
            frame.with_columns(pl.col("device").cast(pl.UInt64))
            .group_by("device", "name", "kind")
            .agg(
                pl.col("ts").min().alias("first_seen"),
                pl.col("ts").max().alias("last_seen"),
                pl.len().cast(pl.Int64).alias("count"),
            )
        )

    def take_pending_ips(self) -> pl.DataFrame:
        rows, self.pending_ips = self.pending_ips, []
        if not rows:
            return pl.DataFrame()
        frame = pl.DataFrame(rows, schema=["device", "ip_hi", "ip_lo", "ts"], orient="row")
        return frame.select(
            pl.col("device").cast(pl.UInt64),
            pl.col("ip_hi").cast(pl.UInt64),
            pl.col("ip_lo").cast(pl.UInt64),
            pl.col("ts").alias("first_seen"),
            pl.col("ts").alias("last_seen"),
        )


def _reverse_pointer_address(name: str) -> str | None:
    """'4.3.2.1.in-addr.arpa' -> '1.2.3.4' (IPv6 ip6.arpa too); None when not a reverse name."""
    lowered = name.lower().rstrip(".")
    try:
        if lowered.endswith(".in-addr.arpa"):
            parts = lowered[: -len(".in-addr.arpa")].split(".")
            if len(parts) == 4:
                return str(ipaddress.IPv4Address(".".join(reversed(parts))))
        elif lowered.endswith(".ip6.arpa"):
            nibbles = lowered[: -len(".ip6.arpa")].split(".")
            if len(nibbles) == 32:
                return str(ipaddress.IPv6Address(int("".join(reversed(nibbles)), 16)))
    except ValueError:
        return None
    return None
