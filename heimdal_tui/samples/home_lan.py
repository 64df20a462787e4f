"""The home-LAN scenario: nine devices on 192.168.1.0/24 on a Monday morning, and seven incidents.

Timeline with the default 45-minute capture (2026-03-02 08:00-08:45 UTC):

* 08:00-08:20 learning stretch, benign only. The camera, NAS and router run from the start; the
  iPhone, printer, Android phone, TV, smart plug and Windows laptop join one after another (DHCP,
  ARP, mDNS/SSDP/NetBIOS announcements), then behave as such devices do.
* 08:20-08:45 benign traffic continues; in ``home_lan_incidents`` seven incidents run on top of it
  (see :data:`INCIDENT_PLAN`). ``home_lan_benign`` is the same capture without them: every benign
  frame is byte-identical in both files.
"""

from __future__ import annotations

import itertools
import math
import string
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from heimdal_tui.samples import lan
from heimdal_tui.samples import packets as pk
from heimdal_tui.samples import protocols as pr
from heimdal_tui.samples.packets import ACK, RST, SYN
from heimdal_tui.samples.scenario import Device, Incident, ScenarioRun, Timeline, epoch_us
from heimdal_tui.samples.traffic import (
    MS,
    SECOND,
    SNAP_BULK,
    SNAP_HANDSHAKE,
    SSDP_GROUP,
    Domain,
    Host,
    Stream,
    TcpConn,
    World,
    lan_host,
)
from heimdal_tui.samples.writer import FrameLog

SCENARIO = "home_lan"
DEFAULT_SEED = 20260302
BASE_TIME = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)
DEFAULT_DURATION_S = 45 * 60
DEFAULT_LEARNING_S = 20 * 60
MIN_DURATION_S = 30 * 60

# ------------------------------------------------------------------------------------------------
# Devices

ROUTER = Device(
    "router",
    "Home router",
    "router",
    "50:c7:bf:3e:91:a4",
    "192.168.1.1",
    "TP-Link",
    "TP-LINK TECHNOLOGIES CO.,LTD.",
    "Archer-AX55",
    "TP-Link Archer AX55 (DHCP server, DNS resolver, NTP relay, default gateway)",
    "TP-Link firmware (Linux)",
)
NAS = Device(
    "nas",
    "Synology NAS",
    "nas",
    "00:11:32:8b:4e:27",
    "192.168.1.10",
    "Synology",
    "Synology Incorporated",
    "DiskStation",
    "Synology DS220+",
    "DSM 7.2 (Linux 4.4)",
    dhcp_vendor_class="dhcpcd-9.4.1:Linux-4.4.302+:x86_64:GenuineIntel",
    dhcp_params=(1, 121, 33, 3, 6, 28, 51, 58, 59, 12, 15, 119),
)
IPHONE = Device(
    "iphone",
    "Anna's iPhone",
    "phone",
    "f0:18:98:6d:2a:c1",
    "192.168.1.23",
    "Apple",
    "Apple, Inc.",
    "Annas-iPhone",
    "iPhone 15",
    "iOS 17.3",
    dhcp_params=(1, 121, 3, 6, 15, 108, 114, 119, 252),
    tcp_stack="apple",
    tls_profile="apple",
    dns_qtypes=("A", "AAAA", "HTTPS"),
)
ANDROID = Device(
    "android",
    "Ben's Galaxy S23",
    "phone",
    "a6:3f:8e:51:7c:d2",  # locally administered: Android's per-network randomized MAC
    "192.168.1.31",
    "Samsung",
    None,
    "Galaxy-S23",
    "Samsung Galaxy S23 (SM-S911B)",
    "Android 14 (One UI 6)",
    dhcp_vendor_class="android-dhcp-14",
    dhcp_params=(1, 3, 6, 15, 26, 28, 51, 58, 59, 43, 114, 108),
    mac_randomized=True,
    tls_profile="chrome",
    dns_qtypes=("A", "AAAA"),
)
LAPTOP = Device(
    "laptop",
    "Work laptop",
    "laptop",
    "8c:8d:28:4f:b3:19",
    "192.168.1.42",
    "Dell",
    "Intel Corporate",
    "LAPTOP-J4R8TQ2N",
    "Dell XPS 13 9320 (Intel Wi-Fi 6E AX211)",
    "Windows 11 23H2",
    dhcp_vendor_class="MSFT 5.0",
    dhcp_params=(1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252),
    tcp_stack="windows",
    ttl=128,
    tls_profile="schannel",
    dns_qtypes=("A", "AAAA"),
)
TV = Device(
    "tv",
    "Living-room TV",
    "tv",
    "8c:79:f5:a2:3d:6e",
    "192.168.1.50",
    "Samsung",
    "Samsung Electronics Co.,Ltd",
    "Samsung-Q70-TV",
    "Samsung QE55Q70B",
    "Tizen 6.5",
    dhcp_vendor_class="udhcp 1.33.2",
    dhcp_params=(1, 3, 6, 12, 15, 28, 42),
    tls_profile="chrome",
)
PRINTER = Device(
    "printer",
    "Office printer",
    "printer",
    "3c:52:82:e4:a7:c1",
    "192.168.1.60",
    "HP",
    "Hewlett Packard",
    "HPE4A7C1",
    "HP OfficeJet Pro 9010",
    "HP FutureSmart firmware",
    dhcp_vendor_class="Hewlett-Packard JetDirect",
    dhcp_params=(1, 3, 6, 15, 44, 46, 47, 12, 81, 119, 252),
    ttl=64,
)
PLUG = Device(
    "plug",
    "Kettle smart plug",
    "smart_plug",
    "24:0a:c4:3a:7f:21",
    "192.168.1.70",
    "Tuya (Espressif ESP32 module)",
    "Espressif Inc.",
    "ESP_3A7F21",
    "Tuya Wi-Fi smart plug (ESP32)",
    "ESP-IDF 4.4 (lwIP)",
    dhcp_params=(1, 3, 28, 6, 42),
    tcp_stack="lwip",
    ttl=64,
    tls_profile="mbedtls",
)
CAMERA = Device(
    "camera",
    "Front-door camera",
    "camera",
    "c0:56:e3:9d:14:b8",
    "192.168.1.80",
    "Hikvision",
    "Hangzhou Hikvision Digital Technology Co.,Ltd.",
    "DS-2CD2143G2-I",
    "Hikvision DS-2CD2143G2-I",
    "Hikvision firmware V5.7 (Linux)",
    dhcp_vendor_class="udhcp 1.30.1",
    dhcp_params=(1, 3, 6, 12, 15, 28, 42),
)

DEVICES: tuple[Device, ...] = (ROUTER, NAS, IPHONE, ANDROID, LAPTOP, TV, PRINTER, PLUG, CAMERA)

# When each device joins (seconds after 08:00); router, NAS and camera run all along. The iPhone
# leaves the house four minutes before the capture ends.
ARRIVALS = {"iphone": 71.4, "printer": 96.2, "android": 163.8, "tv": 201.5, "plug": 243.1, "laptop": 391.7}

# mDNS services each device advertises.
IPHONE_SERVICES = (
    pr.MdnsService(
        "Annas-iPhone",
        "_companion-link._tcp",
        49463,
        (
            b"rpMac=0",
            b"rpHN=b7f1c3e5a1d2",
            b"rpFl=0x20000",
            b"rpHA=4a6e2f0c9b1d",
            b"rpVr=510.73",
            b"rpAD=1f3e5c7a9b2d",
        ),
    ),
)
TV_SERVICES = (
    pr.MdnsService(
        "Samsung Q70 Series (55)",
        "_airplay._tcp",
        7000,
        (
            b"acl=0",
            b"deviceid=8C:79:F5:A2:3D:6E",
            b"features=0x7F8AD0,0x38BCB46",
            b"flags=0x244",
            b"model=QE55Q70BATXXU",
            b"manufacturer=Samsung",
            b"serialNumber=0C7H3NCR600123X",
            b"protovers=1.1",
            b"srcvers=377.40.00",
        ),
    ),
    pr.MdnsService(
        "8C79F5A23D6E@Samsung Q70 Series (55)",
        "_raop._tcp",
        7000,
        (
            b"cn=0,1,3",
            b"da=true",
            b"et=0,3,5",
            b"ft=0x7F8AD0,0x38BCB46",
            b"md=0,1,2",
            b"am=QE55Q70BATXXU",
            b"sf=0x244",
        ),
    ),
)
_PRINTER_NAME = "HP OfficeJet Pro 9010 series [E4A7C1]"
_PRINTER_TXT = (
    b"txtvers=1",
    b"qtotal=1",
    b"rp=ipp/print",
    b"ty=HP OfficeJet Pro 9010 series",
    b"pdl=application/octet-stream,application/pdf,application/postscript,image/jpeg,image/urf,image/pwg-raster",
    b"adminurl=http://HPE4A7C1.local./#hId-pgAirPrint",
    b"UUID=2a1f5c3e-7d4b-4e1a-9c8f-3c5282e4a7c1",
    b"Color=T",
    b"Duplex=T",
    b"usb_MFG=HP",
    b"usb_MDL=OfficeJet Pro 9010 series",
)
PRINTER_SERVICES = (
    pr.MdnsService(_PRINTER_NAME, "_ipp._tcp", 631, _PRINTER_TXT),
    pr.MdnsService(
        _PRINTER_NAME,
        "_printer._tcp",
        515,
        (b"txtvers=1", b"qtotal=1", b"rp=RAW", b"ty=HP OfficeJet Pro 9010 series"),
    ),
    pr.MdnsService(
        _PRINTER_NAME, "_pdl-datastream._tcp", 9100, (b"txtvers=1", b"ty=HP OfficeJet Pro 9010 series")
    ),
    pr.MdnsService(_PRINTER_NAME, "_http._tcp", 80, (b"path=/",)),
    pr.MdnsService(
        _PRINTER_NAME,
        "_uscan._tcp",
        8080,
        (b"txtvers=1", b"vers=2.63", b"rs=eSCL", b"ty=HP OfficeJet Pro 9010 series"),
    ),
)
NAS_SERVICES = (
    pr.MdnsService("DiskStation", "_smb._tcp", 445, (b"",)),
    pr.MdnsService(
        "DiskStation", "_adisk._tcp", 9, (b"sys=waMa=0,adVF=0x100", b"dk0=adVN=TimeMachine,adVF=0x82")
    ),
    pr.MdnsService(
        "DiskStation",
        "_http._tcp",
        5000,
        (
            b"vendor=Synology",
            b"model=DS220+",
            b"serial=2150PDN123456",
            b"version_major=7",
            b"version_minor=2",
            b"version_build=64570",
            b"admin_port=5000",
            b"secure_admin_port=5001",
        ),
    ),
    pr.MdnsService("DiskStation", "_device-info._tcp", 0, (b"model=Xserve",)),
)

