"""Device identity: OUI vendor lookup and the rule-based device type guess."""

from __future__ import annotations

import pytest

from heimdal_tui.devices.identity import (
    DEVICE_TYPES,
    MAX_SERVED_PORTS,
    MAX_SSDP_SERVERS,
    MAX_USER_AGENTS,
    DeviceTypeGuess,
    IdentityEvidence,
    guess_device_type,
    is_locally_administered,
    vendor_for_mac,
)

IPHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
WINDOWS_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
TIZEN_UA = "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 SamsungBrowser/4.0 TV Safari/537.36"
CRKEY_UA = "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 CrKey/1.56.500000 DeviceType/Chromecast"
XBOX_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 Edge/44.18363.8131"


# --- MAC addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mac", "vendor"),
    [
        ("00:0b:82:01:02:03", "Grandstream Networks, Inc."),
        ("00-0B-82-01-02-03", "Grandstream Networks, Inc."),
        ("000b.8201.0203", "Grandstream Networks, Inc."),
        ("00:03:93:12:34:56", "Apple, Inc."),
        ("24:0a:c4:00:00:01", "Espressif Inc."),
        ("b8:27:eb:01:02:03", "Raspberry Pi Foundation"),
    ],
)
def test_vendor_for_known_ouis(mac: str, vendor: str) -> None:
    assert vendor_for_mac(mac) == vendor


def test_vendor_none_for_unknown_local_and_garbage() -> None:
    assert vendor_for_mac("fc:ff:fc:01:02:03") is None  # not registered
    assert vendor_for_mac("02:0b:82:01:02:03") is None  # locally administered twin of Grandstream's OUI
    assert vendor_for_mac("da:a1:19:5e:3c:01") is None  # randomized private address
    assert vendor_for_mac("not a mac") is None
    assert vendor_for_mac("") is None


def test_vendor_lookup_is_cached() -> None:
    vendor_for_mac.cache_clear()
    vendor_for_mac("00:03:93:aa:bb:cc")
    vendor_for_mac("00:03:93:aa:bb:cc")
    info = vendor_for_mac.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (1, 1, 4096)


@pytest.mark.parametrize(
    ("mac", "local"),
    [
        ("02:00:00:00:00:01", True),
        ("da:a1:19:5e:3c:01", True),
        ("DA-A1-19-5E-3C-01", True),
        ("3e:22:fb:12:34:56", True),
        ("00:03:93:12:34:56", False),
        ("f0:18:98:00:00:01", False),
        ("", False),
        ("x", False),
    ],
)
def test_is_locally_administered(mac: str, local: bool) -> None:
    assert is_locally_administered(mac) is local


def test_evidence_for_mac() -> None:
    assert IdentityEvidence.for_mac("24:0a:c4:00:00:01") == IdentityEvidence(vendor="Espressif Inc.")
    assert IdentityEvidence.for_mac("da:a1:19:5e:3c:01") == IdentityEvidence(vendor=None, randomized_mac=True)


# --- evidence bounds ---------------------------------------------------------------------------


def test_evidence_sets_are_bounded() -> None:
    ev = IdentityEvidence()
    added = [ev.add_user_agent(f"agent {i}") for i in range(20)]
    assert added == [True] * MAX_USER_AGENTS + [False] * (20 - MAX_USER_AGENTS)
    assert len(ev.user_agents) == MAX_USER_AGENTS
    for i in range(20):
        ev.add_ssdp_server(f"server {i}")
    for port in range(1000, 1200):
        ev.add_served_port(port)
    assert len(ev.ssdp_servers) == MAX_SSDP_SERVERS and len(ev.served_ports) == MAX_SERVED_PORTS
    assert not ev.add_served_port(1000)  # already present
    assert ev.add_mdns_service("_ipp._tcp")


# --- guesses -----------------------------------------------------------------------------------


def test_no_clue_is_unknown() -> None:
    assert guess_device_type(IdentityEvidence()) == DeviceTypeGuess("unknown", 0.0, ())
    # A vendor that says nothing about the kind of device, and unrecognised details.
    ev = IdentityEvidence(
        vendor="Grandstream Networks, Inc.",
        hostname="host-17",
        user_agents={"curl/8.5"},
        served_ports={12345},
    )
    assert guess_device_type(ev) == DeviceTypeGuess("unknown", 0.0, ())


def _guess(**kwargs: object) -> DeviceTypeGuess:
    guess = guess_device_type(IdentityEvidence(**kwargs))  # type: ignore[arg-type]
    assert guess.type in DEVICE_TYPES
    assert 0.0 <= guess.confidence <= 1.0
    return guess


