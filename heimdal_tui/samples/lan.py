"""LAN chores every scenario needs: DHCP, ARP, mDNS, NTP, plain HTTP, IGMP membership.

Functions take the :class:`Stream` that owns the conversation and return the time of the last
frame they emitted (microseconds since the epoch).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from heimdal_tui.samples import packets as pk
from heimdal_tui.samples import protocols as pr
from heimdal_tui.samples.scenario import Device
from heimdal_tui.samples.traffic import MDNS_GROUP, MS, SECOND, SNAP_BULK, Host, Stream

LEASE_S = 3600


def _client_options(
    device: Device, msg_type: int, requested: str | None = None, server: str | None = None
) -> list[tuple[int, bytes]]:
    mac = pk.mac_bytes(device.mac)
    opts: list[tuple[int, bytes]] = [(53, bytes([msg_type]))]
    windows = device.tcp_stack == "windows"
    if device.tcp_stack == "apple":
        # iOS puts the parameter list first and sends no vendor class.
        opts.append((55, bytes(device.dhcp_params)))
        opts.append((57, struct.pack("!H", 1500)))
        opts.append((61, b"\x01" + mac))
        if requested:
            opts.append((50, pk.ip_bytes(requested)))
        if server:
            opts.append((54, pk.ip_bytes(server)))
        opts.append((51, struct.pack("!I", 7_776_000)))
        opts.append((12, device.hostname.encode()))
        return opts
    opts.append((61, b"\x01" + mac))
    if requested:
        opts.append((50, pk.ip_bytes(requested)))
    if server:
        opts.append((54, pk.ip_bytes(server)))
    if not windows and device.tcp_stack != "lwip":
        opts.append((57, struct.pack("!H", 1500)))
    opts.append((12, device.hostname.encode()))
    if windows:
        opts.append((81, b"\x00\x00\x00" + device.hostname.encode()))
    if device.dhcp_vendor_class:
        opts.append((60, device.dhcp_vendor_class.encode()))
    opts.append((55, bytes(device.dhcp_params)))
    return opts


def _server_options(router: Host, msg_type: int) -> list[tuple[int, bytes]]:
    ip = pk.ip_bytes(router.ip)
    return [
        (53, bytes([msg_type])),
        (54, ip),
        (51, struct.pack("!I", LEASE_S)),
        (58, struct.pack("!I", LEASE_S // 2)),
        (59, struct.pack("!I", LEASE_S * 7 // 8)),
        (1, pk.ip_bytes("255.255.255.0")),
        (28, pk.ip_bytes("192.168.1.255")),
        (3, ip),
        (6, ip),
        (15, b"lan"),
    ]


def _client_broadcast(s: Stream, t_us: int, device: Device, payload: bytes, src_ip: str = "0.0.0.0") -> None:
    host = s.world.hosts[device.name]
    s.udp(
        t_us, host, None, 68, 67, payload, dst_ip="255.255.255.255", eth_dst=pk.BROADCAST_MAC, src_ip=src_ip
    )


def _server_reply(s: Stream, t_us: int, device: Device, payload: bytes) -> None:
    host = s.world.hosts[device.name]
    s.udp(t_us, s.world.router, host, 67, 68, payload)


def dhcp_dora(s: Stream, t_us: int, device: Device) -> int:
    """DISCOVER, OFFER, REQUEST, ACK for a device joining the network."""
    rng = s.rng
    router = s.world.router
    mac = pk.mac_bytes(device.mac)
    xid = rng.getrandbits(32)
    secs = 0
    discover = pr.dhcp_message(1, xid, mac, _client_options(device, pr.DHCPDISCOVER), secs=secs)
    _client_broadcast(s, t_us, device, discover)
    t_us += rng.randint(3 * MS, 15 * MS)
    offer = pr.dhcp_message(
        2, xid, mac, _server_options(router, pr.DHCPOFFER), yiaddr=device.ip, siaddr=router.ip
    )
    _server_reply(s, t_us, device, offer)
    t_us += rng.randint(2 * MS, 30 * MS)
    secs = 0 if device.tcp_stack in ("windows", "apple") else 1
    request = pr.dhcp_message(
        1,
        xid,
        mac,
        _client_options(device, pr.DHCPREQUEST, requested=device.ip, server=router.ip),
        secs=secs,
    )
    _client_broadcast(s, t_us, device, request)
    t_us += rng.randint(2 * MS, 12 * MS)
    ack = pr.dhcp_message(
        2, xid, mac, _server_options(router, pr.DHCPACK), yiaddr=device.ip, siaddr=router.ip
    )
    _server_reply(s, t_us, device, ack)
    return t_us


def dhcp_init_reboot(s: Stream, t_us: int, device: Device) -> int:
    """A device that remembers its lease asks to keep it (REQUEST with option 50, broadcast)."""
    rng = s.rng
    mac = pk.mac_bytes(device.mac)
    xid = rng.getrandbits(32)
    request = pr.dhcp_message(1, xid, mac, _client_options(device, pr.DHCPREQUEST, requested=device.ip))
    _client_broadcast(s, t_us, device, request)
    t_us += rng.randint(2 * MS, 12 * MS)
    ack = pr.dhcp_message(
        2, xid, mac, _server_options(s.world.router, pr.DHCPACK), yiaddr=device.ip, siaddr=s.world.router.ip
    )
    _server_reply(s, t_us, device, ack)
    return t_us


def dhcp_renew(s: Stream, t_us: int, device: Device) -> int:
    """Lease renewal at T1: unicast REQUEST from the leased address, unicast ACK."""
    rng = s.rng
    host = s.world.hosts[device.name]
    router = s.world.router
    mac = pk.mac_bytes(device.mac)
    xid = rng.getrandbits(32)
    request = pr.dhcp_message(1, xid, mac, _client_options(device, pr.DHCPREQUEST), ciaddr=device.ip)
    s.udp(t_us, host, router, 68, 67, request)
    t_us += rng.randint(2 * MS, 12 * MS)
    ack = pr.dhcp_message(
        2,
        xid,
        mac,
        _server_options(router, pr.DHCPACK),
        ciaddr=device.ip,
        yiaddr=device.ip,
        siaddr=router.ip,
    )
    s.udp(t_us, router, host, 67, 68, ack)
    return t_us


def join_arp(s: Stream, t_us: int, device: Device, probes: int = 2) -> int:
    """Address conflict detection (RFC 5227 probes), an announcement, then ARP for the gateway."""
    rng = s.rng
    host = s.world.hosts[device.name]
    router = s.world.router
    mac = host.mac
    t_us += rng.randint(5 * MS, 60 * MS)
    for _ in range(probes):
        s.emit(t_us, pk.arp(pk.BROADCAST_MAC, mac, 1, mac, "0.0.0.0", pk.ZERO_MAC, device.ip))
        t_us += rng.randint(200 * MS, 900 * MS) if probes > 1 else rng.randint(5 * MS, 50 * MS)
    # Gratuitous ARP announcement: sender and target address are both the device's own.
    s.emit(t_us, pk.arp(pk.BROADCAST_MAC, mac, 1, mac, device.ip, pk.ZERO_MAC, device.ip))
    t_us += rng.randint(2 * MS, 40 * MS)
    return s.arp_exchange(t_us, host, router)


def arp_refresh(s: Stream, t_us: int, device: Device) -> int:
    """A device revalidating the gateway's ARP entry (unicast probe, as Linux and Apple do)."""
    host = s.world.hosts[device.name]
    unicast = device.tcp_stack in ("linux", "apple")
    return s.arp_exchange(t_us, host, s.world.router, unicast=unicast)