# ------------------------------------------------------------------------------------------------
# Public names the LAN resolves. The addresses are stable per name; the country column is what
# iptocc (RIR delegation data) reports for the address, which tests/test_samples.py checks.


def _d(
    name: str,
    ipv4: str,
    country: str,
    ttl: int = 300,
    rtt: float = 20.0,
    *,
    cname: tuple[str, ...] = (),
    ipv6: str | None = None,
    server_ttl: int = 57,
) -> Domain:
    return Domain(name, ipv4, country, ttl, rtt, cname, ipv6, server_ttl)


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        # Apple
        _d(
            "captive.apple.com",
            "17.253.53.207",
            "US",
            300,
            14,
            cname=("captive-cdn.origin-apple.com.akadns.net",),
        ),
        _d("time.apple.com", "17.253.53.208", "US", 600, 14),
        _d("gateway.icloud.com", "17.248.211.66", "US", 120, 22, ipv6="2a01:b740:a42:1::12"),
        _d("api.apple-cloudkit.com", "17.248.211.70", "US", 120, 22),
        _d(
            "courier.push.apple.com",
            "17.57.146.52",
            "US",
            900,
            26,
            cname=("courier-push-apple.com.akadns.net",),
        ),
        _d("weather-data.apple.com", "17.253.53.210", "US", 600, 14),
        # Meta
        _d("i.instagram.com", "31.13.84.52", "IE", 60, 24, cname=("dualstack.reverse-proxy.instagram.com",)),
        _d("scontent.cdninstagram.com", "157.240.20.174", "US", 60, 18),
        _d("g.whatsapp.net", "185.60.216.53", "IE", 60, 25, cname=("dualstack.reverse-xmppfb.whatsapp.net",)),
        # Google
        _d("www.google.com", "142.250.185.68", "US", 300, 9, ipv6="2a00:1450:4001:82b::2004"),
        _d("connectivitycheck.gstatic.com", "142.250.186.35", "US", 300, 9),
        _d("mtalk.google.com", "142.250.27.188", "US", 300, 11, cname=("mobile-gtalk.l.google.com",)),
        _d("play.googleapis.com", "142.250.185.74", "US", 300, 9),
        _d("www.youtube.com", "142.250.185.78", "US", 300, 9, cname=("youtube-ui.l.google.com",)),
        _d("i.ytimg.com", "142.250.186.54", "US", 300, 9),
        _d("mail.google.com", "142.250.185.69", "US", 300, 9),
        _d("rr4---sn-4g5ednsz.googlevideo.com", "173.194.182.104", "US", 1800, 8),
        _d("time.android.com", "216.239.35.4", "US", 300, 10),
        _d("time.google.com", "216.239.35.0", "US", 300, 10),
        # Spotify
        _d(
            "spclient.wg.spotify.com",
            "35.186.224.25",
            "US",
            300,
            16,
            cname=("edge-web.dual-gslb.spotify.com",),
        ),
        # Microsoft and work sites
        _d(
            "www.msftconnecttest.com",
            "13.107.4.52",
            "US",
            30,
            12,
            cname=("v4ncsi.msedge.net",),
            server_ttl=117,
        ),
        _d("time.windows.com", "168.61.215.74", "US", 900, 98, server_ttl=108),
        _d("login.microsoftonline.com", "20.190.160.20", "US", 60, 21, server_ttl=110),
        _d("outlook.office365.com", "52.97.146.162", "US", 30, 19, server_ttl=112),
        _d("teams.microsoft.com", "52.113.194.132", "US", 60, 20, server_ttl=112),
        _d("settings-win.data.microsoft.com", "20.42.65.92", "US", 300, 95, server_ttl=106),
        _d("github.com", "140.82.121.4", "US", 60, 18),
        _d("stackoverflow.com", "104.18.32.7", "US", 300, 10),
        _d("www.heise.de", "193.99.144.85", "DE", 3600, 13, server_ttl=55),
        # Samsung TV
        _d("www.samsungotn.net", "2.16.106.94", "NL", 600, 17),
        _d("osb-eu.samsungqbe.com", "52.28.70.42", "US", 60, 19),
        _d("log-ingestion-eu.samsungacr.com", "3.64.117.102", "US", 60, 19),
        # HP printer
        _d("xmpp009.hpeprint.com", "15.73.182.2", "US", 300, 102, server_ttl=49),
        _d("h10089.www1.hp.com", "15.72.41.9", "US", 300, 104, server_ttl=49),
        # Tuya smart plug
        _d("a1.tuyaeu.com", "3.120.180.90", "US", 60, 21),
        _d("m1.tuyaeu.com", "18.185.99.210", "US", 60, 21),
        _d("pool.ntp.org", "88.198.40.9", "DE", 150, 15, server_ttl=55),
        # Hikvision camera
        _d("litedev.hik-connect.com", "18.194.12.34", "US", 300, 21),
        _d("vtm-eu.hik-connect.com", "3.66.78.41", "US", 300, 21),
        # Synology NAS
        _d("checkip.synology.com", "52.85.132.20", "US", 60, 15),
        _d("global.download.synology.com", "108.156.60.1", "US", 60, 15),
        _d("global.quickconnect.to", "54.93.210.7", "US", 300, 20),
        # Incident peers (illustrative names; the addresses are only used for their country)
        _d("edge3.tvbox-mirror.ru", "95.213.37.42", "RU", 300, 48, server_ttl=52),
        _d("cdn-sync.printhub-update.com", "167.99.153.80", "US", 300, 96, server_ttl=50),
        _d("upload.cloudbox-transfer.net", "159.203.107.12", "US", 300, 92, server_ttl=51),
    )
}

DNS_TUNNEL_DOMAIN = "t.cdn-metrics-sync.com"

# ------------------------------------------------------------------------------------------------
# Incident plan: (tag, kind, device, start offset s, nominal length s) for the default timeline.


@dataclass(frozen=True)
class PlannedIncident:
    tag: str
    kind: str
    device: Device
    offset_s: float
    length_s: float


INCIDENT_PLAN: tuple[PlannedIncident, ...] = (
    PlannedIncident("geo-tv-ru", "geo_violation", TV, 1290, 150),
    PlannedIncident("beacon-printer", "beaconing", PRINTER, 1330, 1290),
    PlannedIncident("scan-plug", "port_scan", PLUG, 1500, 110),
    PlannedIncident("bruteforce-plug-nas", "brute_force", PLUG, 1680, 150),
    PlannedIncident("exfil-camera", "volume_spike", CAMERA, 1890, 90),
    PlannedIncident("dnstunnel-laptop", "dns_tunnel", LAPTOP, 2040, 150),
    PlannedIncident("arpspoof-android", "arp_spoof", ANDROID, 2250, 120),
)

# ------------------------------------------------------------------------------------------------
# Helpers