def test_iphone() -> None:
    guess = _guess(
        randomized_mac=True,
        hostname="Janes-iPhone",
        mdns_services={"_apple-mobdev2._tcp", "_companion-link._tcp"},
        user_agents={IPHONE_UA},
        served_ports={62078},
    )
    assert guess.type == "phone" and guess.confidence > 0.8
    assert guess.reasons[0] == "hostname contains 'iphone'"
    assert "User-Agent mentions iPhone" in guess.reasons
    assert "randomized (locally administered) MAC, typical of phones" in guess.reasons
    assert "serves port 62078 (iOS lockdown)" in guess.reasons


def test_android_phone() -> None:
    guess = _guess(randomized_mac=True, dhcp_vendor_class="android-dhcp-13", hostname="Galaxy-S21")
    assert guess.type == "phone" and guess.confidence > 0.7
    assert "DHCP vendor class 'android-dhcp-13' (Android)" in guess.reasons
    assert "hostname contains 'galaxy'" in guess.reasons


def test_windows_laptop() -> None:
    guess = _guess(
        vendor="Intel Corporate",
        dhcp_vendor_class="MSFT 5.0",
        dhcp_param_list=(1, 3, 6, 15, 31, 33, 43, 44, 46, 47, 119, 121, 249, 252),
        hostname="LAPTOP-8F3K2Q",
        user_agents={WINDOWS_UA},
    )
    assert guess.type == "laptop"
    assert "DHCP vendor class 'MSFT 5.0' (Windows)" in guess.reasons
    assert "hostname contains 'laptop'" in guess.reasons
    assert "DHCP asks for NetBIOS options (Windows)" in guess.reasons
    # Windows evidence fits a desktop as well: the desktop is named as the competing guess.
    assert guess.reasons[-1].startswith("competing guess: desktop")
    assert 0.4 < guess.confidence < 0.8


def test_printer() -> None:
    guess = _guess(
        vendor="HP Inc.",
        mdns_services={"_ipp._tcp", "_pdl-datastream._tcp", "_uscan._tcp"},
        served_ports={80, 443, 631, 9100},
    )
    assert guess.type == "printer" and guess.confidence > 0.85
    assert {"mDNS service _ipp._tcp (printer)", "serves port 9100 (JetDirect, printers)"} <= set(
        guess.reasons
    )
    assert "vendor 'HP Inc.' makes printers and PCs" in guess.reasons


def test_camera() -> None:
    guess = _guess(vendor="Hangzhou Hikvision Digital Technology Co.,Ltd.", served_ports={80, 554, 8000})
    assert guess.type == "camera" and guess.confidence > 0.8
    assert "serves port 554 (RTSP, cameras)" in guess.reasons


def test_espressif_alone_is_iot() -> None:
    guess = _guess(vendor="Espressif Inc.")
    assert (guess.type, guess.reasons) == ("iot", ("vendor 'Espressif Inc.' makes IoT modules",))
    # iot 0.5, with smart_plug (0.25, half of it) as a distant rival.
    assert guess.confidence == pytest.approx(0.5 * (1 - 0.6 * 0.5**3), abs=1e-3)


def test_smart_plug_is_not_penalised_by_generic_iot() -> None:
    guess = _guess(vendor="Espressif Inc.", hostname="shellyplug-s-C8C9A3")
    # smart_plug: 1 - (1 - 0.25) * (1 - 0.55); iot (0.5) supports rather than competes with it.
    assert guess.type == "smart_plug"
    assert guess.confidence == pytest.approx(1 - 0.75 * 0.45, abs=1e-3)
    assert guess.reasons == ("hostname contains 'plug'", "vendor 'Espressif Inc.' makes IoT modules")


def test_nas() -> None:
    guess = _guess(
        vendor="Synology Incorporated",
        served_ports={22, 445, 5000, 5001},
        mdns_services={"_smb._tcp", "_adisk._tcp"},
    )
    assert guess.type == "nas" and guess.confidence > 0.85
    assert "vendor 'Synology Incorporated' makes NAS devices" in guess.reasons


def test_sonos_speaker() -> None:
    guess = _guess(
        vendor="Sonos, Inc.",
        served_ports={1400},
        mdns_services={"_sonos._tcp", "_spotify-connect._tcp"},
        ssdp_servers={"Linux UPnP/1.0 Sonos/70.3-35220 (ZPS9)"},
    )
    assert guess.type == "smart_speaker" and guess.confidence > 0.95


