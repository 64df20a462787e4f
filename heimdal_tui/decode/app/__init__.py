"""Bounded, defensive parsers for the application payloads worth reading (DNS, DHCP, TLS SNI, HTTP, NetBIOS, SSDP)."""