def level(points: Sequence[tuple[float, float]], t_s: float) -> float:
    """Piecewise-linear activity level at ``t_s`` seconds."""
    if t_s <= points[0][0]:
        return points[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t_s <= t1:
            return v0 + (v1 - v0) * (t_s - t0) / (t1 - t0)
    return points[-1][1]


@dataclass
class Ctx:
    """What every behaviour needs: the world, the timeline, the frame log."""

    world: World
    timeline: Timeline
    log: FrameLog
    seed: int

    def stream(self, name: str, tag: str = "") -> Stream:
        return Stream(self.world, self.log, self.seed, name, tag)

    def at(self, seconds: float) -> int:
        return self.timeline.at(seconds)

    @property
    def end(self) -> int:
        return self.timeline.capture_end_us

    @property
    def duration(self) -> float:
        return self.timeline.duration_s

    def seconds(self, t_us: int) -> float:
        return (t_us - self.timeline.capture_start_us) / SECOND


@dataclass(frozen=True)
class App:
    """A destination an app talks to: how often, how much it downloads per request."""

    domain: str
    weight: float
    median_down: int
    port: int = 443
    alpn: tuple[str, ...] = ("h2", "http/1.1")


def poisson(
    s: Stream, start_s: float, end_s: float, per_min: float, profile: Sequence[tuple[float, float]]
) -> list[float]:
    """Event times with rate ``per_min * level(profile, t)`` (thinning a homogeneous process)."""
    peak = max(v for _, v in profile) * per_min / 60
    times: list[float] = []
    t = start_s
    while peak > 0:
        t += s.rng.expovariate(peak)
        if t >= end_s:
            break
        if s.rng.random() * peak <= level(profile, t) * per_min / 60:
            times.append(t)
    return times


def app_sessions(
    s: Stream,
    ctx: Ctx,
    device: Device,
    apps: Sequence[App],
    start_s: float,
    end_s: float,
    per_min: float,
    profile: Sequence[tuple[float, float]],
) -> None:
    """Short TLS sessions to ``apps``, arriving at a rate that follows ``profile``."""
    rng = s.rng
    weights = [a.weight for a in apps]
    busy_until = 0
    for t_s in poisson(s, start_s, end_s, per_min, profile):
        app = rng.choices(apps, weights)[0]
        t_us = max(ctx.at(t_s), busy_until)
        exchanges = []
        for i in range(1 + min(4, int(rng.expovariate(0.8)))):
            think = rng.randint(0, 150 * MS) if i == 0 else rng.randint(200 * MS, 9 * SECOND)
            down = int(min(400_000, max(300, rng.lognormvariate(math.log(app.median_down), 0.9))))
            exchanges.append((think, rng.randint(250, 1800), down))
        close = rng.choices(("client", "server", "rst"), (6, 3, 1))[0]
        _, last = s.tls_session(
            t_us, device, app.domain, exchanges, port=app.port, alpn=app.alpn, close=close
        )
        if last >= ctx.end:
            break
        busy_until = t_us + rng.randint(50 * MS, 2 * SECOND)


def periodic(s: Stream, start_us: int, end_us: int, every_s: float, spread: float = 0.25) -> list[int]:
    times = []
    t = start_us + s.rng.randint(0, round(every_s * SECOND))
    while t < end_us:
        times.append(t)
        t += s.jitter(every_s * SECOND, spread)
    return times


def keepalive_conn(
    s: Stream,
    device: Device,
    domain: str,
    port: int,
    start_us: int,
    end_us: int,
    every_s: float,
    up: int,
    down: int,
    *,
    spread: float = 0.2,
    alpn: Sequence[str] = (),
    established: bool = False,
) -> TcpConn:
    """A long-lived TLS connection (push channel, MQTT, XMPP) with a small exchange every ~``every_s``.

    ``established``: the connection predates the capture (no handshake in the file).
    """
    rng = s.rng
    client = s.world.hosts[device.name]
    if established:
        server = s.world.remote(s.world.domains[domain].ipv4)
        conn = TcpConn(s, start_us, client, server, s.ephemeral(client), port)
        s.world.note_contact(client, server, start_us)
        conn.open = True
    else:
        conn, _ = s.tls_session(start_us, device, domain, [], port=port, alpn=alpn, close="keep")
    t = conn.t + rng.randint(round(every_s * SECOND * 0.3), round(every_s * SECOND))
    while t < end_us:
        conn.t = max(conn.t, t)
        conn.last[False] = conn.last[True] = t - 1
        conn.send(True, up, pr.app_data_head(rng, up, 64), snap=SNAP_BULK)
        conn.send(False, down, pr.app_data_head(rng, down, 64), snap=SNAP_BULK)
        conn.ack(True, rng.randint(0, 40 * MS))
        t += s.jitter(every_s * SECOND, spread)
    return conn


# ------------------------------------------------------------------------------------------------
# Benign behaviour, one function per device


def router_behaviour(ctx: Ctx, presence: dict[str, tuple[int, int]]) -> None:
    """IGMPv2 general queries (with report suppression) and the router refreshing ARP entries."""
    s = ctx.stream("router")
    rng = s.rng
    router = s.world.router
    groups = {
        "224.0.0.251": ("iphone", "android", "laptop", "tv", "printer", "nas"),
        "239.255.255.250": ("laptop", "tv", "nas", "camera"),
        "224.0.0.252": ("laptop",),  # LLMNR
    }
    t = ctx.at(37)
    while t < ctx.end:
        s.emit(
            t,
            pk.igmp_frame(
                pk.multicast_mac("224.0.0.1"),
                router.mac,
                router.ipb,
                pk.ip_bytes("224.0.0.1"),
                0x11,
                100,
                "0.0.0.0",
                s.ipid(router),
            ),
        )
        for group, members in groups.items():
            present = [m for m in members if presence[m][0] < t < presence[m][1]]
            if not present:
                continue
            delays = sorted((rng.randint(50 * MS, 10 * SECOND), m) for m in present)
            delay, member = delays[0]
            host = s.world.hosts[member]
            s.emit(
                t + delay,
                pk.igmp_frame(
                    pk.multicast_mac(group),
                    host.mac,
                    host.ipb,
                    pk.ip_bytes(group),
                    0x16,
                    0,
                    group,
                    s.ipid(host),
                ),
            )
        t += 125 * SECOND
    for name, (arrive, leave) in presence.items():
        if name == "router":
            continue
        host = s.world.hosts[name]
        for t in periodic(s, arrive + 20 * SECOND, min(leave, ctx.end), 270, 0.3):
            s.arp_exchange(t, router, host)


def nas_behaviour(ctx: Ctx) -> None:
    s = ctx.stream("nas")
    rng = s.rng
    dev = NAS
    host = s.world.hosts[dev.name]
    end = ctx.end
    lan.mdns_announce(s, ctx.at(41.3), dev, NAS_SERVICES)
    lan.dhcp_renew(s, ctx.at(783.2), dev)
    for t in periodic(s, ctx.at(5), end, 95, 0.4):
        lan.arp_refresh(s, t, dev)
    # ntpd against time.google.com, every 1024 s
    t = ctx.at(188.4)
    while t < end:
        ip, t2 = s.resolve(t, dev, "time.google.com")
        lan.ntp_exchange(s, t2, host, s.world.remote(ip))
        t += 1024 * SECOND
    # DDNS / external-address check every 10 minutes, update check at 08:05 and 08:35
    for t in periodic(s, ctx.at(30), end - 5 * SECOND, 600, 0.05):
        s.tls_session(
            t,
            dev,
            "checkip.synology.com",
            [(0, rng.randint(300, 500), rng.randint(600, 900))],
            close="server",
        )
    for at_s in (305.0, 2105.0):
        if ctx.at(at_s) < end:
            s.tls_session(ctx.at(at_s), dev, "global.download.synology.com", [(0, 420, 14_800)])
    # QuickConnect relay registration, long-lived
    keepalive_conn(s, dev, "global.quickconnect.to", 443, ctx.at(12), end, 300, 120, 90, established=True)
    # Re-announce mDNS at the half of the record TTL
    lan.mdns_announce(s, ctx.at(1801.7), dev, NAS_SERVICES, repeats=1)


def camera_behaviour(ctx: Ctx) -> None:
    """Steady low-bitrate upload to the Hik-Connect cloud, more when there is motion."""
    s = ctx.stream("camera")
    rng = s.rng
    dev = CAMERA
    host = s.world.hosts[dev.name]
    end = ctx.end
    lan.dhcp_renew(s, ctx.at(652.9), dev)
    for t in periodic(s, ctx.at(3), end, 80, 0.4):
        lan.arp_refresh(s, t, dev)
    for t in periodic(s, ctx.at(60), end, 600, 0.1):
        lan.ntp_exchange(s, t, host, s.world.router, stratum=3)
    keepalive_conn(s, dev, "litedev.hik-connect.com", 443, ctx.at(0.4), end, 60, 64, 48, established=True)
    # The video upload predates the capture: no handshake, just the stream.
    server = s.world.remote(s.world.domains["vtm-eu.hik-connect.com"].ipv4)
    conn = TcpConn(s, ctx.at(0.05), host, server, s.ephemeral(host), 443)
    s.world.note_contact(host, server, ctx.at(0.05))
    motion = ((0, 0.8), (300, 1.2), (900, 1.6), (1400, 0.9), (1900, 1.4), (2400, 0.7), (3000, 1.0))
    t = ctx.at(0.05)
    frame_no = 0
    while t < end:
        m = level(motion, ctx.seconds(t))
        size = 5_800 if frame_no % 20 == 0 else int(rng.lognormvariate(math.log(950 * m), 0.3))
        conn.t = max(conn.t, t)
        conn.last[False] = conn.last[True] = t - 1
        conn.send(True, size, pr.app_data_head(rng, size, 64), snap=SNAP_BULK, rate_bps=4e6, final_ack=True)
        frame_no += 1
        t += s.jitter(3 * SECOND, 0.1)


def iphone_behaviour(ctx: Ctx, arrive_s: float, leave_s: float) -> None:
    s = ctx.stream("iphone")
    dev = IPHONE
    host = s.world.hosts[dev.name]
    leave = ctx.at(leave_s)
    t = lan.dhcp_dora(s, ctx.at(arrive_s), dev)
    t = lan.join_arp(s, t, dev, probes=3)
    t = lan.mdns_announce(s, t + 40 * MS, dev, IPHONE_SERVICES)
    t = lan.mdns_ask(
        s,
        t + 300 * MS,
        dev,
        ["_airplay._tcp.local", "_raop._tcp.local"],
        [(TV, TV_SERVICES)] if ctx.at(ARRIVALS["tv"]) < t else [],
    )
    t = lan.http_get(
        s,
        t + 20 * MS,
        dev,
        "captive.apple.com",
        "/hotspot-detect.html",
        [("Accept", "*/*"), ("User-Agent", "CaptiveNetworkSupport-481.0.1 wispr"), ("Connection", "close")],
        pr.http_response(
            "200 OK",
            [("Content-Type", "text/html"), ("Server", "ATS/9.2.3")],
            b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>",
        ),
    )
    ip, t2 = s.resolve(t + 5 * MS, dev, "time.apple.com")
    lan.ntp_exchange(s, t2, host, s.world.remote(ip))
    keepalive_conn(s, dev, "courier.push.apple.com", 5223, t + 80 * MS, leave, 420, 53, 53, spread=0.5)
    s.tls_session(t + 400 * MS, dev, "gateway.icloud.com", [(0, 1200, 9_000), (2 * SECOND, 2400, 31_000)])
    for t in periodic(s, ctx.at(arrive_s + 60), leave, 110, 0.4):
        lan.arp_refresh(s, t, dev)
    # Renewal at T1
    if ctx.at(arrive_s + lan.LEASE_S / 2) < leave:
        lan.dhcp_renew(s, ctx.at(arrive_s + lan.LEASE_S / 2), dev)
    # The AirPlay picker opened now and then
    for t in periodic(s, ctx.at(arrive_s + 200), leave, 480, 0.6):
        lan.mdns_ask(s, t, dev, ["_airplay._tcp.local", "_raop._tcp.local"], [(TV, TV_SERVICES)])
    apps = (
        App("i.instagram.com", 3, 9_000),
        App("scontent.cdninstagram.com", 3, 25_000),
        App("g.whatsapp.net", 2, 2_500, port=443),
        App("gateway.icloud.com", 1, 6_000),
        App("api.apple-cloudkit.com", 1, 4_000),
        App("www.google.com", 1, 18_000),
        App("spclient.wg.spotify.com", 1, 12_000),
        App("weather-data.apple.com", 0.5, 7_000),
    )
    profile = ((0, 0.5), (600, 1.0), (1200, 1.4), (1500, 1.4), (2100, 0.8), (leave_s, 0.4))
    app_sessions(s, ctx, dev, apps, arrive_s + 20, leave_s, 0.7, profile)


def android_behaviour(ctx: Ctx, arrive_s: float) -> None:
    s = ctx.stream("android")
    dev = ANDROID
    host = s.world.hosts[dev.name]
    end = ctx.end
    t = lan.dhcp_dora(s, ctx.at(arrive_s), dev)
    t = lan.join_arp(s, t, dev, probes=1)
    ua = "Dalvik/2.1.0 (Linux; U; Android 14; SM-S911B Build/UP1A.231005.007)"
    t = lan.http_get(
        s,
        t + 30 * MS,
        dev,
        "connectivitycheck.gstatic.com",
        "/generate_204",
        [("User-Agent", ua), ("Connection", "Keep-Alive"), ("Accept-Encoding", "gzip")],
        pr.http_response("204 No Content", [("Date", pr.http_date(t))]),
    )
    s.tls_session(t + 10 * MS, dev, "www.google.com", [(0, 700, 1_200)], close="server")
    ip, t2 = s.resolve(t + 200 * MS, dev, "time.android.com")
    lan.ntp_exchange(s, t2, host, s.world.remote(ip))
    keepalive_conn(s, dev, "mtalk.google.com", 5228, t + 600 * MS, end, 540, 40, 40, spread=0.3)
    for t in periodic(s, ctx.at(arrive_s + 30), end, 100, 0.4):
        lan.arp_refresh(s, t, dev)
    if ctx.at(arrive_s + lan.LEASE_S / 2) < end:
        lan.dhcp_renew(s, ctx.at(arrive_s + lan.LEASE_S / 2), dev)
    for t in periodic(s, ctx.at(arrive_s + 120), end, 600, 0.6):
        lan.mdns_ask(s, t, dev, ["_googlecast._tcp.local"], [])
    apps = (
        App("www.youtube.com", 2, 25_000),
        App("i.ytimg.com", 2, 30_000),
        App("g.whatsapp.net", 3, 2_500),
        App("i.instagram.com", 2, 9_000),
        App("spclient.wg.spotify.com", 1, 10_000),
        App("play.googleapis.com", 1, 6_000),
        App("mail.google.com", 1, 8_000),
    )
    profile = ((0, 0.2), (900, 0.5), (1500, 1.2), (2200, 1.0), (2700, 0.8))
    app_sessions(s, ctx, dev, apps, arrive_s + 30, ctx.duration, 1.0, profile)


_WIN_UA = "Microsoft NCSI"


def laptop_behaviour(ctx: Ctx, arrive_s: float) -> None:
    s = ctx.stream("laptop")
    rng = s.rng
    dev = LAPTOP
    host = s.world.hosts[dev.name]
    end = ctx.end
    t = lan.dhcp_dora(s, ctx.at(arrive_s), dev)
    t = lan.join_arp(s, t, dev, probes=1)
    # NetBIOS name registration, three broadcasts per name
    bcast = "192.168.1.255"
    txid = rng.getrandbits(16)
    for name, suffix, group in (
        ("LAPTOP-J4R8TQ2N", 0x00, False),
        ("WORKGROUP", 0x00, True),
        ("LAPTOP-J4R8TQ2N", 0x20, False),
    ):
        for attempt in range(3):
            payload = pr.nbns_registration(txid, name, suffix, dev.ip, group)
            s.udp(
                t + attempt * 750 * MS, host, None, 137, 137, payload, dst_ip=bcast, eth_dst=pk.BROADCAST_MAC
            )
        txid = (txid + 1) & 0xFFFF
        t += rng.randint(5 * MS, 30 * MS)
    t += 2300 * MS
    # SSDP discovery; the TV answers
    sport = s.ephemeral(host)
    for i in range(2):
        msearch = pr.ssdp_msearch(
            "urn:dial-multiscreen-org:service:dial:1", 1, "Microsoft-Windows/10.0 UPnP/1.0"
        )
        s.udp(
            t + i * 120 * MS,
            host,
            None,
            sport,
            1900,
            msearch,
            dst_ip=SSDP_GROUP,
            eth_dst=pk.multicast_mac(SSDP_GROUP),
            ttl=2,
        )
    tv = s.world.hosts[TV.name]
    resp = pr.ssdp_search_response(
        "http://192.168.1.50:7678/nservice/",
        "urn:dial-multiscreen-org:service:dial:1",
        "uuid:0f3e52a1-00aa-1000-b7c2-8c79f5a23d6e::urn:dial-multiscreen-org:service:dial:1",
        "SHP, UPnP/1.0, Samsung UPnP SDK/1.0",
        pr.http_date(t),
    )
    s.udp(t + rng.randint(30 * MS, 600 * MS), tv, host, 1900, sport, resp)
    t += 800 * MS
    # Network Connectivity Status Indicator
    t = lan.http_get(
        s,
        t,
        dev,
        "www.msftconnecttest.com",
        "/connecttest.txt",
        [("Connection", "Close"), ("User-Agent", _WIN_UA)],
        pr.http_response(
            "200 OK",
            [("Cache-Control", "max-age=30, must-revalidate"), ("Content-Type", "text/plain")],
            b"Microsoft Connect Test",
        ),
    )
    ip, t2 = s.resolve(t + 900 * MS, dev, "time.windows.com", ("A",))
    lan.ntp_exchange(s, t2, host, s.world.remote(ip), version=3)
    s.tls_session(t + 1500 * MS, dev, "settings-win.data.microsoft.com", [(0, 1900, 5_400)])
    s.tls_session(
        t + 2100 * MS, dev, "login.microsoftonline.com", [(0, 2300, 9_800), (400 * MS, 1600, 4_100)]
    )
    keepalive_conn(s, dev, "outlook.office365.com", 443, t + 3 * SECOND, end, 240, 180, 420, spread=0.3)
    keepalive_conn(s, dev, "teams.microsoft.com", 443, t + 4 * SECOND, end, 30, 90, 90, spread=0.15)
    for t in periodic(s, ctx.at(arrive_s + 60), end, 120, 0.5):
        lan.arp_refresh(s, t, dev)
    if ctx.at(arrive_s + lan.LEASE_S / 2) < end:
        lan.dhcp_renew(s, ctx.at(arrive_s + lan.LEASE_S / 2), dev)
    # File History backup to the NAS over SMB2, during learning and again later
    backup_at = [(725.0, 1_300_000), (2380.0, 500_000)]
    for at_s, size in backup_at:
        if ctx.at(at_s) < end - 60 * SECOND:
            smb_backup(s, ctx.at(at_s), size)
    # A print job (IPP) during learning and another one later
    for at_s, size in ((875.0, 180_000), (2525.0, 90_000)):
        if ctx.at(at_s) < end - 30 * SECOND:
            ipp_print(s, ctx.at(at_s), size)
    apps = (
        App("outlook.office365.com", 2, 15_000),
        App("github.com", 2, 30_000),
        App("stackoverflow.com", 1, 25_000),
        App("www.google.com", 2, 15_000),
        App("www.heise.de", 1, 40_000),
        App("teams.microsoft.com", 1, 10_000),
        App("login.microsoftonline.com", 0.5, 6_000),
    )
    profile = ((0, 0.6), (900, 1.0), (1500, 1.1), (2100, 1.3), (2700, 1.2))
    app_sessions(s, ctx, dev, apps, arrive_s + 20, ctx.duration, 0.7, profile)


# SMB2 StructureSize of each command's request and response body (MS-SMB2 section 2.2)
_SMB2_SIZES = {
    0: (36, 65),
    1: (25, 9),
    2: (4, 4),
    3: (9, 16),
    4: (4, 4),
    5: (57, 89),
    6: (24, 60),
    9: (49, 17),
}


def _smb2(
    command: int, msg_id: int, session: int, tree: int, response: bool, body_len: int, file_offset: int = 0
) -> bytes:
    """NetBIOS session header + SMB2 header + the body's fixed part (zeros past StructureSize)."""
    flags = 0x1 if response else 0
    header = (
        b"\xfeSMB"
        + struct.pack("<HHIHHII", 64, 1, 0, command, 32, flags, 0)
        + struct.pack("<QIIQ", msg_id, 0xFEFF, tree, session)
        + b"\x00" * 16
    )
    size = _SMB2_SIZES[command][1 if response else 0]
    if command == 9 and not response:
        # WRITE request: data follows the 48-byte fixed part at offset 64 + 48.
        body = struct.pack("<HHIQ", size, 0x70, body_len - 48, file_offset) + b"\x00" * 32
    else:
        body = struct.pack("<H", size).ljust(body_len, b"\x00")
    return struct.pack(">I", len(header) + body_len) + header + body


def smb_backup(s: Stream, t_us: int, size: int) -> None:
    """Laptop -> NAS: NetBIOS lookup, SMB2 negotiate/session/tree/create, 1 MiB writes, close."""
    rng = s.rng
    laptop = s.world.hosts[LAPTOP.name]
    nas = s.world.hosts[NAS.name]
    txid = rng.getrandbits(16)
    s.udp(
        t_us,
        laptop,
        None,
        137,
        137,
        pr.nbns_query(txid, "DISKSTATION", 0x20),
        dst_ip="192.168.1.255",
        eth_dst=pk.BROADCAST_MAC,
    )
    s.udp(
        t_us + rng.randint(1 * MS, 4 * MS),
        nas,
        laptop,
        137,
        137,
        pr.nbns_positive_response(txid, "DISKSTATION", 0x20, NAS.ip),
    )
    conn = s.connect(t_us + 6 * MS, laptop, nas, 445)
    session = rng.getrandbits(64)
    msg = 0
    for command, up, down in ((0, 250, 560), (1, 220, 330), (1, 650, 280), (3, 180, 90), (5, 420, 250)):
        head = _smb2(command, msg, session if command else 0, 1 if command >= 5 else 0, False, up - 68)
        conn.send(True, up, head, think_us=rng.randint(200, 3 * MS))
        back = _smb2(command, msg, session if command else 0, 1 if command >= 5 else 0, True, down - 68)
        conn.send(False, down, back, think_us=rng.randint(200, 2 * MS))
        msg += 1
    remaining = size
    while remaining > 0:
        chunk = min(1_048_576, remaining)
        remaining -= chunk
        head = _smb2(9, msg, session, 1, False, chunk + 48, size - remaining - chunk)
        conn.send(True, chunk + 116, head, think_us=rng.randint(300, 5 * MS), snap=SNAP_BULK, rate_bps=60e6)
        conn.send(False, 84, _smb2(9, msg, session, 1, True, 16), think_us=rng.randint(500, 4 * MS))
        msg += 1
    for command in (6, 4, 2):  # close, tree disconnect, logoff
        conn.send(
            True, 110, _smb2(command, msg, session, 1, False, 42), think_us=rng.randint(1 * MS, 30 * MS)
        )
        conn.send(False, 128, _smb2(command, msg, session, 1, True, 60))
        msg += 1
    conn.close(True, think_us=rng.randint(2 * SECOND, 8 * SECOND))


def ipp_print(s: Stream, t_us: int, size: int) -> None:
    """Laptop finds the printer over mDNS and sends a job with IPP (HTTP POST to port 631)."""
    rng = s.rng
    t_us = lan.mdns_ask(s, t_us, LAPTOP, ["_ipp._tcp.local"], [(PRINTER, PRINTER_SERVICES)])
    laptop = s.world.hosts[LAPTOP.name]
    printer = s.world.hosts[PRINTER.name]
    conn = s.connect(t_us + 30 * MS, laptop, printer, 631)
    job = _ipp_request(rng.randint(1, 0x7FFF))
    headers = [
        ("Content-Type", "application/ipp"),
        ("User-Agent", "Microsoft-Windows/10.0 IPP/2.0"),
        ("Content-Length", str(len(job) + size)),
        ("Expect", "100-continue"),
    ]
    req = pr.http_request("POST", "/ipp/print", "HPE4A7C1.local:631", headers)
    conn.send(True, len(req), req)
    cont = b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.send(False, len(cont), cont)
    conn.send(True, len(job) + size, job + b"%PDF-1.7\n", snap=SNAP_BULK, rate_bps=30e6)
    result = _ipp_response(rng.randint(20, 400))
    body = pr.http_response(
        "200 OK",
        [("Content-Type", "application/ipp"), ("Server", "HP HTTP Server; HP OfficeJet Pro 9010 series")],
        result,
    )
    conn.send(False, len(body), body, think_us=rng.randint(80 * MS, 300 * MS))
    conn.close(True, think_us=rng.randint(100 * MS, 1 * SECOND))


def _ipp_attr(tag: int, name: str, value: bytes) -> bytes:
    raw = name.encode()
    return struct.pack("!BH", tag, len(raw)) + raw + struct.pack("!H", len(value)) + value


def _ipp_request(request_id: int) -> bytes:
    """IPP/2.0 Print-Job operation attributes (RFC 8011), before the document data."""
    return (
        struct.pack("!BBHI", 2, 0, 0x0002, request_id)
        + b"\x01"
        + _ipp_attr(0x47, "attributes-charset", b"utf-8")
        + _ipp_attr(0x48, "attributes-natural-language", b"en-us")
        + _ipp_attr(0x45, "printer-uri", b"ipp://HPE4A7C1.local:631/ipp/print")
        + _ipp_attr(0x42, "requesting-user-name", b"anna")
        + _ipp_attr(0x42, "job-name", b"Quarterly report.pdf")
        + _ipp_attr(0x49, "document-format", b"application/pdf")
        + b"\x03"
    )


def _ipp_response(job_id: int) -> bytes:
    return (
        struct.pack("!BBHI", 2, 0, 0x0000, 1)
        + b"\x01"
        + _ipp_attr(0x47, "attributes-charset", b"utf-8")
        + _ipp_attr(0x48, "attributes-natural-language", b"en-us")
        + b"\x02"
        + _ipp_attr(0x45, "job-uri", f"ipp://HPE4A7C1.local:631/ipp/print/job-{job_id}".encode())
        + _ipp_attr(0x21, "job-id", struct.pack("!I", job_id))
        + _ipp_attr(0x23, "job-state", struct.pack("!I", 3))
        + b"\x03"
    )


TV_OTN_XML = b"".join(
    (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<OTN version="2.0">\n',
        b"  <Model>QE55Q70BATXXU</Model>\n  <Platform>T-KSU2EWWC</Platform>\n",
        b"  <Current>1420.2</Current>\n  <Latest>1420.2</Latest>\n  <UpdateRequired>false</UpdateRequired>\n",
        *(
            f'  <Component name="{name}" version="{ver}" size="{size}"/>\n'.encode()
            for name, ver, size in (
                ("kernel", "5.4.147", 9_871_360),
                ("rootfs", "1420.2", 612_368_384),
                ("tztv-apps", "1420.2", 148_021_248),
                ("micom", "T-KSU2EWW-0047", 262_144),
                ("bt-fw", "2.11.4", 524_288),
                ("wifi-fw", "9.10.95", 1_179_648),
                ("panel-data", "Q70B-55-0x0F", 65_536),
                ("acr-engine", "4.3.12", 3_145_728),
            )
        ),
        b"  <CheckInterval>86400</CheckInterval>\n</OTN>\n",
    )
)

PRINTER_FW_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<FirmwareUpdate xmlns="http://www.hp.com/schemas/fwupdate">\n'
    b"  <Product>1KR45A</Product>\n  <InstalledVersion>TWDBP1N2103B</InstalledVersion>\n"
    b"  <AvailableVersion>TWDBP1N2103B</AvailableVersion>\n  <Status>UpToDate</Status>\n"
    b"  <NextCheckSeconds>86400</NextCheckSeconds>\n</FirmwareUpdate>\n"
)


