"""Seeded, deterministic scenario generator for sample_pcaps/.

``python -m heimdal_tui.samples --out sample_pcaps`` (or ``heimdal-tui samples``) rewrites the
committed captures and their ground truth; the same seed always gives byte-identical files.

Modules: ``scenario`` (devices, timeline, incidents, truth document), ``home_lan`` (the home-LAN
scenario), ``traffic`` and ``lan`` (seeded frame streams, TCP/TLS conversations, DHCP/ARP/mDNS/NTP
chores), ``protocols`` and ``packets`` (payload and frame bytes), ``writer`` (pcap output), ``cli``.
"""
