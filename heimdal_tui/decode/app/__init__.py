"""Bounded, defensive parsers for application payloads: DNS, DHCP, TLS SNI, HTTP, NetBIOS, SSDP."""