def tv_behaviour(ctx: Ctx, on_s: float) -> None:
    s = ctx.stream("tv")
    rng = s.rng
    dev = TV
    host = s.world.hosts[dev.name]
    end = ctx.end
    t = lan.dhcp_init_reboot(s, ctx.at(on_s), dev)
    t = lan.join_arp(s, t, dev, probes=1)
    t = lan.mdns_announce(s, t + 500 * MS, dev, TV_SERVICES)
    uuid = "uuid:0f3e52a1-00aa-1000-b7c2-8c79f5a23d6e"
    server = "SHP, UPnP/1.0, Samsung UPnP SDK/1.0"
    nts = (
        ("upnp:rootdevice", f"{uuid}::upnp:rootdevice", "http://192.168.1.50:9197/dmr"),
        (uuid, uuid, "http://192.168.1.50:9197/dmr"),
        (
            "urn:schemas-upnp-org:device:MediaRenderer:1",
            f"{uuid}::urn:schemas-upnp-org:device:MediaRenderer:1",
            "http://192.168.1.50:9197/dmr",
        ),
        (
            "urn:dial-multiscreen-org:service:dial:1",
            f"{uuid}::urn:dial-multiscreen-org:service:dial:1",
            "http://192.168.1.50:7678/nservice/",
        ),
        (
            "urn:samsung.com:device:RemoteControlReceiver:1",
            f"{uuid}::urn:samsung.com:device:RemoteControlReceiver:1",
            "http://192.168.1.50:7676/rcr/",
        ),
    )
    for tb in periodic(s, t, end, 180, 0.1):
        for i, (nt, usn, loc) in enumerate(nts):
            msg = pr.ssdp_notify(loc, nt, usn, server)
            s.udp(
                tb + i * rng.randint(1 * MS, 6 * MS),
                host,
                None,
                1900,
                1900,
                msg,
                dst_ip=SSDP_GROUP,
                eth_dst=pk.multicast_mac(SSDP_GROUP),
                ttl=4,
            )
    lan.ntp_exchange(s, t + 2 * SECOND, host, s.world.router, stratum=3)
    for tn in periodic(s, t + 900 * SECOND, end, 900, 0.1):
        lan.ntp_exchange(s, tn, host, s.world.router, stratum=3)
    ua = (
        "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.5) AppleWebKit/537.36 (KHTML, like Gecko) "
        "85.0.4183.93/6.5 TV Safari/537.36"
    )
    lan.http_get(
        s,
        t + 4 * SECOND,
        dev,
        "www.samsungotn.net",
        "/otnprd/otn/T-KSU2EWWC/1420.2/QE55Q70BAT.xml",
        [("User-Agent", ua), ("Accept", "*/*")],
        pr.http_response(
            "200 OK", [("Content-Type", "text/xml"), ("Server", "AkamaiNetStorage")], TV_OTN_XML
        ),
    )
    s.tls_session(t + 6 * SECOND, dev, "osb-eu.samsungqbe.com", [(0, 900, 3_200)])
    for tl in periodic(s, t + 30 * SECOND, end, 300, 0.3):
        s.tls_session(
            tl, dev, "log-ingestion-eu.samsungacr.com", [(0, rng.randint(900, 3000), 400)], close="server"
        )
    for for_at in periodic(s, ctx.at(on_s + 400), end, 900, 0.3):
        lan.arp_refresh(s, for_at, dev)
    # Morning news on YouTube, then again later
    for start_s, stop_s in ((on_s + 40, 900.0), (1900.0, ctx.duration - 330)):
        if ctx.at(start_s) < end - 60 * SECOND:
            youtube_session(s, ctx, ctx.at(start_s), min(ctx.at(stop_s), end - 10 * SECOND))


