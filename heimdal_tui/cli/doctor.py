"""`heimdal-tui doctor`: one line per check, exit 1 when something is wrong."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from heimdal_tui.cli.service_args import add_location_options, locate

PROG = "heimdal-tui doctor"


def add_arguments(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check that this machine can run the sensor, and that the sensor is well",
        description="Check capture permission, the interface, libpcap, compiled dependencies, the "
        "data directory, the store's integrity, disk space, the clock, Asgard reachability (when "
        "configured) and the daemon: one line each (ok, warn, fail or skip) with what to do when "
        "something is wrong. Exit 0 when nothing failed, 1 otherwise (--strict: warnings too), 2 on "
        "bad arguments. Run it as root or as the service user to see the service's store.",
    )
    add_location_options(parser)
    parser.add_argument(
        "-i",
        "--interface",
        metavar="IF",
        help="interface to check (default: [capture] interface, else the default route's)",
    )
    parser.add_argument(
        "--full", action="store_true", help="full integrity_check of the store (default: quick_check)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 on warnings as well")


def run(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    from heimdal_tui.service.doctor import DoctorContext, exit_status, run_checks, summary_line, timed

    out = stdout or sys.stdout
    where = locate(args)
    ctx = DoctorContext(
        data_dir=where.data_dir,
        config=where.config,
        interface=args.interface,
        config_path=where.config_path,
        config_error=where.config_error,
        full_integrity=args.full,
    )
    results, elapsed = timed(lambda: run_checks(ctx))
    for result in results:
        out.write(result.line() + "\n")
    out.write(summary_line(results, elapsed) + "\n")
    out.flush()
    return exit_status(results, strict=args.strict)
