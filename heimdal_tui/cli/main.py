"""The `heimdal-tui` command."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from heimdal_tui import __version__
from heimdal_tui.common.memory import fix_mmap_threshold


def build_parser() -> argparse.ArgumentParser:
    from heimdal_tui.cli import analyze, capture, config_cmd, console

    parser = argparse.ArgumentParser(
        prog="heimdal-tui",
        description="Heimdal edge sensor: learns how each LAN device behaves and flags what deviates. "
        "Without a command, opens the operator console (live capture, or --replay FILE...).",
    )
    parser.add_argument("--version", action="version", version=f"heimdal-tui {__version__}")
    console.add_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_analyze = sub.add_parser(
        "analyze",
        help="run the pipeline headless over capture files and summarise",
        description="Run the whole pipeline over pcap/pcapng files as fast as possible. A summary "
        "goes to stderr (with a progress bar when stderr is a terminal). Exit 0 when the captures "
        "were read, 1 when nothing was readable, 2 on bad arguments.",
    )
    analyze.add_arguments(p_analyze)
    p_capture = sub.add_parser(
        "capture",
        help="capture live (or replay at capture pace) through the pipeline, headless, with statistics",
        description="Capture on an interface (or replay files at their own pace) through the whole "
        "pipeline without the console, printing statistics on stderr. Exit 0 on a clean stop (Ctrl-C, "
        "--duration, end of replay), 1 when capture failed (e.g. no permission), 2 on bad arguments "
        "(unknown interface, bad filter).",
    )
    capture.add_arguments(p_capture)
    config_cmd.add_arguments(sub)
    from heimdal_tui.cli import asgard_dev

    asgard_dev.add_arguments(sub)
    from heimdal_tui.cli import backup, daemon, doctor, restore

    daemon.add_arguments(sub)
    doctor.add_arguments(sub)
    backup.add_arguments(sub)
    restore.add_arguments(sub)
    sub.add_parser(
        "samples",
        help="regenerate the bundled sample captures (seeded, deterministic); see `samples --help`",
    )
    return parser


# Command name -> module under heimdal_tui.cli with a run(args) function. Modules are imported only
# when their command runs, so `analyze` never pays for the console's imports.
COMMANDS = {
    "analyze": "analyze",
    "capture": "capture",
    "config": "config_cmd",
    "asgard-dev": "asgard_dev",
    "daemon": "daemon",
    "doctor": "doctor",
    "backup": "backup",
    "restore": "restore",
    None: "console",  # no command: the operator console
}


# Commands that run the sensor for hours in batches of a few thousand frames. There polars' thread
# pool costs more than it gains (waking workers per call): one thread measured 12-15% less wall
# time and ~8 MB less memory for 4,096-frame batches on 2 cores (POLARS_MAX_THREADS set by the
# operator wins); and a fixed mmap threshold keeps the heap from filling with holes. analyze (16
# MiB chunks) keeps both defaults: there the fixed threshold cost 40% more pipeline time.
SENSOR_COMMANDS = frozenset({None, "daemon"})
# polars' jemalloc keeps freed pages for 0.5-1.5 s before handing them back (polars' defaults, to
# which this is appended); each batch frees megabytes of short-lived frames, so the sensor's
# resident size carried ~5 MB of them. Handing them back at once costs ~3% of sensor time.
SENSOR_JEMALLOC_CONF = "dirty_decay_ms:0,muzzy_decay_ms:0"


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand argv names (its first word that is one), None for the console."""
    return next((word for word in argv if word in COMMANDS), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["samples"]:
        # The generator has its own options; hand them over untouched.
        from heimdal_tui.samples.cli import main as samples_main

        return samples_main(argv[1:])
    if _command_of(argv) in SENSOR_COMMANDS:
        fix_mmap_threshold()  # before the first big allocation: see heimdal_tui.common.memory
        if "polars" not in sys.modules:
            # Before polars is first imported: its thread pool is sized once, from the environment,
            # and so is its allocator (its own jemalloc, configured by _RJEM_MALLOC_CONF).
            os.environ.setdefault("POLARS_MAX_THREADS", "1")
            os.environ.setdefault("_RJEM_MALLOC_CONF", SENSOR_JEMALLOC_CONF)
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"heimdal_tui.cli.{COMMANDS[args.command]}")
    if args.command == "config":
        from heimdal_tui.detect.registry import register_settings

        register_settings()  # [detectors.*] tables are checked against the registered detectors
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        sys.stderr.write(f"heimdal-tui {args.command or ''}: interrupted\n".replace(" :", ":"))
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