def youtube_session(s: Stream, ctx: Ctx, start: int, stop: int) -> None:
    rng = s.rng
    dev = TV
    _, t = s.tls_session(
        start, dev, "www.youtube.com", [(0, 1500, 60_000), (300 * MS, 900, 25_000)], close="keep"
    )
    s.tls_session(start + 200 * MS, dev, "i.ytimg.com", [(0, 700, 48_000), (100 * MS, 700, 52_000)])
    conn, t = s.tls_session(t + 400 * MS, dev, "rr4---sn-4g5ednsz.googlevideo.com", [], close="keep")
    # Buffer ahead at start-up, then one media segment every few seconds.
    next_t = t
    first = True
    while next_t < stop:
        size = rng.randint(120_000, 160_000) if first else int(rng.lognormvariate(math.log(28_000), 0.3))
        conn.send(
            True,
            rng.randint(900, 1400),
            pr.app_data_head(rng, 1200),
            think_us=max(0, next_t - conn.t),
            snap=SNAP_BULK,
        )
        conn.send(False, size, pr.app_data_head(rng, size), snap=SNAP_BULK, rate_bps=45e6)
        first = False
        next_t = conn.t + s.jitter(10 * SECOND, 0.35)
    conn.close(True, think_us=rng.randint(200 * MS, 2 * SECOND))


