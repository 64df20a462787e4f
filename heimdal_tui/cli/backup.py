"""`heimdal-tui backup PATH`: an online, verified copy of the store (safe while the daemon runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from heimdal_tui.cli.service_args import add_location_options, locate

PROG = "heimdal-tui backup"


def add_arguments(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="copy the store to PATH (SQLite online backup, verified; safe while the daemon runs)",
        description="Copy the store of the data directory to PATH (a file, or a directory to put a "
        "time-stamped file in) with SQLite's online backup: a consistent snapshot even while the "
        "daemon writes. The copy is checked with integrity_check before it is kept; it is one file, "
        "readable by its owner only. Exit 0 when written, 1 when it failed, 2 on bad arguments.",
    )
    parser.add_argument("path", metavar="PATH", type=Path, help="backup file or directory")
    add_location_options(parser)
    parser.add_argument("--force", action="store_true", help="replace PATH if it exists")


def run(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    from heimdal_tui.service.backup import BackupError, backup_store

    out, err = stdout or sys.stdout, stderr or sys.stderr
    where = locate(args)
    if where.config_error and args.data_dir is None:
        err.write(f"{PROG}: {where.config_error}\n")
        return 2
    try:
        target, summary = backup_store(where.data_dir, args.path, overwrite=args.force)
    except BackupError as exc:
        err.write(f"{PROG}: {exc}\n")
        return 1
    out.write(f"backed up {where.data_dir} to {target}: {summary.describe()}, integrity ok\n")
    return 0
