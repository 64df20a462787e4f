"""`heimdal-tui analyze FILE...`: the whole pipeline, headless, as fast as it can go."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gc
import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from heimdal_tui.capture.errors import CaptureError
from heimdal_tui.capture.pcap_file import CaptureFile
from heimdal_tui.cli import analyze_sync
from heimdal_tui.cli.alert_output import write_jsonl, write_text
from heimdal_tui.cli.progress import ProgressBar
from heimdal_tui.common.durations import parse_duration
from heimdal_tui.common.memory import MemoryReleaser
from heimdal_tui.config import Config, ConfigError, load_config
from heimdal_tui.detect.drift import HISTORY_POINTS, DriftPoint
from heimdal_tui.detect.engine import DetectionEngine
from heimdal_tui.devices.locality import DEFAULT_LOCAL_NETWORKS, address_text, mac_text
from heimdal_tui.devices.snapshot import iso, snapshot
from heimdal_tui.flows.table import PROTO_NAMES
from heimdal_tui.pipeline.engine import Pipeline, PipelineSettings
from heimdal_tui.store import Store, StoreError, alert_record

DEVICE_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="pcap or pcapng capture files, read in order"
    )
    parser.add_argument(
        "--devices-out",
        metavar="PATH",
        help="write the final device table; format by suffix: .jsonl, .csv or .parquet",
    )
    parser.add_argument(
        "--flows-out",
        metavar="PATH",
        help="write every flow (connection) as JSON lines, in the spirit of Zeek's conn.log",
    )
    parser.add_argument(
        "--local-net",
        action="append",
        metavar="CIDR",
        help="a local network whose hosts are devices (repeatable; default: RFC 1918, "
        "169.254/16, fc00::/7, fe80::/10)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    detection = parser.add_argument_group("detection")
    detection.add_argument(
        "--format",
        choices=("text", "jsonl", "none"),
        default="text",
        help="alerts on stdout: a readable table (default), one JSON object per line, or nothing",
    )
    detection.add_argument(
        "--no-detect", action="store_true", help="run the packet pipeline only (no baselines, no alerts)"
    )
    detection.add_argument(
        "--learning-period",
        default="20m",
        metavar="DURATION",
        help="capture time each baseline learns before behaviour detectors judge it "
        "(e.g. 20m, 2h, 1d; default 20m: captures are short; the sensor's own default is 1d)",
    )
    detection.add_argument(
        "--save-baseline", metavar="PATH", help="write the baselines learned from these captures (JSON)"
    )
    detection.add_argument(
        "--baseline", metavar="PATH", help="detect with baselines saved earlier (they count as mature)"
    )
    detection.add_argument(
        "--intel",
        action="append",
        metavar="FILE",
        help="threat indicator list (IPs, CIDRs, domains; one per line, CSV or JSON lines); repeatable",
    )
    detection.add_argument(
        "--profiles", metavar="PATH", help="golden device-type profiles (JSON) seeding new devices' baselines"
    )
    detection.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="configuration file (default: the platform config path, when it exists)",
    )
    detection.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="a store to use: its baselines are applied, and this run's alerts, baselines and drift "
        "points are saved there (without it analyze leaves every store alone)",
    )
    analyze_sync.add_arguments(parser)


def run(args: argparse.Namespace, stderr: TextIO | None = None, stdout: TextIO | None = None) -> int:
    err = stderr or sys.stderr
    out = stdout or sys.stdout
    out_path = Path(args.devices_out) if args.devices_out else None
    if out_path is not None and out_path.suffix.lower() not in DEVICE_FORMATS:
        err.write(
            f"heimdal-tui analyze: --devices-out {out_path}: unknown format {out_path.suffix!r} "
            "(use .jsonl, .csv or .parquet)\n"
        )
        return 2
    try:
        config = load_analyze_config(getattr(args, "config", None))
    except ConfigError as exc:
        err.write(f"heimdal-tui analyze: {exc}\n")
        return 2
    sync = None
    if getattr(args, "sync", False):
        try:
            sync = analyze_sync.SyncRun.open(args, config, err)
        except analyze_sync.SyncError as exc:
            err.write(f"heimdal-tui analyze: {exc}\n")
            return 2
    try:
        # A capture file is a closed record: keep every device it shows (the device cap still bounds
        # memory) instead of evicting the idle ones as a long-running sensor does.
        limits = dataclasses.replace(config.devices.limits(), idle_timeout=float("inf"))
        networks = args.local_net or list(config.capture.local_networks) or list(DEFAULT_LOCAL_NETWORKS)
        settings = PipelineSettings(local_networks=tuple(networks), device_limits=limits)
        pipeline = Pipeline(settings)
    except ValueError as exc:
        err.write(f"heimdal-tui analyze: --local-net: {exc}\n")
        return 2
    engine = None
    store = None
    drift: list[tuple[int, DriftPoint]] = []
    if not args.no_detect:
        try:
            engine = build_engine(args, pipeline, err, config)
            if getattr(args, "data_dir", None) is not None:
                store = open_store(args.data_dir, engine, err)
                drift = collect_drift(engine)
        except AnalyzeError as exc:
            err.write(f"heimdal-tui analyze: {exc}\n")
            return 2

    flows_file = open(args.flows_out, "w", encoding="utf-8") if args.flows_out else None  # noqa: SIM115
    started = time.perf_counter()
    warnings: list[str] = []
    files_read = 0
    total_bytes = sum(_size(p) for p in args.files)
    progress = ProgressBar(err, total_bytes) if err.isatty() and not args.quiet else None
    done_bytes = 0
    collector = ThroughputGC()
    releaser = MemoryReleaser()
    try:
        for path in args.files:
            try:
                capture = CaptureFile(path)
            except CaptureError as exc:
                warnings.append(str(exc))
                continue
            for batch in capture.batches():
                collector.after_first_batch()
                result = pipeline.feed(batch)
                if engine is not None:
                    engine.process(result)
                if flows_file is not None:
                    _write_flows(flows_file, result.ended_flows)
                if progress is not None:
                    progress.update(done_bytes + capture.bytes_read, pipeline.stats.frames)
                releaser.maybe_release()
            done_bytes += capture.size
            warnings.extend(capture.warnings)
            if capture.frames_read:
                files_read += 1
            elif not capture.warnings:
                warnings.append(f"{path}: holds no packets")
        if engine is not None:
            engine.finish()
            ended = engine.last_ended_flows
        else:
            ended = pipeline.finish()
        if flows_file is not None:
            _write_flows(flows_file, ended)
    finally:
        collector.restore()
        if flows_file is not None:
            flows_file.close()
        if progress is not None:
            progress.close()
    elapsed = time.perf_counter() - started

    devices = snapshot(pipeline.devices, pipeline.directory)
    if out_path is not None:
        try:
            write_devices(devices, out_path)
        except OSError as exc:
            err.write(f"heimdal-tui analyze: cannot write {out_path}: {exc.strerror or exc}\n")
            return 1
    if engine is not None and args.save_baseline:
        try:
            Path(args.save_baseline).write_text(json.dumps(engine.book.to_dict()), encoding="utf-8")
        except OSError as exc:
            err.write(f"heimdal-tui analyze: cannot write {args.save_baseline}: {exc.strerror or exc}\n")
            return 1
    if store is not None and engine is not None:
        save_to_store(store, engine, drift)
        store.close()
    for warning in warnings:
        err.write(f"warning: {warning}\n")
    if engine is not None:
        alerts = sorted(engine.alerts.alerts.values(), key=lambda a: (a.first_seen, a.kind))
        if args.format == "jsonl":
            write_jsonl(alerts, out)
        elif args.format == "text":
            write_text(alerts, out)
        out.flush()
    if not args.quiet:
        err.write(summary(pipeline, len(devices), elapsed, engine))
    if sync is not None and sync.finish(engine, devices, err) and files_read:
        return 1
    if files_read == 0:
        err.write("heimdal-tui analyze: nothing was readable in the capture files given\n")
        return 1
    return 0


class AnalyzeError(Exception):
    pass


class ThroughputGC:
    """Python's garbage collector tuned for one long batch run, then put back as it was.

    Each batch allocates hundreds of thousands of short-lived objects, and the default thresholds
    (a collection every 700 allocations) scan the long-lived heap again and again; static tables
    loaded by the first batch (the OUI registry's tens of thousands of lists) would be scanned by
    every full collection. Collections every 20,000 allocations, and the heap as it stands after
    the first batch frozen out of them, cut the collector's time on the 1M-packet benchmark capture
    from about 1.1 s to 0.3 s (cycles are still found, later).
    """

    THRESHOLDS = (20_000, 10, 10)

    def __init__(self) -> None:
        self.saved = gc.get_threshold()
        self.batches = 0
        gc.set_threshold(*self.THRESHOLDS)

    def after_first_batch(self) -> None:
        self.batches += 1
        if self.batches == 2:
            gc.freeze()

    def restore(self) -> None:
        gc.unfreeze()
        gc.set_threshold(*self.saved)


def load_analyze_config(path: Path | None) -> Config:
    from heimdal_tui.detect.registry import register_settings

    register_settings()
    return load_config(path)


def open_store(data_dir: Path, engine: DetectionEngine, err: TextIO) -> Store:
    try:
        store = Store.open(data_dir)
    except StoreError as exc:
        raise AnalyzeError(f"--data-dir: {exc}") from None
    if store.recovered:
        err.write(f"warning: {store.recovered}\n")
    engine.drift.restore(store.drift_histories(HISTORY_POINTS))
    engine.load_baselines(store)
    return store


def collect_drift(engine: DetectionEngine) -> list[tuple[int, DriftPoint]]:
    """The run's drift points, as they come (written with the alerts at the end, in one
    transaction: the engine writes them as they come only when a store is attached, as the
    sensor does)."""
    points: list[tuple[int, DriftPoint]] = []
    engine.drift_subscribers.append(lambda device, point: points.append((device, point)))
    return points


def save_to_store(store: Store, engine: DetectionEngine, drift: list[tuple[int, DriftPoint]]) -> None:
    store.upsert_alerts([alert_record(a) for a in engine.alerts.alerts.values()])
    store.save_baselines([(key, base.to_dict(), base.profile) for key, base in engine.book.baselines.items()])
    store.add_drifts((device, p.ts, p.score, p.features) for device, p in drift)


def build_engine(
    args: argparse.Namespace, pipeline: Pipeline, err: TextIO, config: Config
) -> DetectionEngine:
    """The engine the console and the daemon build (sensor.build), from analyze's options."""
    from heimdal_tui.sensor.build import SetupError
    from heimdal_tui.sensor.build import build_engine as build_sensor_engine

    try:
        period = parse_duration(args.learning_period)
    except ValueError as exc:
        raise AnalyzeError(f"--learning-period: {exc}") from None
    try:
        return build_sensor_engine(
            pipeline,
            config,
            learning_period=period,
            intel_files=tuple(args.intel or ()),
            profiles_path=args.profiles,
            baseline_path=args.baseline,
            warn=lambda problem: err.write(f"warning: {problem}\n"),
        )
    except SetupError as exc:
        raise AnalyzeError(str(exc)) from None


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def summary(
    pipeline: Pipeline, device_count: int, elapsed: float, engine: DetectionEngine | None = None
) -> str:
    st = pipeline.stats
    pps = st.frames / elapsed if elapsed > 0 else 0.0
    lines = [
        f"packets      {st.frames:,}",
        f"bytes        {st.wire_bytes:,} on the wire ({st.captured_bytes:,} captured)",
        f"devices      {device_count:,}",
        f"flows        {pipeline.flows.flows_started:,}",
        f"decode errors {st.decode_error_count:,}"
        + (f" ({_top(st.decode_errors)})" if st.decode_errors else ""),
    ]
    if st.app_errors:
        lines.append(f"payload errors {sum(st.app_errors.values()):,} ({_top(st.app_errors)})")
    if st.first_ts is not None and st.last_ts is not None:
        lines.append(f"capture time {iso(st.first_ts)} .. {iso(st.last_ts)}")
    if engine is not None:
        alerts = list(engine.alerts.alerts.values())
        by_severity: dict[str, int] = {}
        for alert in alerts:
            by_severity[alert.severity.value] = by_severity.get(alert.severity.value, 0) + 1
        detail = ", ".join(
            f"{by_severity[s]} {s}" for s in ("critical", "high", "medium", "low") if s in by_severity
        )
        lines.append(f"alerts       {len(alerts):,}" + (f" ({detail})" if detail else ""))
        if engine.stats.detector_errors:
            lines.append(f"detector errors {engine.stats.detector_errors} (last: {engine.stats.last_error})")
        lines.append(detection_share(st.busy_seconds, engine.stats.busy_seconds))
    lines.append(f"elapsed      {elapsed:.2f} s ({pps:,.0f} packets/s)")
    return "".join(line + "\n" for line in lines)


