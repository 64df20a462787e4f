"""BatchContext: what one batch of traffic did, resolved to devices, as detectors see it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from heimdal_tui.decode.app.dns import DnsMessage
from heimdal_tui.decode.app_select import AppEvent
from heimdal_tui.devices.locality import Locality


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """How an alert names a device: its key, MAC, an address, a name and its guessed type."""

    key: int
    mac: str | None
    ip: str | None
    name: str | None
    type: str = "unknown"


@dataclass(slots=True)
class BatchContext:
    """Everything a detector may look at for one batch.

    - ``now``: capture time of the newest packet (detectors work in capture time, so a replay
      behaves like live traffic).
    - ``packets``: the decoded header columns (see decode.headers.PACKET_COLUMNS) plus ``src_dev``
      and ``dst_dev``: the device key of the sending / receiving local device, 0 when that side is
      not a local device.
    - ``new_flows`` / ``ended_flows``: flows that started / ended in this batch (columns of
      flows.table.CONN_SCHEMA) plus ``orig_dev`` and ``resp_dev`` (0 when not a local device).
    - ``app_events``: parsed application messages, with ``app_devices[i]`` the sending device of
      ``app_events[i]`` (None when the sender is not a local device).
    - ``new_devices``: device keys seen for the first time.
    - ``device_ref(key)``, ``peer_name(hi, lo)``: identity lookups.
    - :meth:`dns_queries`: where the DNS queries are among ``app_events``.
    """

    now: float
    packets: pl.DataFrame
    new_flows: pl.DataFrame
    ended_flows: pl.DataFrame
    app_events: list[AppEvent]
    app_devices: list[int | None]
    new_devices: list[int]
    locality: Locality
    device_ref: Callable[[int], DeviceRef]
    peer_name: Callable[[int, int], str | None]
    first_ts: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)
    _dns_queries: list[int] | None = field(default=None, init=False, repr=False, compare=False)

    def dns_queries(self) -> list[int]:
        """Positions in ``app_events`` of the DNS queries to port 53 or 5355 (LLMNR): messages
        that are not responses. Found on first use, in one pass: the baselines (domains asked for)
        and dns_tunnel both read them, and they are a fraction of a batch's events."""
        found = self._dns_queries
        if found is None:
            ports = DNS_QUERY_PORTS
            found = self._dns_queries = [
                i
                for i, ev in enumerate(self.app_events)
                if ev.dport in ports and isinstance(msg := ev.message, DnsMessage) and not msg.is_response
            ]
        return found


DNS_QUERY_PORTS = frozenset({53, 5355})