def printer_behaviour(ctx: Ctx, wake_s: float) -> None:
    s = ctx.stream("printer")
    dev = PRINTER
    host = s.world.hosts[dev.name]
    end = ctx.end
    t = lan.dhcp_dora(s, ctx.at(wake_s), dev)
    t = lan.join_arp(s, t, dev, probes=2)
    t = lan.mdns_announce(s, t + 200 * MS, dev, PRINTER_SERVICES, repeats=3)
    lan.ntp_exchange(s, t + 1 * SECOND, host, s.world.router, stratum=3)
    lan.http_get(
        s,
        t + 3 * SECOND,
        dev,
        "h10089.www1.hp.com",
        "/cgi-bin/hpdownload/fwupdate/check?product=1KR45A&fw=TWDBP1N2103B",
        [("User-Agent", "HP-ChaiSOE/1.0"), ("Accept", "*/*")],
        pr.http_response("200 OK", [("Content-Type", "application/xml")], PRINTER_FW_XML),
    )
    keepalive_conn(s, dev, "xmpp009.hpeprint.com", 5223, t + 5 * SECOND, end, 300, 96, 80, spread=0.05)
    for tp in periodic(s, t + 60 * SECOND, end, 180, 0.4):
        lan.arp_refresh(s, tp, dev)
    lan.mdns_announce(s, ctx.at(wake_s + 1800), dev, PRINTER_SERVICES[:1], repeats=1)


def plug_behaviour(ctx: Ctx, join_s: float) -> None:
    """ESP32 smart plug: Wi-Fi rejoin, cloud config over HTTPS, MQTT over TLS with a 60 s ping."""
    s = ctx.stream("plug")
    rng = s.rng
    dev = PLUG
    host = s.world.hosts[dev.name]
    end = ctx.end
    t = lan.dhcp_dora(s, ctx.at(join_s), dev)
    # lwIP announces with gratuitous ARP only
    s.emit(t + 2 * MS, pk.arp(pk.BROADCAST_MAC, host.mac, 1, host.mac, dev.ip, pk.ZERO_MAC, dev.ip))
    t = s.arp_exchange(t + 30 * MS, host, s.world.router)
    ip, t = s.resolve(t + 50 * MS, dev, "pool.ntp.org")
    t = lan.ntp_exchange(s, t, host, s.world.remote(ip))
    _, t = s.tls_session(t + 300 * MS, dev, "a1.tuyaeu.com", [(0, 620, 1_900), (400 * MS, 380, 900)], alpn=())
    for tp in periodic(s, t + 90 * SECOND, end, 300, 0.3):
        lan.arp_refresh(s, tp, dev)
    # MQTT over TLS: PINGREQ/PINGRESP every 60 s (31-byte TLS 1.2 records), a state report every
    # ~5 minutes, and the kettle switched from the phone app at breakfast (command down, state up).
    conn, t = s.tls_session(
        t + 200 * MS, dev, "m1.tuyaeu.com", [(0, 96, 37)], port=8883, alpn=(), close="keep"
    )
    events: list[tuple[int, str]] = [(tp, "ping") for tp in periodic(s, t, end, 60, 0.01)]
    events += [(tp, "report") for tp in periodic(s, t + 20 * SECOND, end, 300, 0.2)]
    events += [(ctx.at(at_s), "switch") for at_s in (545.0, 1010.0, 2290.0) if ctx.at(at_s) < end]
    for when, what in sorted(events):
        conn.t = max(conn.t, when)
        conn.last[False] = conn.last[True] = max(conn.last[True], when - 1)
        if what == "ping":
            conn.send(True, 31, pr.app_data_head(rng, 31, 31))
            conn.send(False, 31, pr.app_data_head(rng, 31, 31))
        elif what == "report":
            size = rng.randint(140, 190)
            conn.send(True, size, pr.app_data_head(rng, size, size))
            conn.send(False, 35, pr.app_data_head(rng, 35, 35))
        else:
            conn.last[True] = conn.t
            conn.send(False, 109, pr.app_data_head(rng, 109, 109))
            conn.send(True, 35, pr.app_data_head(rng, 35, 35))
            conn.send(True, 173, pr.app_data_head(rng, 173, 173), think_us=rng.randint(30 * MS, 120 * MS))
            conn.send(False, 35, pr.app_data_head(rng, 35, 35))
        conn.ack(True, rng.randint(0, 20 * MS))


def ssh_exchange(s: Stream, conn: TcpConn, client_banner: bytes, attempts: int) -> None:
    rng = s.rng
    server_banner = b"SSH-2.0-OpenSSH_8.2p1\r\n"
    conn.send(False, len(server_banner), server_banner, think_us=rng.randint(2 * MS, 8 * MS))
    conn.send(True, len(client_banner), client_banner)
    kex = pr.ssh_kexinit(
        rng,
        ["curve25519-sha256", "ecdh-sha2-nistp256", "diffie-hellman-group14-sha1"],
        ["ssh-rsa", "ecdsa-sha2-nistp256"],
        ["aes128-ctr", "aes256-ctr"],
    )
    conn.send(True, len(kex), kex)
    skex = pr.ssh_kexinit(
        rng,
        [
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
            "diffie-hellman-group16-sha512",
        ],
        ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ecdsa-sha2-nistp256", "ssh-ed25519"],
        ["chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-gcm@openssh.com"],
    )
    conn.send(False, len(skex), skex)
    conn.send(True, 48, b"\x00\x00\x00\x2c\x06\x1e\x00\x00\x00\x20" + rng.randbytes(38))
    conn.send(False, 596, b"\x00\x00\x02\x4c\x0a\x1f" + rng.randbytes(58), snap=SNAP_HANDSHAKE)
    conn.send(True, 16, b"\x00\x00\x00\x0c\x0a\x15" + rng.randbytes(10))
    for _ in range(attempts):
        conn.send(True, rng.choice((84, 100, 116)), rng.randbytes(24), snap=SNAP_BULK)
        conn.send(False, 52, rng.randbytes(52), think_us=rng.randint(600 * MS, 2200 * MS))


# ------------------------------------------------------------------------------------------------
# Incidents