def detection_share(pipeline_seconds: float, detection_seconds: float) -> str:
    """How much of the busy time detection took: the figure the speed bar is about (detection at
    most 30% of analyze's time, i.e. at most 0.43x the packet pipeline's)."""
    busy = pipeline_seconds + detection_seconds
    share = detection_seconds / busy if busy > 0 else 0.0
    return (
        f"detection    {detection_seconds:.2f} s of {busy:.2f} s busy ({share:.0%}; "
        f"the packet pipeline {pipeline_seconds:.2f} s)"
    )


def _top(counter: object) -> str:
    items = counter.most_common(3)  # type: ignore[attr-defined]
    return ", ".join(f"{reason}: {count}" for reason, count in items)


def _write_flows(handle: TextIO, flows: object) -> None:
    import polars as pl

    assert isinstance(flows, pl.DataFrame)
    for r in flows.sort("first_ts").iter_rows(named=True):
        record = {
            "uid": r["uid"],
            "ts": iso(r["first_ts"]),
            "duration": round(r["last_ts"] - r["first_ts"], 6),
            "proto": PROTO_NAMES.get(r["proto"], str(r["proto"])),
            "orig_h": address_text(r["orig_hi"], r["orig_lo"]),
            "orig_p": r["orig_p"] if r["icmp_type"] < 0 else r["icmp_type"],
            "resp_h": address_text(r["resp_hi"], r["resp_lo"]),
            "resp_p": r["resp_p"],
            "orig_pkts": r["orig_pkts"],
            "orig_ip_bytes": r["orig_ip_bytes"],
            "orig_bytes": r["orig_bytes"],
            "resp_pkts": r["resp_pkts"],
            "resp_ip_bytes": r["resp_ip_bytes"],
            "resp_bytes": r["resp_bytes"],
            "orig_mac": mac_text(r["orig_mac"]) if r["orig_mac"] else None,
            "resp_mac": mac_text(r["resp_mac"]) if r["resp_mac"] else None,
        }
        handle.write(json.dumps(record) + "\n")


CSV_LIST_SEPARATOR = " "


def write_devices(devices: Sequence[dict], path: Path) -> None:
    kind = DEVICE_FORMATS[path.suffix.lower()]
    if kind == "jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for row in devices:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    flat = [_flatten(row) for row in devices]
    if kind == "csv":
        buffer = io.StringIO()
        fields = list(flat[0]) if flat else ["device"]
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(flat)
        path.write_text(buffer.getvalue(), encoding="utf-8")
        return
    import polars as pl

    pl.DataFrame(devices).write_parquet(path) if devices else pl.DataFrame({"device": []}).write_parquet(path)


def _flatten(row: dict) -> dict:
    flat = {}
    for key, value in row.items():
        if key == "top_peers":
            flat[key] = CSV_LIST_SEPARATOR.join(p["ip"] for p in value)
        elif isinstance(value, list):
            flat[key] = CSV_LIST_SEPARATOR.join(str(v).replace(" ", "_") for v in value)
        else:
            flat[key] = value
    return flat
