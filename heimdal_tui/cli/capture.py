"""`heimdal-tui capture`: live capture (or a paced replay) through the pipeline, headless.

Prints a statistics line every few seconds on stderr (packets/s, devices, kernel and buffer drops,
decode errors); Ctrl-C ends the run cleanly with a summary. The operator console and the service
build on the same runner.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TextIO

from heimdal_tui.capture.errors import CaptureError
from heimdal_tui.capture.source import FrameSource
from heimdal_tui.cli.analyze import DEVICE_FORMATS, summary, write_devices
from heimdal_tui.devices.locality import DEFAULT_LOCAL_NETWORKS
from heimdal_tui.devices.snapshot import snapshot
from heimdal_tui.pipeline.engine import Pipeline, PipelineSettings
from heimdal_tui.pipeline.runner import PipelineRunner


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-i",
        "--interface",
        help="interface to capture on (default: the one holding the default route)",
    )
    parser.add_argument("-f", "--filter", metavar="BPF", help="capture filter, e.g. 'not port 22'")
    parser.add_argument(
        "--replay",
        nargs="+",
        metavar="FILE",
        help="replay capture files at their own pace instead of capturing live",
    )
    parser.add_argument(
        "--speed",
        default="1",
        help="replay speed factor (e.g. 10 for ten times faster) or 'max' (default: 1)",
    )
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    parser.add_argument(
        "--stats-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="statistics line interval (default 5)",
    )
    parser.add_argument("--devices-out", metavar="PATH", help="write the device table at the end")
    parser.add_argument("--local-net", action="append", metavar="CIDR", help="a local network (repeatable)")


def parse_speed(text: str) -> float | None:
    if text.strip().lower() in ("max", "inf", "0"):
        return None
    value = float(text)
    if value <= 0:
        raise ValueError("speed must be positive or 'max'")
    return value


def build_source(args: argparse.Namespace) -> FrameSource:
    if args.replay:
        from heimdal_tui.capture.replay import ReplaySource

        return ReplaySource(args.replay, speed=parse_speed(args.speed))
    from heimdal_tui.capture.live import LiveSource

    return LiveSource(args.interface, args.filter)


def run(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    err = stderr or sys.stderr
    out_path = Path(args.devices_out) if args.devices_out else None
    if out_path is not None and out_path.suffix.lower() not in DEVICE_FORMATS:
        err.write(f"heimdal-tui capture: --devices-out {out_path}: unknown format {out_path.suffix!r}\n")
        return 2
    try:
        pipeline = Pipeline(PipelineSettings(local_networks=tuple(args.local_net or DEFAULT_LOCAL_NETWORKS)))
        source = build_source(args)
    except (CaptureError, ValueError) as exc:
        err.write(f"heimdal-tui capture: {exc}\n")
        return 2

    runner = PipelineRunner(source, pipeline)
    stop = threading.Event()

    def _interrupt(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, _interrupt)
    err.write(f"heimdal-tui: {source.describe()}; Ctrl-C to stop\n")
    try:
        final = runner.run(
            stop=stop,
            duration=args.duration,
            on_tick=lambda s: print(s.line(), file=err, flush=True),
            tick=max(args.stats_every, 0.2),
        )
    except CaptureError as exc:
        err.write(f"heimdal-tui capture: {exc}\n")
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    for warning in source.stats.warnings:
        err.write(f"warning: {warning}\n")
    devices = snapshot(pipeline.devices, pipeline.directory)
    if out_path is not None:
        try:
            write_devices(devices, out_path)
        except OSError as exc:
            err.write(f"heimdal-tui capture: cannot write {out_path}: {exc.strerror or exc}\n")
            return 1
    err.write(summary(pipeline, len(devices), final.elapsed))
    kernel = "not reported" if final.kernel_drops is None else f"{final.kernel_drops:,}"
    err.write(f"dropped      kernel {kernel}, buffer {final.buffer_drops:,}\n")
    return 0
