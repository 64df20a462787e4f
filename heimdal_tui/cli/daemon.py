"""`heimdal-tui daemon`: the sensor headless, for the service; consoles attach to it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from heimdal_tui.sensor.build import SetupError


def add_arguments(subparsers: Any) -> None:
    from heimdal_tui.cli import console

    parser = subparsers.add_parser(
        "daemon",
        help="run capture, detection, the store and sync headless; consoles attach with --attach",
        description="Run the sensor without a console: live capture (or --replay FILE... for demos "
        "and tests), detection, the store and the Asgard link. Consoles attach through "
        "<data-dir>/daemon.sock (`heimdal-tui --attach`). SIGTERM/SIGINT stop it cleanly (exit 0 "
        "within 5 s); SIGHUP reloads the configuration. Exit 1 when it cannot start (another daemon "
        "runs for the data dir, capture is not permitted, ...), 2 on bad arguments.",
    )
    console.add_sensor_arguments(parser)
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (a bare PORT listens on 127.0.0.1)",
    )
    sync = parser.add_mutually_exclusive_group()
    sync.add_argument(
        "--sync",
        dest="sync",
        action="store_true",
        default=None,
        help="send to Asgard even when replaying (live capture always does when configured)",
    )
    sync.add_argument("--no-sync", dest="sync", action="store_false", help="never send to Asgard")  # fmt: skip


def run(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    import dataclasses

    from heimdal_tui.cli.console import spec_from_args
    from heimdal_tui.daemon.run import Daemon, DaemonError

    err = stderr or sys.stderr
    try:
        spec = dataclasses.replace(spec_from_args(args), sync=args.sync)
    except SetupError as exc:
        err.write(f"heimdal-tui daemon: {exc}\n")
        return 2
    daemon = Daemon(spec, metrics=args.metrics, stderr=err)
    try:
        daemon.start()
    except (DaemonError, SetupError) as exc:
        err.write(f"heimdal-tui daemon: {exc}\n")
        return 1
    return daemon.run()


def data_dir_of(args: argparse.Namespace) -> Path:
    from heimdal_tui.config import effective_data_dir
    from heimdal_tui.sensor.build import load_sensor_config

    if args.data_dir is not None:
        return Path(args.data_dir).expanduser()
    config, _ = load_sensor_config(args.config)
    return Path(effective_data_dir(config)).expanduser()