def incident_geo(ctx: Ctx, plan: PlannedIncident, start: int, length_us: int) -> Incident:
    """The TV starts streaming from a server in a country nothing on the LAN talked to before."""
    s = ctx.stream(plan.tag, plan.tag)
    rng = s.rng
    dom = DOMAINS["edge3.tvbox-mirror.ru"]
    before = sorted(c for c, first in ctx.world.contacts.get(TV.name, {}).items() if first < start)
    conn, t = s.tls_session(start, TV, dom.name, [(0, 1100, 4_800)], close="keep", alpn=("http/1.1",))
    stop = start + length_us
    chunks = 0
    while t < stop:
        size = int(rng.lognormvariate(math.log(30_000), 0.3))
        conn.send(
            True,
            rng.randint(350, 600),
            pr.app_data_head(rng, 500),
            think_us=rng.randint(3 * SECOND, 7 * SECOND),
            snap=SNAP_BULK,
        )
        conn.send(False, size, pr.app_data_head(rng, size), snap=SNAP_BULK, rate_bps=12e6)
        chunks += 1
        t = conn.t
    conn.close(True, think_us=rng.randint(1 * SECOND, 3 * SECOND))
    return Incident(
        plan.tag,
        plan.kind,
        TV,
        "The smart TV (a sideloaded IPTV app) streams from edge3.tvbox-mirror.ru in Russia; "
        f"before this the TV only talked to {', '.join(before)}.",
        peer=dom.ipv4,
        peer_ip=dom.ipv4,
        peer_domain=dom.name,
        peer_country=dom.country,
        details={
            "new_country": dom.country,
            "previous_countries": before,
            "port": 443,
            "segments_fetched": chunks,
        },
    )


def incident_beacon(ctx: Ctx, plan: PlannedIncident, start: int, length_us: int) -> Incident:
    """The printer phones home: a fresh TLS connection every 60 s (small jitter), tiny payloads."""
    s = ctx.stream(plan.tag, plan.tag)
    rng = s.rng
    dom = DOMAINS["cdn-sync.printhub-update.com"]
    t = start
    starts: list[float] = []
    while t < start + length_us:
        starts.append(t / SECOND)
        s.tls_session(
            t,
            PRINTER,
            dom.name,
            [(rng.randint(1 * MS, 5 * MS), rng.randint(290, 330), rng.randint(180, 260))],
            close="client",
            linger_us=rng.randint(20 * MS, 80 * MS),
            alpn=("http/1.1",),
        )
        t += round(rng.gauss(60.0, 1.2) * SECOND)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    return Incident(
        plan.tag,
        plan.kind,
        PRINTER,
        "The printer opens a new TLS connection to cdn-sync.printhub-update.com every 60 s "
        "(jitter about 1 s) and exchanges a few hundred bytes each time: command-and-control beaconing.",
        peer=dom.ipv4,
        peer_ip=dom.ipv4,
        peer_domain=dom.name,
        peer_country=dom.country,
        details={
            "port": 443,
            "connections": len(starts),
            "interval_s": round(sum(gaps) / len(gaps), 3) if gaps else None,
            "interval_min_s": round(min(gaps), 3) if gaps else None,
            "interval_max_s": round(max(gaps), 3) if gaps else None,
        },
    )


NAS_OPEN_PORTS = (22, 80, 139, 443, 445, 548, 5000, 5001)
ROUTER_OPEN_PORTS = (53, 80, 443)
_COMMON_PORTS = (
    1, 7, 9, 13, 21, 22, 23, 25, 26, 37, 53, 79, 80, 81, 88, 106, 110, 111, 113, 119, 135, 139, 143, 144,
    179, 199, 389, 427, 443, 444, 445, 465, 513, 514, 515, 543, 544, 548, 554, 587, 631, 646, 873, 990,
    993, 995, 1025, 1026, 1027, 1028, 1029, 1110, 1433, 1720, 1723, 1755, 1900, 2000, 2001, 2049, 2121,
    2323, 2717, 3000, 3128, 3306, 3389, 3986, 4899, 5000, 5001, 5009, 5051, 5060, 5101, 5190, 5357, 5432,
    5631, 5666, 5800, 5900, 6000, 6001, 6646, 7070, 8000, 8008, 8009, 8080, 8081, 8443, 8888, 9100, 9999,
    10000, 32768, 49152, 49153, 49154, 49155, 49156, 49157,
)  # fmt: skip


def _syn_probe(s: Stream, t: int, scanner: Host, target: Host, dport: int, open_ports: Sequence[int]) -> None:
    rng = s.rng
    sport = rng.randint(40000, 60000)
    seq = rng.getrandbits(32)
    s.tcp(
        t,
        scanner,
        target,
        sport,
        dport,
        seq,
        0,
        SYN,
        window=rng.choice((1024, 2048, 4096)),
        options=pk.tcp_options("lwip", 1460),
    )
    t2 = t + rng.randint(300, 2500)
    if dport in open_ports:
        s.tcp(
            t2,
            target,
            scanner,
            dport,
            sport,
            rng.getrandbits(32),
            seq + 1,
            SYN | ACK,
            options=pk.tcp_options("synack"),
            window=64240,
        )
        s.tcp(t2 + rng.randint(200, 900), scanner, target, sport, dport, seq + 1, 0, RST, window=0)
    else:
        s.tcp(t2, target, scanner, dport, sport, 0, seq + 1, RST | ACK, window=0)