def test_roku_and_chromecast_and_apple_tv() -> None:
    roku = _guess(vendor="Roku, Inc", served_ports={8060}, ssdp_servers={"Roku/12.0.0 UPnP/1.0 Roku/12.0.0"})
    assert roku.type == "streaming_device" and roku.confidence > 0.85
    cast = _guess(
        vendor="Google, Inc.",
        user_agents={CRKEY_UA},
        mdns_services={"_googlecast._tcp"},
        served_ports={8008, 8009},
    )
    assert cast.type == "streaming_device" and "User-Agent mentions CrKey (Chromecast)" in cast.reasons
    apple_tv = _guess(
        vendor="Apple, Inc.",
        mdns_services={
            "_airplay._tcp",
            "_raop._tcp",
            "_companion-link._tcp",
            "_sleep-proxy._udp",
            "_mediaremotetv._tcp",
        },
    )
    assert apple_tv.type == "streaming_device" and apple_tv.confidence > 0.5


def test_samsung_tv_beats_samsung_phone() -> None:
    guess = _guess(
        vendor="Samsung Electronics Co.,Ltd", user_agents={TIZEN_UA}, mdns_services={"_airplay._tcp"}
    )
    assert guess.type == "smart_tv" and guess.confidence > 0.6
    assert "User-Agent mentions SmartTV" in guess.reasons


def test_router() -> None:
    guess = _guess(
        vendor="AVM GmbH",
        served_ports={53, 67, 80},
        hostname="fritz.box",
        ssdp_servers={"FRITZ!Box 7590 UPnP/1.0 AVM FRITZ!Box 7590 154.07.57"},
    )
    assert guess.type == "router" and guess.confidence > 0.95
    assert "serves port 67 (DHCP server, routers)" in guess.reasons


def test_game_consoles() -> None:
    xbox = _guess(vendor="Microsoft Corporation", user_agents={XBOX_UA}, dhcp_vendor_class="MSFT 5.0 XBOX")
    assert xbox.type == "game_console"
    assert "DHCP vendor class 'MSFT 5.0 XBOX' (Xbox)" in xbox.reasons
    assert _guess(vendor="Nintendo Co., Ltd.").type == "game_console"
    assert _guess(hostname="PS5-123").type == "game_console"


def test_raspberry_pi_server() -> None:
    guess = _guess(
        vendor="Raspberry Pi Trading Ltd",
        dhcp_vendor_class="dhcpcd-9.4.1:Linux-6.1.21-v8+:aarch64:BCM2835",
        served_ports={22},
    )
    assert guess.type == "server"
    assert "serves port 22 (SSH, servers)" in guess.reasons
    assert guess.reasons[-1].startswith("competing guess: iot")


def test_conflicting_evidence_lowers_confidence() -> None:
    laptop = _guess(vendor="Apple, Inc.", hostname="Johns-MacBook-Pro")
    conflicted = _guess(vendor="Apple, Inc.", hostname="Johns-MacBook-Pro", user_agents={IPHONE_UA})
    assert laptop.type == conflicted.type == "laptop"
    assert conflicted.confidence < laptop.confidence - 0.2
    assert conflicted.reasons[-1].startswith("competing guess: phone")
    # A Samsung MAC alone: phone or TV, barely either.
    samsung = _guess(vendor="Samsung Electronics Co.,Ltd")
    assert samsung.type == "phone" and samsung.confidence < 0.25
    assert samsung.reasons[-1] == "competing guess: smart_tv (0.25)"


def test_more_evidence_raises_confidence() -> None:
    base = {"vendor": "Hangzhou Hikvision Digital Technology Co.,Ltd."}
    one = _guess(**base).confidence
    two = _guess(**base, served_ports={554}).confidence
    three = _guess(**base, served_ports={554}, hostname="ipcam-garage").confidence
    assert one < two < three < 1.0


def test_same_source_counts_once() -> None:
    one = _guess(mdns_services={"_ipp._tcp"})
    many = _guess(mdns_services={"_ipp._tcp", "_ipps._tcp", "_printer._tcp", "_pdl-datastream._tcp"})
    assert one.confidence == many.confidence == pytest.approx(0.7)
    assert len(many.reasons) == 4


def test_hostname_tokens_need_boundaries() -> None:
    # "jonas" holds "nas", "cameron" holds "cam", "microsoft" holds "cros": none of those count.
    assert _guess(hostname="Jonas-Phone-x").type == "unknown"
    assert _guess(hostname="cameron-desk").type != "camera"
    assert _guess(user_agents={"Microsoft-CryptoAPI/10.0"}).type == "unknown"
    assert _guess(hostname="LivingRoomTV").type == "smart_tv"
    assert _guess(hostname="NAS01").type == "nas"


def test_long_hostile_values_are_shortened_in_reasons() -> None:
    guess = _guess(dhcp_vendor_class="android-dhcp-" + "9" * 300)
    assert guess.type == "phone"
    assert all(len(reason) < 120 for reason in guess.reasons)
