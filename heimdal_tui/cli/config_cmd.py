"""`heimdal-tui config validate|path|show`: check, locate and print the configuration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from heimdal_tui.config import paths
from heimdal_tui.config.errors import ConfigError
from heimdal_tui.config.files import config_to_toml, load_config

PROG = "heimdal-tui config"


def add_arguments(subparsers: Any) -> None:
    """Register the ``config`` command on the top-level ``add_subparsers()`` action."""
    parser = subparsers.add_parser(
        "config",
        help="check, locate or print the configuration file",
        description="Check, locate or print the TOML configuration. Exit 0 when it is valid, 1 when "
        "it is not (every problem is printed, one per line), 2 on bad arguments.",
    )
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    p_validate = actions.add_parser(
        "validate",
        help="check the configuration and print every problem, one per line",
        description="Check the configuration: unknown keys, wrong types and values out of range are "
        "all reported, one per line, with their key path. Exit 0 when valid, 1 otherwise.",
    )
    _config_option(p_validate)
    actions.add_parser(
        "path",
        help="print where the configuration file is looked for",
        description="Print the default configuration path (used when --config is not given).",
    )
    p_show = actions.add_parser(
        "show",
        help="print the effective configuration as TOML, defaults filled in",
        description="Print the configuration in effect, as TOML, with every default filled in "
        "(including each registered detector's settings).",
    )
    _config_option(p_show)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        help="configuration file (default: the path `config path` prints)",
    )


def run(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    action = args.config_action
    if action == "path":
        out.write(f"{paths.default_config_path()}\n")
        return 0
    explicit: Path | None = args.config
    target = explicit if explicit is not None else paths.default_config_path()
    try:
        config = load_config(explicit)
    except ConfigError as exc:
        # validate's output is the list of problems; show's stdout is reserved for TOML.
        listing = out if action == "validate" else err
        for issue in exc.issues:
            listing.write(f"{target}: {issue}\n")
        count = len(exc.issues)
        err.write(f"{PROG} {action}: {target}: {count} problem{'s' if count != 1 else ''}\n")
        return 1
    if action == "validate":
        note = "" if target.exists() else " (no file: built-in defaults)"
        out.write(f"config OK: {target}{note}\n")
        return 0
    if action == "show":
        out.write(config_to_toml(config, all_detectors=True))
        return 0
    err.write(f"{PROG}: unknown action {action!r}\n")
    return 2
