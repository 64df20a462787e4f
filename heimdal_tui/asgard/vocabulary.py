"""The words an anonymized payload may carry as they are: nothing outside these lists (or the
patterns in :mod:`.anonymizer`) leaves the network verbatim.

Evidence keys are the ones the detectors write; a key not listed is dropped with its value (fail
closed: a new detector field is left out until someone decides it is safe). Enumerated values are
the labels detectors put in evidence (service names, scan types, directions, ...).
"""

from __future__ import annotations

from heimdal_tui.detect.model import ALERT_KINDS
from heimdal_tui.devices.identity import DEVICE_TYPES

KNOWN_ALERT_KINDS = frozenset(ALERT_KINDS)
KNOWN_DEVICE_TYPES = frozenset(DEVICE_TYPES)

# Keys whose string values name the device itself: dropped whatever they hold.
DEVICE_NAME_KEYS = frozenset({"hostname", "name", "peer_name_local"})

EVIDENCE_KEYS = frozenset(
    {
        # arp_spoof
        "arp_op",
        "claimed_by",
        "claimed_ip",
        "claims_in_window",
        "flood",
        "gateway_impersonation",
        "gateway_mac",
        "latest_claimed_ip",
        "owner_last_active_s_ago",
        "owner_mac",
        "owner_since",
        "sender_mac",
        "silence_threshold_s",
        "unsolicited_replies",
        "victims",
        # beaconing
        "connections",
        "jitter",
        "jitter_tolerance",
        "max_interval_s",
        "max_jitter",
        "median_interval_s",
        "min_connections",
        "min_interval_s",
        "peer",
        "peer_name",
        "service",
        # behaviour detectors
        "baseline_active_hours",
        "baseline_countries",
        "baseline_destinations",
        "baseline_domains",
        "baseline_maturity",
        "baseline_median_bytes",
        "baseline_profile",
        "baseline_protocols",
        "baseline_samples",
        "baseline_services",
        "baseline_spread_bytes",
        "bytes_that_minute",
        "count",
        "country",
        "denied",
        "device_type",
        "direction",
        "examples",
        "first_seen",
        "hostname",
        "hour_utc",
        "ip",
        "known_devices",
        "learning_ended",
        "mac",
        "minute_start",
        "new_destination_values",
        "new_destinations",
        "new_services",
        "observed_bytes",
        "protocol",
        "ratio_to_median",
        "role",
        "threshold_bytes",
        "window_seconds",
        # brute_force
        "attempts",
        "distinct_source_ports",
        "per_minute",
        "port",
        "source",
        "target",
        # dns_tunnel
        "client",
        "domain",
        "mean_entropy",
        "mean_label_length",
        "min_entropy",
        "min_label_length",
        "min_signals",
        "min_txt_share",
        "min_unique",
        "qtypes",
        "queries",
        "servers_or_clients",
        "signals",
        "thresholds",
        "txt_null_any_share",
        "unique_names",
        # port_scan
        "answer_wait_s",
        "answered_rst",
        "distinct_hosts_unanswered",
        "distinct_ports",
        "distinct_targets_unanswered",
        "example_ports",
        "example_targets",
        "open_port_count",
        "open_ports",
        "probe_types",
        "scan_type",
        "scanner",
        # threat_intel
        "confidence",
        "critical_confidence",
        "expiry",
        "indicator",
        "indicator_type",
        "matched",
        "server",
        "where",
        # shared
        "span_s",
        "threshold",
        "window_s",
    }
)

ENUM_VALUES = frozenset(
    {
        # arp_spoof, volume, brute force, threat intel directions and roles
        "reply",
        "request",
        "in",
        "out",
        "inbound",
        "outbound",
        "served",
        "used",
        # port_scan scan and probe types
        "vertical",
        "horizontal",
        "icmp_sweep",
        "arp_sweep",
        "syn",
        "null",
        "fin",
        "xmas",
        "other_tcp",
        "udp",
        "echo",
        "arp_who_has",
        # dns_tunnel signals and record types
        "long",
        "random",
        "record_types",
        "A",
        "AAAA",
        "ANY",
        "CNAME",
        "HTTPS",
        "MX",
        "NS",
        "NULL",
        "PTR",
        "SOA",
        "SRV",
        "SVCB",
        "TXT",
        # threat_intel
        "flow",
        "dns_query",
        "dns_answer",
        "tls_sni",
        "http_host",
        "cidr",
        "domain",
        "ip",
        # new_device
        "baseline file",
        # service names (brute_force, protocol_anomaly)
        "FTP",
        "SSH",
        "Telnet",
        "SMTP",
        "POP3",
        "IMAP",
        "MS-RPC",
        "NetBIOS session",
        "SMB",
        "SOCKS",
        "MS SQL",
        "MySQL",
        "RDP",
        "Metasploit default",
        "PostgreSQL",
        "VNC",
        "IRC",
        "Winbox",
    }
)
