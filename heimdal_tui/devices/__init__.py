"""The rolling device table: local hosts, their identity, traffic counters and peers."""
