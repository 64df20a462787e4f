"""An immutable view of the device table for output and display: one row per device.

Built from the polars state tables plus the identity directory; consumers (the analyze command,
the console, detectors) read this and never the live tables.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import polars as pl

from heimdal_tui.devices.directory import DeviceDirectory
from heimdal_tui.devices.locality import address_text, mac_text
from heimdal_tui.devices.table import DeviceTable

TOP_PEERS = 10
MAC_KEY_LIMIT = 1 << 48

SNAPSHOT_SCHEMA_DOC = {
    "device": "stable key: the MAC as an integer, or an IP-derived key for devices seen without one",
    "mac": "MAC address (aa:bb:cc:dd:ee:ff) or null",
    "ips": "addresses the device used (IPv4 and IPv6)",
    "vendor": "IEEE OUI registrant of the MAC, or null (unknown or locally administered MAC)",
    "randomized_mac": "true when the MAC is locally administered (often a phone's private address)",
    "hostname": "best name: DHCP > mDNS > NetBIOS > DNS answers",
    "hostname_source": "where that name came from",
    "device_type": "guessed type (phone, laptop, smart_tv, printer, camera, smart_plug, nas, ...)",
    "device_type_confidence": "0..1",
    "device_type_reasons": "the clues behind the guess",
    "first_seen / last_seen": "ISO 8601 UTC capture time",
    "packets_in / packets_out / bytes_in / bytes_out": "frames and bytes on the wire",
    "bps_10s / bps_1m / bps_5m": "bytes per second over the last 10 s, 1 min, 5 min of capture time",
    "peers": "number of distinct peer addresses",
    "top_peers": "the busiest peers: address, name (from DNS/SNI/HTTP), packets, bytes",
    "ports": "services used (proto/port as client) and served (as server)",
    "protocols": "protocol names seen (tcp, udp, icmp, arp, ...)",
    "dns_names": "number of distinct names looked up (DNS) or contacted (TLS SNI, HTTP Host)",
}


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def snapshot(table: DeviceTable, directory: DeviceDirectory, top_peers: int = TOP_PEERS) -> list[dict]:
    """Every device as a plain dict (JSON-ready), busiest first."""
    if table.devices.height == 0:
        return []
    # Every order below breaks ties by key: the tables' row order is arbitrary (hash aggregation).
    devices = table.devices.join(table.rates(), on="device", how="left").sort(
        [pl.col("bytes_in") + pl.col("bytes_out"), pl.col("device")], descending=[True, False]
    )
    ips = _grouped(
        table.ips.sort("first_seen", "ip_hi", "ip_lo"), lambda r: address_text(r["ip_hi"], r["ip_lo"])
    )
    protocols = _grouped(
        table.protocols.sort(["packets", "protocol"], descending=[True, False]), lambda r: r["protocol"]
    )
    ports = _grouped(
        table.ports.sort(["flows", "proto", "port", "role"], descending=[True, False, False, False]),
        lambda r: (
            f"{'tcp' if r['proto'] == 6 else 'udp' if r['proto'] == 17 else r['proto']}/{r['port']}"
            + ("" if r["role"] == "client" else " (served)")
        ),
    )
    peer_counts = dict(table.peers.group_by("device").len().iter_rows())
    name_counts = dict(table.names.group_by("device").len().iter_rows())
    busiest = (
        table.peers.with_columns((pl.col("bytes_in") + pl.col("bytes_out")).alias("bytes"))
        .sort(["bytes", "peer_hi", "peer_lo"], descending=[True, False, False])
        .group_by("device", maintain_order=True)
        .head(top_peers)
    )
    peer_names = directory.peer_names
    top: dict[int, list[dict]] = {}
    for r in busiest.iter_rows(named=True):
        peer = (int(r["peer_hi"]), int(r["peer_lo"]))
        top.setdefault(int(r["device"]), []).append(
            {
                "ip": address_text(*peer),
                "name": peer_names.get(peer),
                "packets": int(r["packets"]),
                "bytes": int(r["bytes"]),
            }
        )
    sparks = table.sparklines()
    for device, port in table.ports.filter(pl.col("role") == "server").select("device", "port").iter_rows():
        ident = directory.identities.get(int(device))
        if ident is not None and ident.evidence.add_served_port(int(port)):
            ident.changed()
    out = []
    for r in devices.iter_rows(named=True):
        key = int(r["device"])
        ident = directory.identities.get(key)
        mac = int(r["mac"]) if r["mac"] else (key if key < MAC_KEY_LIMIT else 0)
        guess = ident.guess() if ident else None
        out.append(
            {
                "device": key,
                "mac": mac_text(mac) if mac else None,
                "ips": ips.get(key, []),
                "vendor": ident.evidence.vendor if ident else None,
                "randomized_mac": bool(ident.evidence.randomized_mac) if ident else False,
                "hostname": ident.hostname if ident else None,
                "hostname_source": ident.hostname_source if ident else None,
                "device_type": guess.type if guess else "unknown",
                "device_type_confidence": round(guess.confidence, 2) if guess else 0.0,
                "device_type_reasons": list(guess.reasons) if guess else [],
                "first_seen": iso(r["first_seen"]),
                "last_seen": iso(r["last_seen"]),
                "packets_in": int(r["packets_in"]),
                "packets_out": int(r["packets_out"]),
                "bytes_in": int(r["bytes_in"]),
                "bytes_out": int(r["bytes_out"]),
                "bps_10s": round(float(r["bps_10s"] or 0.0), 1),
                "bps_1m": round(float(r["bps_1m"] or 0.0), 1),
                "bps_5m": round(float(r["bps_5m"] or 0.0), 1),
                "peers": int(peer_counts.get(key, 0)),
                "top_peers": top.get(key, []),
                "ports": ports.get(key, []),
                "protocols": protocols.get(key, []),
                "dns_names": int(name_counts.get(key, 0)),
                "sparkline": sparks.get(key, []),
            }
        )
    return out


def _grouped(frame: pl.DataFrame, label: Callable[[dict[str, Any]], str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for r in frame.iter_rows(named=True):
        out.setdefault(int(r["device"]), []).append(label(r))
    return out