def mdns_send(s: Stream, t_us: int, host: Host, payload: bytes) -> None:
    s.udp(
        t_us,
        host,
        None,
        5353,
        5353,
        payload,
        dst_ip=MDNS_GROUP,
        eth_dst=pk.multicast_mac(MDNS_GROUP),
        ttl=255,
    )


def mdns_announce(
    s: Stream, t_us: int, device: Device, services: Sequence[pr.MdnsService], repeats: int = 2
) -> int:
    host = s.world.hosts[device.name]
    payload = pr.mdns_announcement(device.hostname, device.ip, services)
    for i in range(repeats):
        mdns_send(s, t_us, host, payload)
        if i + 1 < repeats:
            t_us += s.rng.randint(950 * MS, 1100 * MS) * (2**i)
    return t_us


def mdns_ask(
    s: Stream,
    t_us: int,
    asker: Device,
    names: Sequence[str],
    responders: Sequence[tuple[Device, Sequence[pr.MdnsService]]],
) -> int:
    """A PTR query from ``asker`` and the answers of every device that offers the service."""
    host = s.world.hosts[asker.name]
    mdns_send(s, t_us, host, pr.mdns_query(names))
    last = t_us
    for device, services in responders:
        wanted = [svc for svc in services if svc.type_name in names]
        if not wanted:
            continue
        # RFC 6762 section 6: shared answers wait 20-120 ms.
        t_reply = t_us + s.rng.randint(20 * MS, 120 * MS)
        mdns_send(
            s, t_reply, s.world.hosts[device.name], pr.mdns_response(device.hostname, device.ip, wanted)
        )
        last = max(last, t_reply)
    return last


def ntp_exchange(s: Stream, t_us: int, client: Host, server: Host, version: int = 4, stratum: int = 2) -> int:
    """One SNTP request and its answer (the router relays time at stratum 3)."""
    rng = s.rng
    s.world.note_contact(client, server, t_us)
    sport = 123 if client.stack in ("linux", "windows") and rng.random() < 0.5 else s.ephemeral(client)
    xmit = t_us + rng.randint(-40 * MS, 40 * MS)
    s.udp(t_us, client, server, sport, 123, pr.ntp_client(xmit, version))
    rtt = server.rtt_us if not server.lan else rng.randint(400, 1500)
    t_reply = t_us + round(rtt * rng.uniform(0.95, 1.15))
    ref_id = b"GPS\x00" if stratum == 1 else bytes([216, 239, 35, 4])
    payload = pr.ntp_server(
        xmit, t_us + rtt // 2, t_us + rtt // 2 + 40, t_us - 512 * SECOND, stratum, ref_id, version
    )
    s.udp(t_reply, server, client, 123, sport, payload)
    return t_reply


def http_get(
    s: Stream,
    t_us: int,
    device: Device,
    domain: str,
    path: str,
    headers: Sequence[tuple[str, str]],
    response: bytes,
) -> int:
    """Resolve ``domain`` and fetch ``path`` over plain HTTP (port 80); returns the last frame's time."""
    ip, t_us = s.resolve(t_us, device, domain)
    client = s.world.hosts[device.name]
    conn = s.connect(t_us, client, s.world.remote(ip), 80)
    request = pr.http_request("GET", path, domain, headers)
    conn.send(True, len(request), request)
    total = len(response)
    conn.send(False, total, response, snap=None if total < 4000 else SNAP_BULK)
    if total <= 1460:
        conn.ack(True, s.rng.randint(100, 40 * MS))
    conn.close(client_first=s.rng.random() < 0.5, think_us=s.rng.randint(50 * MS, 3 * SECOND))
    return conn.t
