"""Prometheus metrics of a running sensor (``heimdal-tui daemon --metrics HOST:PORT``).

A custom collector reads the session's latest status (built on the sensor's thread, handed over
whole) at scrape time, so scraping never touches live engine state. The process collector adds
``process_resident_memory_bytes`` and ``process_cpu_seconds_total``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from heimdal_tui.sensor.session import SensorSession

DEFAULT_HOST = "127.0.0.1"


class MetricsError(Exception):
    pass


def parse_listen(text: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[V6]:PORT``; the host is localhost unless given."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, text
    host = host.strip("[]") or DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        raise MetricsError(
            f"--metrics {text!r}: the port must be a number (e.g. 9108 or 127.0.0.1:9108)"
        ) from None
    if not 0 < number < 65536:
        raise MetricsError(f"--metrics {text!r}: the port must be between 1 and 65535")
    return host, number


class SensorCollector(Collector):
    def __init__(self, session: SensorSession) -> None:
        self.session = session

    def collect(self) -> Iterator[Any]:
        status = self.session.status()
        packets = CounterMetricFamily("heimdal_packets", "Frames read by the pipeline")
        packets.add_metric([], status.frames)
        yield packets
        wire = CounterMetricFamily("heimdal_bytes", "Bytes on the wire read by the pipeline")
        wire.add_metric([], status.wire_bytes)
        yield wire
        drops = CounterMetricFamily("heimdal_drops", "Frames lost before the pipeline", labels=["where"])
        drops.add_metric(["kernel"], status.kernel_drops or 0)
        drops.add_metric(["buffer"], status.buffer_drops)
        yield drops
        errors = CounterMetricFamily("heimdal_decode_errors", "Frames that could not be decoded")
        errors.add_metric([], status.decode_errors)
        yield errors
        devices = GaugeMetricFamily("heimdal_devices", "Devices in the device table")
        devices.add_metric([], status.devices)
        yield devices
        rate = GaugeMetricFamily("heimdal_packets_per_second", "Packets per second over the last seconds")
        rate.add_metric([], status.packets_per_second)
        yield rate
        alerts = GaugeMetricFamily("heimdal_alerts", "Alerts held, by kind, severity and state",
                                   labels=["kind", "severity", "state"])  # fmt: skip
        for (kind, severity, state), count in sorted(self.session.alert_counts.items()):
            alerts.add_metric([kind, severity, state], count)
        yield alerts
        detector = CounterMetricFamily("heimdal_detector_errors", "Detector runs that raised")
        detector.add_metric([], status.detector_errors)
        yield detector
        learning = GaugeMetricFamily(
            "heimdal_learning_ratio", "How far the sensor is through its learning period"
        )
        learning.add_metric([], status.learning)
        yield learning
        store = GaugeMetricFamily("heimdal_store_degraded", "1 while the store cannot be written")
        store.add_metric([], 0 if status.store in (None, "ok") else 1)
        yield store
        yield from self._sync()

    def _sync(self) -> Iterator[Any]:
        link = self.session.sync
        configured = GaugeMetricFamily("heimdal_sync_configured", "1 when the Asgard link is configured")
        configured.add_metric([], 1 if link is not None and link.configured else 0)
        yield configured
        if link is None or not link.configured:
            return
        sync = link.status()
        depth = GaugeMetricFamily("heimdal_sync_queue_depth", "Items waiting to go to Asgard")
        depth.add_metric([], sync.depth)
        yield depth
        for name, value, text in (
            ("heimdal_sync_sent", sync.sent, "Items Asgard accepted"),
            ("heimdal_sync_failed", sync.failed, "Sending attempts that failed"),
            ("heimdal_sync_retried", sync.retried, "Items sent again after a failure"),
            ("heimdal_sync_dropped", sync.dropped, "Items dropped (queue full, or by the operator)"),
        ):
            counter = CounterMetricFamily(name, text)
            counter.add_metric([], value)
            yield counter
        auth = GaugeMetricFamily("heimdal_sync_auth_failed", "1 when Asgard refused the API key")
        auth.add_metric([], 1 if sync.state == "auth_failed" else 0)
        yield auth


def serve_metrics(session: SensorSession, listen: str) -> tuple[Any, str]:
    """Start the /metrics HTTP server; (server, address as text). MetricsError when it cannot."""
    host, port = parse_listen(listen)
    registry = CollectorRegistry()
    registry.register(SensorCollector(session))
    registry.register(ProcessCollector(registry=None))
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise MetricsError(
            f"--metrics {listen}: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return server, f"http://{host}:{server.server_port}/metrics"