def incident_scan(ctx: Ctx, plan: PlannedIncident, start: int, length_us: int) -> Incident:
    """The compromised plug ARP-sweeps the /24, probes telnet on every live host, then SYN-scans the NAS."""
    s = ctx.stream(plan.tag, plan.tag)
    rng = s.rng
    scanner = s.world.hosts[PLUG.name]
    live = {h.ip: h for name, h in s.world.hosts.items() if name != PLUG.name}
    t = start
    for last in range(1, 255):
        ip = f"192.168.1.{last}"
        if ip == PLUG.ip:
            continue
        s.arp_request(t, scanner, ip)
        if ip in live:
            s.arp_reply(t + rng.randint(1 * MS, 9 * MS), live[ip], scanner)
        t += rng.randint(8 * MS, 22 * MS)
    t += 400 * MS
    hosts_probed = []
    for ip, target in sorted(live.items(), key=lambda kv: pk.ip_bytes(kv[0])):
        open_ports = ROUTER_OPEN_PORTS if ip == ROUTER.ip else NAS_OPEN_PORTS if ip == NAS.ip else ()
        for port in (23, 2323):
            _syn_probe(s, t, scanner, target, port, open_ports)
            t += rng.randint(15 * MS, 60 * MS)
        hosts_probed.append(ip)
    t += 2 * SECOND
    nas = s.world.hosts[NAS.name]
    extra = rng.sample(range(1, 10000), 420)
    ports = sorted(set(_COMMON_PORTS) | set(extra))
    rng.shuffle(ports)
    ports = ports[:450]
    remaining = start + length_us - t
    pace = max(5 * MS, remaining // max(1, len(ports)))
    for port in ports:
        _syn_probe(s, t, scanner, nas, port, NAS_OPEN_PORTS)
        t += rng.randint(pace // 2, pace * 3 // 2)
    return Incident(
        plan.tag,
        plan.kind,
        PLUG,
        "The compromised smart plug ARP-sweeps 192.168.1.0/24, probes telnet (23, 2323) on every live host, "
        f"then SYN-scans {len(ports)} TCP ports on the NAS; closed ports answer with RST.",
        peer=NAS.ip,
        peer_ip=NAS.ip,
        details={
            "arp_sweep": "192.168.1.1-254",
            "telnet_probed_hosts": hosts_probed,
            "target": NAS.ip,
            "ports_scanned": len(ports),
            "open_ports_found": sorted(p for p in ports if p in NAS_OPEN_PORTS),
        },
    )


def incident_bruteforce(ctx: Ctx, plan: PlannedIncident, start: int, length_us: int) -> Incident:
    """The plug hammers the NAS's SSH with short password-guessing connections."""
    s = ctx.stream(plan.tag, plan.tag)
    rng = s.rng
    client = s.world.hosts[PLUG.name]
    nas = s.world.hosts[NAS.name]
    t = start
    attempts = 0
    reset = 0
    while t < start + length_us:
        conn = TcpConn(s, t, client, nas, rng.randint(49152, 65535), 22)
        conn.handshake()
        if rng.random() < 0.15:
            # sshd's MaxStartups throttling drops the connection straight away.
            conn.close(False, think_us=rng.randint(1 * MS, 4 * MS), rst=True)
            reset += 1
        else:
            ssh_exchange(s, conn, b"SSH-2.0-Go\r\n", rng.randint(1, 3))
            conn.close(False, think_us=rng.randint(5 * MS, 30 * MS))
        attempts += 1
        t = conn.t + rng.randint(150 * MS, 900 * MS)
    return Incident(
        plan.tag,
        plan.kind,
        PLUG,
        f"The compromised smart plug opens {attempts} short SSH connections to the NAS (port 22), each a key "
        "exchange and a few password tries ended by the server (FIN, or RST when sshd throttles).",
        peer=NAS.ip,
        peer_ip=NAS.ip,
        details={
            "port": 22,
            "connections": attempts,
            "reset_by_server": reset,
            "client_banner": "SSH-2.0-Go",
        },
    )


def incident_exfil(ctx: Ctx, plan: PlannedIncident, start: int, length_us: int) -> Incident:
    """The camera uploads ~3 MB to a host it never used, in bursts over about 90 s."""
    s = ctx.stream(plan.tag, plan.tag)
    rng = s.rng
    dom = DOMAINS["upload.cloudbox-transfer.net"]
    conn, t = s.tls_session(start, CAMERA, dom.name, [(0, 800, 300)], close="keep", alpn=())
    stop = start + length_us
    total = 0
    while t < stop:
        part = rng.randint(55_000, 80_000)
        conn.send(
            True,
            part,
            pr.app_data_head(rng, part),
            think_us=rng.randint(1500 * MS, 3000 * MS),
            snap=SNAP_BULK,
            rate_bps=6e6,
            ack_every=4,
        )
        total += part
        t = conn.t
    conn.send(False, 120, pr.app_data_head(rng, 120))
    conn.close(True, think_us=rng.randint(200 * MS, 800 * MS))
    return Incident(
        plan.tag,
        plan.kind,
        CAMERA,
        f"The camera uploads {total / 1e6:.1f} MB in about {length_us // SECOND} s to "
        "upload.cloudbox-transfer.net, a peer it never used; its normal upload is a few kB/s "
        "to the Hik-Connect cloud.",
        peer=dom.ipv4,
        peer_ip=dom.ipv4,
        peer_domain=dom.name,
        peer_country=dom.country,
        details={"direction": "upload", "payload_bytes": total, "port": 443},
    )


_B32 = string.ascii_lowercase + "234567"


def incident_dns_tunnel(ctx: Ctx, plan: PlannedIncident, start: int, length_us: int) -> Incident:
    """The laptop tunnels data out through the router's resolver in long random-looking names."""
    s = ctx.stream(plan.tag, plan.tag)
    rng = s.rng
    laptop = s.world.hosts[LAPTOP.name]
    router = s.world.router
    session = "".join(rng.choice(_B32) for _ in range(6))
    t = start
    seq = 0
    names: list[str] = []
    qtype_counts = {"TXT": 0, "A": 0}
    while t < start + length_us:
        data1 = "".join(rng.choice(_B32) for _ in range(rng.randint(52, 63)))
        data2 = "".join(rng.choice(_B32) for _ in range(rng.randint(31, 48)))
        name = f"{data1}.{data2}.{seq:04x}.{session}.{DNS_TUNNEL_DOMAIN}"
        qtype = pr.TXT if rng.random() < 0.85 else pr.A
        qtype_counts["TXT" if qtype == pr.TXT else "A"] += 1
        txid = rng.getrandbits(16)
        sport = s.ephemeral(laptop)
        s.udp(
            t,
            laptop,
            router,
            sport,
            53,
            pr.dns_message(txid, pr.DNS_QUERY_FLAGS, [(name, qtype, pr.CLASS_IN)]),
        )
        if qtype == pr.TXT:
            reply_txt = "".join(
                rng.choice(string.ascii_letters + string.digits + "+/") for _ in range(rng.randint(24, 180))
            )
            answer = pr.RR(name, pr.TXT, (reply_txt.encode(),), 0)
        else:
            answer = pr.RR(
                name, pr.A, f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", 0
            )
        reply = pr.dns_message(txid, pr.DNS_RESPONSE_FLAGS, [(name, qtype, pr.CLASS_IN)], answers=[answer])
        s.udp(t + rng.randint(35 * MS, 140 * MS), router, laptop, 53, sport, reply)
        names.append(name)
        seq += 1
        t += rng.randint(250 * MS, 1100 * MS)
    max_label = max(len(label) for n in names for label in n.split("."))
    return Incident(
        plan.tag,
        plan.kind,
        LAPTOP,
        f"The laptop sends {len(names)} queries (mostly TXT) for unique names under "
        f"{DNS_TUNNEL_DOMAIN} whose first labels are 31-63 random base32 characters: "
        "data smuggled out through DNS.",
        peer=DNS_TUNNEL_DOMAIN,
        peer_domain=DNS_TUNNEL_DOMAIN,
        details={
            "queries": len(names),
            "unique_names": len(set(names)),
            "qtypes": qtype_counts,
            "max_label_length": max_label,
            "resolver": ROUTER.ip,
        },
    )


def incident_arp_spoof(ctx: Ctx, plan: PlannedIncident, start: int, length_us: int) -> Incident:
    """The Android phone claims the gateway's IP with its own MAC (bettercap-style, every ~2 s)."""
    s = ctx.stream(plan.tag, plan.tag)
    rng = s.rng
    attacker = s.world.hosts[ANDROID.name]
    router = s.world.router
    victims = [s.world.hosts[n] for n in (LAPTOP.name, IPHONE.name, TV.name)]
    t = start
    replies = 0
    while t < start + length_us:
        # Gratuitous reply to everyone: "192.168.1.1 is at <attacker>"
        s.emit(
            t, pk.arp(pk.BROADCAST_MAC, attacker.mac, 2, attacker.mac, ROUTER.ip, pk.BROADCAST_MAC, ROUTER.ip)
        )
        replies += 1
        for i, victim in enumerate(victims):
            tv = t + (i + 1) * rng.randint(300, 2000)
            s.emit(tv, pk.arp(victim.mac, attacker.mac, 2, attacker.mac, ROUTER.ip, victim.mac, victim.ip))
            replies += 1
        # ...and to the router: "<laptop> is at <attacker>", to sit in the middle both ways
        laptop = victims[0]
        s.emit(
            t + 9 * MS, pk.arp(router.mac, attacker.mac, 2, attacker.mac, laptop.ip, router.mac, router.ip)
        )
        replies += 1
        t += round(rng.gauss(2.0, 0.05) * SECOND)
    return Incident(
        plan.tag,
        plan.kind,
        ANDROID,
        "The Android phone sends forged ARP replies claiming 192.168.1.1 (the gateway) is at its "
        "own MAC, broadcast and directly to the laptop, iPhone and TV, and tells the router the "
        "laptop's IP is at its MAC.",
        peer=ROUTER.ip,
        peer_ip=ROUTER.ip,
        details={
            "claimed_ip": ROUTER.ip,
            "spoofed_mac": ANDROID.mac,
            "real_mac": ROUTER.mac,
            "victims": [v.ip for v in victims] + [ROUTER.ip],
            "forged_replies": replies,
        },
    )


INCIDENT_BUILDERS: dict[str, Callable[[Ctx, PlannedIncident, int, int], Incident]] = {
    "geo_violation": incident_geo,
    "beaconing": incident_beacon,
    "port_scan": incident_scan,
    "brute_force": incident_bruteforce,
    "volume_spike": incident_exfil,
    "dns_tunnel": incident_dns_tunnel,
    "arp_spoof": incident_arp_spoof,
}

# ------------------------------------------------------------------------------------------------
# Scenario assembly


def build_world() -> World:
    hosts: dict[str, Host] = {}
    for dev in DEVICES:
        rtt = {"nas": 900, "router": 300, "camera": 4 * MS, "plug": 6 * MS, "printer": 3 * MS}.get(
            dev.name, 3 * MS
        )
        hosts[dev.name] = lan_host(dev, rtt)
    return World(hosts[ROUTER.name], ROUTER, {d.name: d for d in DEVICES}, hosts, DOMAINS)


def generate(
    seed: int = DEFAULT_SEED,
    *,
    incidents: bool = True,
    duration_s: float = DEFAULT_DURATION_S,
) -> ScenarioRun:
    """Generate the home-LAN capture (with or without incidents) in memory."""
    if duration_s < MIN_DURATION_S:
        raise ValueError(f"duration must be at least {MIN_DURATION_S} s")
    start = epoch_us(BASE_TIME)
    learning_s = DEFAULT_LEARNING_S
    timeline = Timeline(start, start + round(duration_s * SECOND), start + learning_s * SECOND)
    log = FrameLog()
    ctx = Ctx(build_world(), timeline, log, seed)
    dur = duration_s
    leave_iphone = dur - 240
    presence = {
        name: (timeline.capture_start_us, timeline.capture_end_us) for name in ("router", "nas", "camera")
    }
    for name, arrive_s in ARRIVALS.items():
        presence[name] = (
            ctx.at(arrive_s),
            ctx.at(leave_iphone) if name == "iphone" else timeline.capture_end_us,
        )
    router_behaviour(ctx, presence)
    nas_behaviour(ctx)
    camera_behaviour(ctx)
    iphone_behaviour(ctx, ARRIVALS["iphone"], leave_iphone)
    printer_behaviour(ctx, ARRIVALS["printer"])
    android_behaviour(ctx, ARRIVALS["android"])
    tv_behaviour(ctx, ARRIVALS["tv"])
    plug_behaviour(ctx, ARRIVALS["plug"])
    laptop_behaviour(ctx, ARRIVALS["laptop"])
    # Nothing benign may spill past the end of the capture.
    log.records = [r for r in log.records if r[0] < timeline.capture_end_us]
    found: list[Incident] = []
    if incidents:
        scale = (duration_s - learning_s) / (DEFAULT_DURATION_S - DEFAULT_LEARNING_S)
        for plan in INCIDENT_PLAN:
            offset = learning_s + (plan.offset_s - learning_s) * scale
            length = round(plan.length_s * scale * SECOND)
            found.append(INCIDENT_BUILDERS[plan.kind](ctx, plan, ctx.at(offset), length))
        log.records = [r for r in log.records if r[0] < timeline.capture_end_us]
    name = f"{SCENARIO}_incidents" if incidents else f"{SCENARIO}_benign"
    description = (
        "Home LAN, Monday morning: benign learning stretch, then seven incidents on top of the "
        "same benign traffic."
        if incidents
        else "Home LAN, Monday morning: benign traffic only (the incidents capture minus its incidents)."
    )
    run = ScenarioRun(name, seed, description, timeline, list(DEVICES), found, log)
    run.measure_incidents()
    return run
