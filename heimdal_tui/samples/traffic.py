"""Simulation kit: hosts, seeded frame streams, TCP conversations and the LAN's common chores.

The capture point is the router's LAN side (a mirror port): frames between a LAN device and the
internet carry the router's MAC on the far side, and a packet's timestamp is when it passes that
point. Reaction times follow from it: a server's reply to a packet shows up one WAN round trip
later, a Wi-Fi client's reply one LAN round trip later.

Each :class:`Stream` owns a ``random.Random`` seeded from the scenario seed and the stream's name,
so a stream's frames depend only on the seed and on its own code: the benign streams of a scenario
are byte-identical whether or not incident streams run next to them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from heimdal_tui.samples import packets as pk
from heimdal_tui.samples import protocols as pr
from heimdal_tui.samples.packets import ACK, FIN, PSH, RST, SYN, Frame
from heimdal_tui.samples.scenario import Device
from heimdal_tui.samples.writer import FrameLog

MS = 1_000
SECOND = 1_000_000

MSS = 1460
FULL_SEGMENT = 14 + 20 + 20 + MSS  # 1514 bytes on the wire
SNAP_BULK = 80  # captured bytes of bulk data frames (headers + the start of the payload)
SNAP_HANDSHAKE = 160  # server certificate flights: headers and the ServerHello's first bytes

MDNS_GROUP = "224.0.0.251"
SSDP_GROUP = "239.255.255.250"


@dataclass(frozen=True)
class Host:
    """An IPv4 endpoint as seen from the capture point."""

    name: str
    mac: bytes  # the device's own MAC (for remote hosts: the router's, the next hop)
    ip: str
    ttl: int  # TTL of its packets when they pass the capture point
    stack: str = "linux"
    window: int = 502
    lan: bool = True
    rtt_us: int = 3 * MS  # capture point <-> host round trip
    country: str | None = None

    @property
    def ipb(self) -> bytes:
        return pk.ip_bytes(self.ip)


@dataclass(frozen=True)
class Domain:
    """A public name the LAN resolves: its answer and where the server is."""

    name: str
    ipv4: str
    country: str
    ttl: int = 300
    rtt_ms: float = 20.0
    cname: tuple[str, ...] = ()
    ipv6: str | None = None
    server_ttl: int = 57  # TTL of the server's packets after the WAN hops


_EPHEMERAL = {
    "windows": (49152, 65535),
    "apple": (49152, 65535),
    "linux": (32768, 60999),
    "lwip": (49152, 65535),
}

_WINDOW = {"windows": 1026, "apple": 2058, "linux": 502, "lwip": 5744}


def lan_host(device: Device, rtt_us: int = 3 * MS) -> Host:
    return Host(
        device.name,
        pk.mac_bytes(device.mac),
        device.ip,
        device.ttl,
        stack=device.tcp_stack,
        window=_WINDOW.get(device.tcp_stack, 502),
        rtt_us=rtt_us,
    )


@dataclass
class World:
    """What every stream shares and nobody mutates: the router, the devices, the name table."""

    router: Host
    router_device: Device
    devices: dict[str, Device]
    hosts: dict[str, Host]
    domains: dict[str, Domain]
    remote_hosts: dict[str, Host] = field(default_factory=dict)
    # device name -> country -> first time (us) the device exchanged packets with that country
    contacts: dict[str, dict[str, int]] = field(default_factory=dict)

    def note_contact(self, local: Host, remote: Host, t_us: int) -> None:
        if remote.lan or remote.country is None:
            return
        seen = self.contacts.setdefault(local.name, {})
        if remote.country not in seen or seen[remote.country] > t_us:
            seen[remote.country] = t_us

    def remote(self, ip: str) -> Host:
        host = self.remote_hosts.get(ip)
        if host is None:
            entry = next((d for d in self.domains.values() if d.ipv4 == ip), None)
            if entry is None:
                raise KeyError(f"no domain entry for {ip}")
            host = Host(
                entry.name,
                self.router.mac,
                ip,
                entry.server_ttl,
                stack="linux",
                window=501,
                lan=False,
                rtt_us=round(entry.rtt_ms * MS),
                country=entry.country,
            )
            self.remote_hosts[ip] = host
        return host


class Stream:
    """A seeded source of frames: one device behaviour, or one incident."""

    def __init__(self, world: World, log: FrameLog, seed: int, name: str, tag: str = "") -> None:
        self.world = world
        self.log = log
        self.name = name
        self.tag = tag
        self.rng = random.Random(f"{seed}/{name}")
        self._ipid: dict[str, int] = {}
        self.dns_cache: dict[tuple[str, str], tuple[int, str]] = {}
        self.router_cache: dict[str, int] = {}
        self.frames = 0

    # -- primitives --------------------------------------------------------------------------
    def emit(self, t_us: int, frame: Frame) -> None:
        self.log.add(t_us, frame[0], frame[1], self.tag)
        self.frames += 1

    def ipid(self, host: Host) -> int:
        value = self._ipid.get(host.ip)
        if value is None:
            value = self.rng.getrandbits(16)
        value = (value + 1) & 0xFFFF
        self._ipid[host.ip] = value
        return value

    def ephemeral(self, host: Host) -> int:
        low, high = _EPHEMERAL.get(host.stack, (49152, 65535))
        return self.rng.randint(low, high)

    def jitter(self, center_us: float, spread: float = 0.2) -> int:
        return max(1, round(center_us * self.rng.uniform(1 - spread, 1 + spread)))

    @staticmethod
    def l2(src: Host, dst: Host) -> tuple[bytes, bytes]:
        """(eth dst, eth src) for a unicast packet between two hosts."""
        return dst.mac, src.mac

    def udp(
        self,
        t_us: int,
        src: Host,
        dst: Host | None,
        sport: int,
        dport: int,
        payload: bytes,
        *,
        dst_ip: str | None = None,
        eth_dst: bytes | None = None,
        ttl: int | None = None,
        src_ip: str | None = None,
    ) -> None:
        """A UDP datagram; for broadcast/multicast pass ``dst=None`` with ``dst_ip`` and ``eth_dst``."""
        if dst is not None:
            eth_dst = eth_dst or dst.mac
            dst_ip = dst_ip or dst.ip
        assert eth_dst is not None and dst_ip is not None
        frame = pk.udp_frame(
            eth_dst,
            src.mac,
            pk.ip_bytes(src_ip or src.ip),
            pk.ip_bytes(dst_ip),
            sport,
            dport,
            payload,
            self.ipid(src),
            ttl if ttl is not None else src.ttl,
        )
        self.emit(t_us, frame)

    def tcp(
        self,
        t_us: int,
        src: Host,
        dst: Host,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes = b"",
        payload_len: int | None = None,
        options: bytes = b"",
        snap: int | None = None,
        window: int | None = None,
    ) -> None:
        frame = pk.tcp_frame(
            dst.mac,
            src.mac,
            src.ipb,
            dst.ipb,
            sport,
            dport,
            seq,
            ack,
            flags,
            window if window is not None else src.window,
            self.ipid(src),
            src.ttl,
            payload,
            payload_len,
            options,
            snap,
        )
        self.emit(t_us, frame)

    def arp_request(self, t_us: int, src: Host, target_ip: str, unicast_to: Host | None = None) -> None:
        eth_dst = unicast_to.mac if unicast_to else pk.BROADCAST_MAC
        self.emit(t_us, pk.arp(eth_dst, src.mac, 1, src.mac, src.ip, pk.ZERO_MAC, target_ip))

    def arp_reply(self, t_us: int, src: Host, to: Host) -> None:
        self.emit(t_us, pk.arp(to.mac, src.mac, 2, src.mac, src.ip, to.mac, to.ip))

    def arp_exchange(self, t_us: int, asker: Host, target: Host, unicast: bool = False) -> int:
        self.arp_request(t_us, asker, target.ip, target if unicast else None)
        t_us += self.jitter(target.rtt_us * 0.6 if target.lan else 400)
        self.arp_reply(t_us, target, asker)
        return t_us

    # -- DNS ---------------------------------------------------------------------------------
    def resolve(
        self, t_us: int, device: Device, name: str, qtypes: Sequence[str] | None = None
    ) -> tuple[str, int]:
        """Look ``name`` up through the router (unless cached); returns (address, time after)."""
        entry = self.world.domains[name]
        key = (device.name, name)
        cached = self.dns_cache.get(key)
        if cached and cached[0] > t_us:
            return cached[1], t_us
        client = self.world.hosts[device.name]
        router = self.world.router
        done = t_us
        for i, qtype in enumerate(qtypes or device.dns_qtypes):
            tq = t_us + i * self.rng.randint(80, 400)
            answer_at = self._dns_query(tq, client, router, entry, pr.QTYPE_NAMES[qtype])
            done = max(done, answer_at)
        self.dns_cache[key] = (t_us + entry.ttl * SECOND, entry.ipv4)
        return entry.ipv4, done + self.rng.randint(200, 1500)

    def _dns_query(self, t_us: int, client: Host, router: Host, entry: Domain, qtype: int) -> int:
        txid = self.rng.getrandbits(16)
        sport = self.ephemeral(client)
        query = pr.dns_message(txid, pr.DNS_QUERY_FLAGS, [(entry.name, qtype, pr.CLASS_IN)])
        self.udp(t_us, client, router, sport, 53, query)
        cache_key = f"{entry.name}/{qtype}"
        cached_until = self.router_cache.get(cache_key, 0)
        if cached_until > t_us:
            delay = self.jitter(client.rtt_us + 400)
            ttl = max(1, (cached_until - t_us) // SECOND)
        else:
            delay = client.rtt_us + self.rng.randint(9 * MS, 42 * MS)
            ttl = entry.ttl
            self.router_cache[cache_key] = t_us + entry.ttl * SECOND
        answers: list[pr.RR] = []
        owner = entry.name
        for alias in entry.cname:
            answers.append(pr.RR(owner, pr.CNAME, alias, ttl))
            owner = alias
        if qtype == pr.A:
            answers.append(pr.RR(owner, pr.A, entry.ipv4, ttl))
        elif qtype == pr.AAAA and entry.ipv6:
            answers.append(pr.RR(owner, pr.AAAA, entry.ipv6, ttl))
        reply = pr.dns_message(
            txid, pr.DNS_RESPONSE_FLAGS, [(entry.name, qtype, pr.CLASS_IN)], answers=answers
        )
        self.udp(t_us + delay, router, client, 53, sport, reply)
        return t_us + delay

    # -- TCP ---------------------------------------------------------------------------------
    def connect(self, t_us: int, client: Host, server: Host, dport: int, sport: int | None = None) -> TcpConn:
        conn = TcpConn(self, t_us, client, server, sport or self.ephemeral(client), dport)
        self.world.note_contact(client, server, t_us)
        conn.handshake()
        return conn

    def tls_session(
        self,
        t_us: int,
        device: Device,
        domain: str,
        exchanges: Sequence[tuple[int, int, int]],
        *,
        port: int = 443,
        alpn: Sequence[str] = ("h2", "http/1.1"),
        close: str = "client",
        linger_us: int | None = None,
        rate_bps: float = 40e6,
    ) -> tuple[TcpConn, int]:
        """Resolve, connect, handshake, then ``(think_us, up_bytes, down_bytes)`` exchanges.

        ``close`` is "client", "server", "rst" or "keep" (leave the connection open).
        Returns the connection and the time of its last frame.
        """
        ip, t_us = self.resolve(t_us, device, domain)
        client = self.world.hosts[device.name]
        server = self.world.remote(ip)
        conn = self.connect(t_us, client, server, port)
        conn.tls_handshake(domain, device.tls_profile, alpn)
        for think_us, up, down in exchanges:
            conn.send(True, up, pr.app_data_head(self.rng, up), think_us=think_us, snap=SNAP_BULK)
            conn.send(False, down, pr.app_data_head(self.rng, down), snap=SNAP_BULK, rate_bps=rate_bps)
        if close != "keep":
            linger = linger_us if linger_us is not None else self.rng.randint(2 * SECOND, 40 * SECOND)
            conn.close(close == "client" or close == "rst", think_us=linger, rst=close == "rst")
        return conn, conn.t


class TcpConn:
    """One TCP connection, tracked from the capture point; True means the client side."""

    def __init__(self, stream: Stream, t_us: int, client: Host, server: Host, sport: int, dport: int) -> None:
        self.s = stream
        self.client = client
        self.server = server
        self.sport = sport
        self.dport = dport
        rng = stream.rng
        self.seq = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
        self.last = {True: t_us, False: t_us}
        self.t = t_us
        self.delay = {True: client.rtt_us, False: server.rtt_us}
        self.open = False

    def _side(self, side: bool) -> tuple[Host, Host, int, int]:
        if side:
            return self.client, self.server, self.sport, self.dport
        return self.server, self.client, self.dport, self.sport

    def packet(
        self,
        side: bool,
        t_us: int,
        flags: int,
        payload: bytes = b"",
        payload_len: int | None = None,
        options: bytes = b"",
        snap: int | None = None,
        ack: int | None = None,
        window: int | None = None,
    ) -> None:
        src, dst, sport, dport = self._side(side)
        seq = self.seq[side]
        if ack is None:
            ack = self.seq[not side] if flags & ACK else 0
        self.s.tcp(t_us, src, dst, sport, dport, seq, ack, flags, payload, payload_len, options, snap, window)
        length = len(payload) if payload_len is None else payload_len
        self.seq[side] = (seq + length + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        self.last[side] = t_us
        self.t = max(self.t, t_us)

    def react(self, side: bool, extra_us: int = 0) -> int:
        """When ``side`` answers the other side's latest packet."""
        rng = self.s.rng
        base = self.last[not side] + round(self.delay[side] * rng.uniform(0.85, 1.25)) + extra_us
        return max(base, self.t + rng.randint(5, 60))

    def handshake(self, refuse: bool = False) -> bool:
        rng = self.s.rng
        syn_opts = pk.tcp_options(self.client.stack, ts_val=rng.getrandbits(32))
        self.packet(
            True, self.t, SYN, options=syn_opts, window=64240 if self.client.stack != "lwip" else 5744
        )
        if refuse:
            self.packet(False, self.react(False, rng.randint(20, 200)), RST | ACK, window=0)
            return False
        synack_opts = pk.tcp_options("synack", mss=1460, wscale=rng.choice((7, 8, 9)))
        self.packet(
            False, self.react(False, rng.randint(20, 300)), SYN | ACK, options=synack_opts, window=65160
        )
        self.packet(True, self.react(True, rng.randint(20, 200)), ACK)
        self.open = True
        return True

    def ack(self, side: bool, extra_us: int = 0) -> None:
        self.packet(side, self.react(side, extra_us), ACK)

    def send(
        self,
        side: bool,
        nbytes: int,
        head: bytes = b"",
        *,
        think_us: int = 0,
        snap: int | None = None,
        rate_bps: float = 20e6,
        ack_every: int = 2,
        final_ack: bool | None = None,
    ) -> None:
        """Send ``nbytes`` from ``side`` in MSS-sized segments; the receiver ACKs every
        ``ack_every`` segments. Only the first ``snap`` bytes of each frame are captured; the first
        segment's payload starts with ``head`` (the rest is random)."""
        if nbytes <= 0:
            return
        rng = self.s.rng
        t = self.react(side, think_us + rng.randint(30, 400))
        gap = FULL_SEGMENT * 8 * SECOND / rate_bps
        remaining = nbytes
        nseg = 0
        receiver_delay = self.delay[not side]
        last_ack = 0
        while remaining > 0:
            seg = min(MSS, remaining)
            remaining -= seg
            keep = seg if snap is None else max(0, min(seg, snap - 54))
            if nseg == 0 and head:
                data = head[:keep]
                if len(data) < keep:
                    data += rng.randbytes(keep - len(data))
            else:
                data = rng.randbytes(keep)
            flags = ACK | (PSH if remaining == 0 else 0)
            self.packet(side, t, flags, data, seg, snap=snap)
            nseg += 1
            seg_t = t
            if nseg % ack_every == 0 and remaining > 0:
                ack_t = seg_t + round(receiver_delay * rng.uniform(0.9, 1.2))
                self.packet(not side, max(ack_t, last_ack + 1), ACK, ack=self.seq[side])
                last_ack = max(ack_t, last_ack + 1)
                self.t = max(self.t, seg_t)
            t = seg_t + max(1, round(gap * rng.uniform(0.7, 1.4)))
        self.last[side] = seg_t
        if final_ack is None:
            final_ack = nseg > 1
        if final_ack:
            self.packet(not side, max(self.react(not side), last_ack + 1), ACK)

    def close(self, client_first: bool = True, think_us: int = 0, rst: bool = False) -> None:
        side = client_first
        rng = self.s.rng
        if rst:
            self.packet(side, self.react(side, think_us), RST | ACK)
            self.open = False
            return
        self.packet(side, self.react(side, think_us), FIN | ACK)
        self.packet(not side, self.react(not side, rng.randint(50, 3000)), FIN | ACK)
        self.packet(side, self.react(side, rng.randint(20, 200)), ACK)
        self.open = False

    # -- TLS -----------------------------------------------------------------------------------
    def tls_handshake(self, sni: str, profile: str, alpn: Sequence[str] = ("h2", "http/1.1")) -> None:
        rng = self.s.rng
        prof = pr.TLS_PROFILES[profile]
        hello = pr.client_hello(rng, sni, prof, alpn)
        self.send(True, len(hello), hello, think_us=rng.randint(100, 900))
        cipher = rng.choice((0x1301, 0x1302)) if prof.tls13 else 0xC02F
        flight_head = pr.server_hello(rng, prof.tls13, cipher, pr.hello_session_id(hello))
        flight = len(flight_head) + rng.randint(2400, 5200)
        if prof.tls13:
            flight_head += pr.app_data_head(rng, flight - len(flight_head), 40)
        else:
            flight_head += b"\x16\x03\x03" + (flight - len(flight_head) - 5).to_bytes(2, "big")
        self.send(False, flight, flight_head, snap=SNAP_HANDSHAKE, ack_every=2, final_ack=False)
        # Client Finished (and, for TLS 1.2, its key exchange); one small full record.
        if prof.tls13:
            fin = pr.tls_record(0x14, b"\x01") + pr.app_data_head(rng, 74, 74)
        else:
            fin = (
                pr.tls_record(0x16, b"\x10\x00\x00\x42\x41" + rng.randbytes(65))
                + pr.tls_record(0x14, b"\x01")
                + pr.tls_record(0x16, rng.randbytes(40))
            )
        self.send(True, len(fin), fin, think_us=rng.randint(500, 4000))
        if not prof.tls13:
            tail = pr.tls_record(0x14, b"\x01") + pr.tls_record(0x16, rng.randbytes(40))
            self.send(False, len(tail), tail)
        else:
            ticket = rng.randint(200, 560)
            self.send(False, ticket, pr.app_data_head(rng, ticket), snap=SNAP_BULK)
