#!/usr/bin/env python3
"""Dissect the first N packets of a capture with scapy, touching the fields `heimdal-tui analyze` uses.

    python3 benchmarks/scapy_dissect.py FILE [--packets N] [--no-tls]

The reference point for "what if the pipeline were written the obvious way": one Python object tree
per packet. Prints one JSON line on stdout: packets read, loop seconds (excluding scapy's import) and
packets/s, plus how many of each application field were found (a sanity check that the fields were
really reached).
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--packets", type=int, default=100_000, help="packets to read (default 100,000)")
    parser.add_argument(
        "--no-tls",
        action="store_true",
        help="leave TLS undissected (SNI not read): scapy's TLS layer is slow",
    )
    args = parser.parse_args(argv)

    t_import = time.perf_counter()
    from scapy.all import (
        DHCP,
        DNS,
        IP,
        TCP,
        UDP,
        Ether,
        IPv6,
        PcapReader,
        load_layer,
    )

    load_layer("http")
    from scapy.layers.http import HTTPRequest

    tls_ext = None
    if not args.no_tls:
        load_layer("tls")
        from scapy.layers.tls.extensions import TLS_Ext_ServerName

        tls_ext = TLS_Ext_ServerName
    imported = time.perf_counter()

    found = {"dns": 0, "sni": 0, "http_host": 0, "http_ua": 0, "dhcp_hostname": 0}
    sink = 0
    n = 0
    started = time.perf_counter()
    with PcapReader(args.file) as reader:
        for p in reader:
            ts = float(p.time)
            wire = p.wirelen or len(p)
            if Ether in p:
                eth = p[Ether]
                sink ^= hash((eth.src, eth.dst))
            proto = sport = dport = flags = None
            if IP in p:
                ip = p[IP]
                src, dst, proto = ip.src, ip.dst, ip.proto
            elif IPv6 in p:
                ip6 = p[IPv6]
                src, dst, proto = ip6.src, ip6.dst, ip6.nh
            else:
                src = dst = None
            if TCP in p:
                tcp = p[TCP]
                sport, dport, flags = tcp.sport, tcp.dport, int(tcp.flags)
            elif UDP in p:
                udp = p[UDP]
                sport, dport = udp.sport, udp.dport
            if DNS in p:
                qd = p[DNS].qd
                if qd:
                    found["dns"] += 1
                    sink ^= hash(qd[0].qname if isinstance(qd, list) else qd.qname)
            if HTTPRequest in p:
                req = p[HTTPRequest]
                if req.Host:
                    found["http_host"] += 1
                if req.User_Agent:
                    found["http_ua"] += 1
            if DHCP in p:
                for opt in p[DHCP].options:
                    if isinstance(opt, tuple) and opt[0] == "hostname":
                        found["dhcp_hostname"] += 1
            if tls_ext is not None and tls_ext in p:
                for name in p[tls_ext].servernames:
                    sink ^= hash(name.servername)
                    found["sni"] += 1
            sink ^= hash((ts, wire, src, dst, proto, sport, dport, flags))
            n += 1
            if n >= args.packets:
                break
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "packets": n,
                "loop_s": round(elapsed, 3),
                "import_s": round(imported - t_import, 3),
                "pps": round(n / elapsed, 1) if elapsed > 0 else None,
                "tls": tls_ext is not None,
                "found": found,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
