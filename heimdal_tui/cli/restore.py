"""`heimdal-tui restore PATH`: put a backup in place of the store (refused while the daemon runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from heimdal_tui.cli.service_args import add_location_options, locate

PROG = "heimdal-tui restore"


def add_arguments(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="replace the store by a backup (refused while the daemon runs; the old store kept as .bak)",
        description="Replace the store of the data directory by the backup PATH. Refused while a "
        "daemon runs for that directory (stop it first: sudo systemctl stop heimdal). PATH must be a "
        "heimdal store passing SQLite's integrity check, of a schema version this heimdal-tui can "
        "open (older ones are upgraded); the store it replaces is kept beside as "
        "heimdal.db.<time>.bak. Exit 0 when restored, 1 when refused or failed, 2 on bad arguments.",
    )
    parser.add_argument("path", metavar="PATH", type=Path, help="the backup file")
    add_location_options(parser)


def run(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    from heimdal_tui.service.backup import BackupError, restore_store

    out, err = stdout or sys.stdout, stderr or sys.stderr
    where = locate(args)
    if where.config_error and args.data_dir is None:
        err.write(f"{PROG}: {where.config_error}\n")
        return 2
    try:
        result = restore_store(args.path, where.data_dir)
    except BackupError as exc:
        err.write(f"{PROG}: {exc}\n")
        return 1
    text = f"restored {args.path} into {where.data_dir}: {result.summary.describe()}"
    if result.upgraded_from is not None:
        text += f" (upgraded from schema version {result.upgraded_from})"
    if result.replaced is not None:
        text += f"; the previous store is kept as {result.replaced}"
    out.write(text + "\n")
    return 0
