"""Who a device is: its hardware vendor and a rule-based guess at what kind of device it is.

The guess weighs clues from several sources (MAC vendor, DHCP vendor class and parameter list, host
name, mDNS services, User-Agents, SSDP servers, ports the device serves, a randomized MAC). Each clue
gives a weight in 0..1 to one or more device types, with a reason naming the clue. Per type and source
only the strongest clue counts (ten printer services are one piece of evidence), and a type's score
combines its sources as ``1 - prod(1 - w)``. The confidence of the winner is that score, lowered when
another type scores close to it.

Strings in the evidence come from the network and are expected to have passed through ``safe_text``
already (the application parsers do this); reasons quote them shortened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from heimdal_tui.devices.oui import default_registry

__all__ = [
    "DEVICE_TYPES",
    "MAX_MDNS_SERVICES",
    "MAX_SERVED_PORTS",
    "MAX_SSDP_SERVERS",
    "MAX_USER_AGENTS",
    "DeviceTypeGuess",
    "IdentityEvidence",
    "gives_clues",
    "guess_device_type",
    "is_locally_administered",
    "vendor_for_mac",
]

DEVICE_TYPES: tuple[str, ...] = (
    "phone",
    "tablet",
    "laptop",
    "desktop",
    "smart_tv",
    "streaming_device",
    "printer",
    "camera",
    "smart_plug",
    "smart_speaker",
    "iot",
    "nas",
    "router",
    "game_console",
    "server",
    "unknown",
)

MAX_USER_AGENTS = 8
MAX_SSDP_SERVERS = 8
MAX_SERVED_PORTS = 64
MAX_MDNS_SERVICES = 64

_HEX = re.compile(r"[^0-9a-fA-F]")


# --- MAC addresses -----------------------------------------------------------------------------


def is_locally_administered(mac: str) -> bool:
    """True when the locally administered bit (0x02 of the first octet) is set.

    Phones and laptops use such addresses as randomized private MACs. An unparseable address is False.
    """
    digits = _HEX.sub("", mac)
    if len(digits) < 2:
        return False
    return bool(int(digits[:2], 16) & 0x02)


@lru_cache(maxsize=4096)
def vendor_for_mac(mac: str) -> str | None:
    """The IEEE OUI registrant of ``mac`` (e.g. ``"Apple, Inc."``), or None.

    None for an unregistered OUI, an unparseable address and a locally administered address (whose
    first three octets name no vendor). ``mac`` is six octets in hex, separated by ``:`` or ``-``,
    in pairs, or in dotted groups of four (``aabb.ccdd.eeff``), or not at all.
    """
    digits = _MAC_SEPARATORS.sub("", mac) if _ANY_MAC.fullmatch(mac) else ""
    if len(digits) != 12 or is_locally_administered(mac):
        return None
    return _oui_vendor(int(digits[:6], 16))


_ANY_MAC = re.compile(
    r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}|[0-9a-fA-F]{2}(?:-[0-9a-fA-F]{2}){5}"
    r"|[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}|[0-9a-fA-F]{12}"
)
_MAC_SEPARATORS = re.compile(r"[:.-]")


@lru_cache(maxsize=4096)
def _oui_vendor(oui: int) -> str | None:
    # The registrant depends on the OUI alone, and a lookup reads its record from the registry
    # file: a LAN of a thousand devices has a few dozen vendors.
    registry = default_registry()
    return registry.org(oui) if registry is not None else None


# --- evidence and guess ------------------------------------------------------------------------


@dataclass(slots=True)
class IdentityEvidence:
    """What has been learnt about one device. The ``add_*`` methods keep the sets bounded.

    ``mdns_services`` should hold the services the device *advertises* (from its mDNS responses);
    services it merely browses for (PTR questions) say little about what it is.
    """

    vendor: str | None = None
    dhcp_vendor_class: str | None = None
    dhcp_param_list: tuple[int, ...] = ()
    hostname: str | None = None
    mdns_services: set[str] = field(default_factory=set)
    user_agents: set[str] = field(default_factory=set)
    ssdp_servers: set[str] = field(default_factory=set)
    served_ports: set[int] = field(default_factory=set)
    randomized_mac: bool = False

    @classmethod
    def for_mac(cls, mac: str) -> IdentityEvidence:
        """Evidence holding what the MAC address itself says (vendor, randomized or not)."""
        return cls(vendor=vendor_for_mac(mac), randomized_mac=is_locally_administered(mac))

    def add_user_agent(self, user_agent: str) -> bool:
        return _bounded_add(self.user_agents, user_agent, MAX_USER_AGENTS)

    def add_ssdp_server(self, server: str) -> bool:
        return _bounded_add(self.ssdp_servers, server, MAX_SSDP_SERVERS)

    def add_served_port(self, port: int) -> bool:
        return _bounded_add(self.served_ports, port, MAX_SERVED_PORTS)

    def add_mdns_service(self, service: str) -> bool:
        return _bounded_add(self.mdns_services, service, MAX_MDNS_SERVICES)


def _bounded_add(target: set[str] | set[int], value: str | int, limit: int) -> bool:
    """Add ``value`` unless the set is full; True when the set changed."""
    if value in target or len(target) >= limit:
        return False
    target.add(value)  # type: ignore[arg-type]
    return True


@dataclass(frozen=True, slots=True)
class DeviceTypeGuess:
    type: str
    confidence: float
    reasons: tuple[str, ...]


UNKNOWN = DeviceTypeGuess("unknown", 0.0, ())

Weights = tuple[tuple[str, float], ...]


def _w(**weights: float) -> Weights:
    return tuple(weights.items())


def _edge(token: str) -> str:
    """``token`` at the start or end of a run of letters ("tv" in "Samsung-TV", "LivingRoomTV")."""
    return rf"(?:(?<![a-z]){token}|{token}(?![a-z]))"


# Vendor (OUI registrant), lower-cased; the first matching rule applies.
_VENDOR_RULES: tuple[tuple[re.Pattern[str], str, Weights], ...] = tuple(
    (re.compile(pattern), description, weights)
    for pattern, description, weights in (
        (r"espressif", "makes IoT modules", _w(iot=0.5, smart_plug=0.25)),
        (r"tuya", "makes smart plugs and IoT modules", _w(smart_plug=0.45, iot=0.35)),
        (r"shelly|allterco", "makes smart relays and plugs", _w(smart_plug=0.55, iot=0.3)),
        (
            r"tp-link|tplink",
            "makes routers and Kasa/Tapo plugs and cameras",
            _w(router=0.3, smart_plug=0.25, camera=0.1),
        ),
        (r"belkin", "makes Wemo plugs and routers", _w(smart_plug=0.3, router=0.25)),
        (r"sonos", "makes speakers", _w(smart_speaker=0.7)),
        (r"\broku\b", "makes streaming players and TVs", _w(streaming_device=0.65, smart_tv=0.2)),
        (r"synology", "makes NAS devices", _w(nas=0.8)),
        (r"qnap", "makes NAS devices", _w(nas=0.8)),
        (r"aruba|hewlett packard enterprise", "makes enterprise network gear", _w(router=0.4, server=0.2)),
        (r"hewlett|\bhp inc", "makes printers and PCs", _w(printer=0.35, laptop=0.2, desktop=0.15)),
        (r"brother ind", "makes printers", _w(printer=0.7)),
        (r"\bcanon\b", "makes printers", _w(printer=0.6)),
        (r"epson", "makes printers", _w(printer=0.7)),
        (r"lexmark|xerox|kyocera|ricoh", "makes printers", _w(printer=0.7)),
        (r"hikvision", "makes IP cameras", _w(camera=0.75)),
        (r"dahua", "makes IP cameras", _w(camera=0.75)),
        (r"axis communications", "makes IP cameras", _w(camera=0.75)),
        (r"wyze", "makes cameras and smart home devices", _w(camera=0.6, smart_plug=0.15)),
        (r"\bring llc\b", "makes doorbell cameras", _w(camera=0.6)),
        (
            r"nest labs",
            "makes thermostats, cameras and speakers",
            _w(iot=0.3, camera=0.25, smart_speaker=0.2),
        ),
        (r"raspberry pi", "makes single-board computers", _w(server=0.35, iot=0.3)),
        (r"\bintel\b", "makes Wi-Fi chips for PCs", _w(laptop=0.35, desktop=0.25)),
        (r"liteon|azurewave|hon hai|foxconn", "makes Wi-Fi modules for PCs", _w(laptop=0.3, desktop=0.15)),
        (r"\bdell\b", "makes PCs and servers", _w(laptop=0.3, desktop=0.3, server=0.15)),
        (r"lenovo", "makes PCs and phones", _w(laptop=0.4, desktop=0.2, phone=0.1)),
        (r"microsoft", "makes Surface PCs and Xbox consoles", _w(game_console=0.3, laptop=0.2, desktop=0.2)),
        (r"nintendo", "makes game consoles", _w(game_console=0.8)),
        (r"sony interactive", "makes PlayStation consoles", _w(game_console=0.8)),
        (r"\bsony\b", "makes TVs, consoles and phones", _w(smart_tv=0.3, game_console=0.3, phone=0.1)),
        (r"ubiquiti", "makes access points and gateways", _w(router=0.6, camera=0.1)),
        (r"netgear", "makes routers", _w(router=0.6)),
        (r"mikrotik|zyxel|d-link|\barris\b|sagemcom|technicolor|\bcisco\b", "makes routers", _w(router=0.5)),
        (r"\bavm\b", "makes FRITZ!Box routers", _w(router=0.7)),
        (r"asustek", "makes routers and PCs", _w(router=0.4, laptop=0.25, desktop=0.1)),
        (r"xiaomi", "makes phones and smart home devices", _w(phone=0.35, iot=0.3)),
        (r"huawei", "makes phones and routers", _w(phone=0.35, router=0.3)),
        (r"\blg electronics\b", "makes TVs and phones", _w(smart_tv=0.4, phone=0.2)),
        (r"vizio", "makes TVs", _w(smart_tv=0.7)),
        (r"samsung", "makes phones and TVs", _w(phone=0.3, smart_tv=0.25, tablet=0.1)),
        (
            r"\bapple\b",
            "makes phones, tablets and computers",
            _w(phone=0.3, laptop=0.2, tablet=0.15, desktop=0.1, streaming_device=0.1),
        ),
        (
            r"\bgoogle\b",
            "makes phones, Chromecasts and Nest speakers",
            _w(streaming_device=0.25, phone=0.2, smart_speaker=0.2),
        ),
        (
            r"amazon technologies|amazon\.com",
            "makes Echo speakers and Fire TV",
            _w(smart_speaker=0.35, streaming_device=0.3, tablet=0.1),
        ),
        (r"signify|philips lighting|ecobee|chamberlain|lifx", "makes smart home devices", _w(iot=0.6)),
        (
            r"texas instruments|silicon lab|nordic semi",
            "makes chips for IoT devices",
            _w(iot=0.3),
        ),
        (r"murata", "makes Wi-Fi modules for phones and IoT", _w(phone=0.15, iot=0.15)),
        (
            r"motorola mobility|oneplus|\boppo\b|vivo mobile|fairphone|\bhmd global",
            "makes phones",
            _w(phone=0.6),
        ),
        (r"valve corp", "makes the Steam Deck", _w(game_console=0.5)),
    )
)

# DHCP vendor class identifier (option 60), lower-cased; the first matching rule applies.
_VENDOR_CLASS_RULES: tuple[tuple[re.Pattern[str], str, Weights], ...] = tuple(
    (re.compile(pattern), note, weights)
    for pattern, note, weights in (
        (r"xbox", "Xbox", _w(game_console=0.65)),
        (r"^msft", "Windows", _w(desktop=0.35, laptop=0.35)),
        (r"^android-dhcp", "Android", _w(phone=0.55, tablet=0.2)),
        (r"^dhcpcd.*(arm|aarch64)", "Linux dhcpcd on ARM", _w(iot=0.3, server=0.2)),
        (r"^dhcpcd", "Linux dhcpcd", _w(iot=0.25, server=0.15)),
        (r"^udhcp", "BusyBox udhcp, embedded Linux", _w(iot=0.35, router=0.25)),
        (r"^ubnt", "Ubiquiti", _w(router=0.55)),
        (r"hewlett-packard|jetdirect|\bhp\b", "HP printer", _w(printer=0.55)),
        (r"playstation", "PlayStation", _w(game_console=0.7)),
        (r"sonos", "Sonos", _w(smart_speaker=0.6)),
        (r"^samsung", "Samsung", _w(smart_tv=0.25, phone=0.25)),
        (r"cisco|aastra|polycom|yealink", "network or VoIP equipment", _w(iot=0.3)),
    )
)

# Host name, lower-cased; every matching rule applies.
_HOSTNAME_RULES: tuple[tuple[re.Pattern[str], str, Weights], ...] = tuple(
    (re.compile(pattern), token, weights)
    for pattern, token, weights in (
        (r"iphone", "iphone", _w(phone=0.75)),
        (r"ipad", "ipad", _w(tablet=0.75)),
        (r"galaxy-?tab", "galaxy-tab", _w(tablet=0.65)),
        (r"galaxy", "galaxy", _w(phone=0.5, tablet=0.15)),
        (r"pixel", "pixel", _w(phone=0.5)),
        (r"^android", "android", _w(phone=0.45, tablet=0.2)),
        (r"macbook", "macbook", _w(laptop=0.7)),
        (r"(?<![a-z])imac|mac-?mini|mac-?pro|mac-?studio", "imac/mac mini", _w(desktop=0.6)),
        (r"laptop|notebook|thinkpad", "laptop", _w(laptop=0.6)),
        (r"desktop|workstation", "desktop", _w(desktop=0.5, laptop=0.2)),
        (r"chromecast", "chromecast", _w(streaming_device=0.7)),
        (r"apple-?tv", "appletv", _w(streaming_device=0.7)),
        (r"fire-?tv|firestick", "firetv", _w(streaming_device=0.65)),
        (r"roku", "roku", _w(streaming_device=0.6, smart_tv=0.15)),
        (r"shield", "shield", _w(streaming_device=0.4)),
        (_edge("tv"), "tv", _w(smart_tv=0.45)),
        (r"bravia|tizen|webos|lgwebostv", "tv brand", _w(smart_tv=0.55)),
        (
            r"printer|officejet|laserjet|deskjet|pixma|^brw[0-9a-f]|^npi[0-9a-f]|^epson",
            "printer",
            _w(printer=0.7),
        ),
        (r"(?<![a-z])cam(?![a-z])|ipcam|webcam|camera|doorbell", "cam", _w(camera=0.5)),
        (
            r"plug|shelly|tasmota|sonoff|kasa|(?<![a-z])hs1[01]\d|(?<![a-z])kp\d{3}",
            "plug",
            _w(smart_plug=0.55),
        ),
        (
            r"homepod|sonos|echo|alexa|google-?home|nest-?(mini|audio|hub)",
            "echo/homepod/sonos",
            _w(smart_speaker=0.6),
        ),
        (r"diskstation|synology|qnap|truenas|freenas|(?<![a-z])nas(?![a-z])", "nas", _w(nas=0.7)),
        (r"router|gateway|fritz|openwrt|(?<![a-z])ap(?![a-z])|unifi|ubnt", "router", _w(router=0.6)),
        (r"xbox", "xbox", _w(game_console=0.75)),
        (r"playstation|(?<![a-z])ps[345](?![a-z0-9])", "playstation", _w(game_console=0.7)),
        (r"nintendo", "nintendo", _w(game_console=0.7)),
        (_edge("switch"), "switch", _w(game_console=0.3)),
        (r"^esp[-_]|espressif|esphome|(?<![a-z])esp32|(?<![a-z])esp8266", "esp", _w(iot=0.55)),
        (
            r"thermostat|(?<![a-z])bulb|(?<![a-z])light|hue-?bridge|vacuum|roborock",
            "smart home",
            _w(iot=0.45),
        ),
        (r"raspberrypi|(?<![a-z])pi\d?(?![a-z])", "raspberrypi", _w(server=0.35, iot=0.25)),
        (r"server|(?<![a-z])srv|homeassistant|proxmox|docker", "server", _w(server=0.5)),
    )
)

# User-Agent; every matching rule applies.
_UA_RULES: tuple[tuple[re.Pattern[str], str, Weights], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), label, weights)
    for pattern, label, weights in (
        (r"iphone", "iPhone", _w(phone=0.65)),
        (r"ipad", "iPad", _w(tablet=0.65)),
        (r"android.*mobile", "Android (mobile)", _w(phone=0.55)),
        (r"android(?!.*mobile)", "Android", _w(tablet=0.3, phone=0.25)),
        (r"windows nt", "Windows NT", _w(desktop=0.3, laptop=0.3)),
        (r"macintosh", "Macintosh", _w(laptop=0.35, desktop=0.25)),
        (r"\bcros\b", "ChromeOS", _w(laptop=0.45)),
        (r"x11; (ubuntu|linux|fedora)", "desktop Linux", _w(desktop=0.25, laptop=0.25)),
        (r"smart-?tv|tizen|web0?os|netcast|hbbtv|bravia|vidaa|viera", "SmartTV", _w(smart_tv=0.65)),
        (r"crkey", "CrKey (Chromecast)", _w(streaming_device=0.7)),
        (r"roku", "Roku", _w(streaming_device=0.6, smart_tv=0.15)),
        (r"apple ?tv|tvos", "AppleTV", _w(streaming_device=0.7)),
        (r"\baft[a-z]", "Fire TV", _w(streaming_device=0.6)),
        (r"playstation", "PlayStation", _w(game_console=0.75)),
        (r"xbox", "Xbox", _w(game_console=0.75)),
        (r"nintendo", "Nintendo", _w(game_console=0.7)),
        (r"sonos", "Sonos", _w(smart_speaker=0.6)),
        (r"alexa|echo", "Amazon Echo", _w(smart_speaker=0.45)),
    )
)

# SSDP SERVER header; every matching rule applies.
_SSDP_RULES: tuple[tuple[re.Pattern[str], str, Weights], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), label, weights)
    for pattern, label, weights in (
        (r"sonos", "Sonos", _w(smart_speaker=0.6)),
        (r"roku", "Roku", _w(streaming_device=0.6)),
        (r"tizen|samsung", "Samsung TV", _w(smart_tv=0.45)),
        (r"webos|lge|lg smart", "LG webOS", _w(smart_tv=0.5)),
        (r"bravia|sony", "Sony", _w(smart_tv=0.35)),
        (r"miniupnpd|igd|internetgatewaydevice", "a UPnP gateway", _w(router=0.45)),
        (r"fritz|avm", "FRITZ!Box", _w(router=0.6)),
        (r"synology", "Synology", _w(nas=0.55)),
        (r"qnap", "QNAP", _w(nas=0.55)),
        (r"microsoft-windows|windows", "Windows", _w(desktop=0.2, laptop=0.2)),
        (r"xbox", "Xbox", _w(game_console=0.6)),
        (r"hikvision|dahua|ipcam|camera", "a camera", _w(camera=0.5)),
        (r"ipbridge|hue", "Philips Hue", _w(iot=0.55)),
        (r"hdhomerun|kodi|plex", "a media player/server", _w(streaming_device=0.35)),
    )
)

# DNS-SD service types (lower case) the device advertises.
_MDNS_RULES: dict[str, tuple[str, Weights]] = {
    "_airplay._tcp": ("AirPlay receiver", _w(streaming_device=0.35, smart_tv=0.3, smart_speaker=0.15)),
    "_raop._tcp": ("AirPlay audio", _w(smart_speaker=0.35, streaming_device=0.25)),
    "_googlecast._tcp": ("Chromecast", _w(streaming_device=0.5, smart_tv=0.35, smart_speaker=0.3)),
    "_ipp._tcp": ("printer", _w(printer=0.7)),
    "_ipps._tcp": ("printer", _w(printer=0.7)),
    "_printer._tcp": ("printer", _w(printer=0.7)),
    "_pdl-datastream._tcp": ("printer", _w(printer=0.7)),
    "_scanner._tcp": ("scanner", _w(printer=0.5)),
    "_uscan._tcp": ("scanner", _w(printer=0.5)),
    "_uscans._tcp": ("scanner", _w(printer=0.5)),
    "_smb._tcp": ("file sharing", _w(nas=0.3, desktop=0.15, laptop=0.1)),
    "_afpovertcp._tcp": ("AFP file sharing", _w(nas=0.45, desktop=0.1)),
    "_adisk._tcp": ("Time Machine disk", _w(nas=0.6)),
    "_hap._tcp": ("HomeKit accessory", _w(iot=0.55)),
    "_hap._udp": ("HomeKit accessory", _w(iot=0.55)),
    "_matter._tcp": ("Matter device", _w(iot=0.5)),
    "_matterc._udp": ("Matter device", _w(iot=0.45)),
    "_companion-link._tcp": ("Apple device", _w(phone=0.3, tablet=0.25, laptop=0.15, streaming_device=0.15)),
    "_apple-mobdev2._tcp": ("iOS device", _w(phone=0.5, tablet=0.35)),
    "_rdlink._tcp": ("iOS device", _w(phone=0.3, tablet=0.2)),
    "_sleep-proxy._udp": (
        "Bonjour sleep proxy, Apple TV/HomePod",
        _w(streaming_device=0.45, smart_speaker=0.3),
    ),
    "_mediaremotetv._tcp": ("Apple TV", _w(streaming_device=0.75)),
    "_spotify-connect._tcp": ("Spotify Connect", _w(smart_speaker=0.45)),
    "_sonos._tcp": ("Sonos", _w(smart_speaker=0.7)),
    "_amzn-wplay._tcp": ("Fire TV", _w(streaming_device=0.5, smart_speaker=0.2)),
    "_androidtvremote2._tcp": ("Android TV", _w(smart_tv=0.4, streaming_device=0.4)),
    "_nvstream._tcp": ("NVIDIA Shield", _w(streaming_device=0.5)),
    "_viziocast._tcp": ("Vizio TV", _w(smart_tv=0.6)),
    "_rtsp._tcp": ("camera", _w(camera=0.5)),
    "_axis-video._tcp": ("Axis camera", _w(camera=0.7)),
    "_miio._udp": ("Xiaomi smart home", _w(iot=0.5)),
    "_esphomelib._tcp": ("ESPHome", _w(iot=0.6)),
    "_shelly._tcp": ("Shelly", _w(smart_plug=0.55)),
    "_home-assistant._tcp": ("Home Assistant", _w(server=0.55)),
    "_ssh._tcp": ("SSH", _w(server=0.3)),
    "_sftp-ssh._tcp": ("SFTP", _w(server=0.25)),
}

# Ports the device answered on.
_PORT_RULES: dict[int, tuple[str, Weights]] = {
    554: ("RTSP, cameras", _w(camera=0.45)),
    8554: ("RTSP, cameras", _w(camera=0.45)),
    631: ("IPP, printers", _w(printer=0.45)),
    9100: ("JetDirect, printers", _w(printer=0.55)),
    515: ("LPD, printers", _w(printer=0.45)),
    445: ("SMB, file servers", _w(nas=0.25, desktop=0.15)),
    548: ("AFP, file servers", _w(nas=0.4)),
    5000: ("Synology DSM", _w(nas=0.25)),
    5001: ("Synology DSM", _w(nas=0.3)),
    53: ("DNS, routers", _w(router=0.45)),
    67: ("DHCP server, routers", _w(router=0.55)),
    22: ("SSH, servers", _w(server=0.35)),
    3389: ("RDP, Windows desktops", _w(desktop=0.35)),
    8008: ("Cast, Chromecast", _w(streaming_device=0.4)),
    8009: ("Cast, Chromecast", _w(streaming_device=0.4)),
    8060: ("Roku ECP", _w(streaming_device=0.6)),
    1400: ("Sonos", _w(smart_speaker=0.55)),
    62078: ("iOS lockdown", _w(phone=0.5, tablet=0.3)),
    32400: ("Plex", _w(server=0.4, nas=0.2)),
    8123: ("Home Assistant", _w(server=0.45)),
    1883: ("MQTT broker", _w(server=0.35)),
    6668: ("Tuya local control", _w(smart_plug=0.4, iot=0.2)),
    9999: ("Kasa local control", _w(smart_plug=0.4)),
}

_NETBIOS_PARAMS = frozenset({44, 46, 47})

# A specific IoT type does not compete with the generic one: evidence for "iot" supports it.
_FAMILY = {"smart_plug": "iot", "smart_speaker": "iot", "camera": "iot"}

# A rival scoring ``r`` times the winner's score scales the confidence by ``1 - penalty * r**3``: a
# distant rival barely matters, a tie keeps 40% of the score.
_RIVAL_PENALTY = 0.6

# The competitor must score at least this fraction of the winner to be named in the reasons.
_CLOSE = 0.6


def _short(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Clues:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[str, float, str, str]] = []  # (type, weight, reason, source)

    def add(self, source: str, weights: Weights, reason: str) -> None:
        for device_type, weight in weights:
            self.items.append((device_type, weight, reason, source))


# What one string says, by rule table: pure functions of the string, and the same vendors, User-Agents
# and SSDP servers recur across a LAN's devices, so each is matched against its rules once.
Clue = tuple[Weights, str]


@lru_cache(maxsize=4096)
def _vendor_clues(vendor: str) -> tuple[Clue, ...]:
    lowered = vendor.lower()
    for pattern, description, weights in _VENDOR_RULES:
        if pattern.search(lowered):
            return ((weights, f"vendor '{_short(vendor)}' {description}"),)
    return ()


@lru_cache(maxsize=4096)
def _vendor_class_clues(vendor_class: str) -> tuple[Clue, ...]:
    lowered = vendor_class.lower()
    for pattern, note, weights in _VENDOR_CLASS_RULES:
        if pattern.search(lowered):
            return ((weights, f"DHCP vendor class '{_short(vendor_class)}' ({note})"),)
    return ()


@lru_cache(maxsize=4096)
def _hostname_clues(hostname: str) -> tuple[Clue, ...]:
    lowered = hostname.lower()
    return tuple(
        (weights, f"hostname contains '{token}'")
        for pattern, token, weights in _HOSTNAME_RULES
        if pattern.search(lowered)
    )


@lru_cache(maxsize=4096)
def _user_agent_clues(user_agent: str) -> tuple[Clue, ...]:
    return tuple(
        (weights, f"User-Agent mentions {label}")
        for pattern, label, weights in _UA_RULES
        if pattern.search(user_agent)
    )


@lru_cache(maxsize=4096)
def _ssdp_clues(server: str) -> tuple[Clue, ...]:
    return tuple(
        (weights, f"SSDP server '{_short(server)}' ({label})")
        for pattern, label, weights in _SSDP_RULES
        if pattern.search(server)
    )


def gives_clues(source: str, value: str) -> bool:
    """Whether one more ``value`` of ``source`` ("user_agent", "ssdp" or "mdns") in a device's
    evidence can change its guess: a value no rule matches adds no clue (the directory then keeps
    the guess it made)."""
    if source == "user_agent":
        return bool(_user_agent_clues(value))
    if source == "ssdp":
        return bool(_ssdp_clues(value))
    if source == "mdns":
        return value.lower() in _MDNS_RULES
    raise ValueError(f"no clue source {source!r}")


def _collect(ev: IdentityEvidence) -> _Clues:
    clues = _Clues()
    if ev.vendor:
        for weights, reason in _vendor_clues(ev.vendor):
            clues.add("vendor", weights, reason)
    if ev.randomized_mac:
        clues.add(
            "mac",
            _w(phone=0.35, tablet=0.15, laptop=0.1),
            "randomized (locally administered) MAC, typical of phones",
        )
    if ev.dhcp_vendor_class:
        for weights, reason in _vendor_class_clues(ev.dhcp_vendor_class):
            clues.add("dhcp", weights, reason)
    if _NETBIOS_PARAMS.issubset(ev.dhcp_param_list):
        clues.add("dhcp_params", _w(desktop=0.15, laptop=0.15), "DHCP asks for NetBIOS options (Windows)")
    if ev.hostname:
        for weights, reason in _hostname_clues(ev.hostname):
            clues.add("hostname", weights, reason)
    for service in sorted(ev.mdns_services):
        rule = _MDNS_RULES.get(service.lower())
        if rule:
            what, weights = rule
            clues.add("mdns", weights, f"mDNS service {service} ({what})")
    for user_agent in sorted(ev.user_agents):
        for weights, reason in _user_agent_clues(user_agent):
            clues.add("user_agent", weights, reason)
    for server in sorted(ev.ssdp_servers):
        for weights, reason in _ssdp_clues(server):
            clues.add("ssdp", weights, reason)
    for port in sorted(ev.served_ports):
        port_rule = _PORT_RULES.get(port)
        if port_rule:
            what, weights = port_rule
            clues.add("port", weights, f"serves port {port} ({what})")
    return clues


def guess_device_type(ev: IdentityEvidence) -> DeviceTypeGuess:
    """The most likely device type with a confidence in 0..1 and the reasons (clues) behind it.

    ``DeviceTypeGuess("unknown", 0.0, ())`` when no clue matches.
    """
    clues = _collect(ev).items
    if not clues:
        return UNKNOWN
    return _ranked(tuple(clues))


@lru_cache(maxsize=4096)
def _ranked(clues: tuple[tuple[str, float, str, str], ...]) -> DeviceTypeGuess:
    """The guess the clues make: a pure function of them, and an identity whose evidence grew (one
    more User-Agent, mDNS service or host name) mostly gives the clues it gave before, as devices
    of one model do, so each set of clues is ranked once."""
    strongest: dict[tuple[str, str], float] = {}
    for device_type, weight, _reason, source in clues:
        key = (device_type, source)
        strongest[key] = max(strongest.get(key, 0.0), weight)
    remaining: dict[str, float] = {}
    for (device_type, _source), weight in strongest.items():
        remaining[device_type] = remaining.get(device_type, 1.0) * (1.0 - weight)
    scores = {device_type: 1.0 - rest for device_type, rest in remaining.items()}

    order = {device_type: index for index, device_type in enumerate(DEVICE_TYPES)}
    ranked = sorted(scores, key=lambda t: (-scores[t], order.get(t, len(order))))
    winner = ranked[0]
    score = scores[winner]
    rivals = [t for t in ranked[1:] if _FAMILY.get(winner) != t]
    second = scores[rivals[0]] if rivals else 0.0
    ratio = second / score if score > 0 else 0.0
    confidence = max(0.0, min(1.0, score * (1.0 - _RIVAL_PENALTY * ratio**3)))

    winning = sorted((c for c in clues if c[0] == winner), key=lambda c: -c[1])
    reasons = list(dict.fromkeys(reason for _t, _w, reason, _s in winning))
    if rivals and ratio >= _CLOSE:
        reasons.append(f"competing guess: {rivals[0]} ({second:.2f})")
    return DeviceTypeGuess(winner, round(confidence, 3), tuple(reasons))
