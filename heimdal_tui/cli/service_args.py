"""The ``--data-dir`` and ``--config`` options shared by the service commands (doctor, backup,
restore), and how they decide the data directory: ``--data-dir``, else ``[store] data_dir`` of the
configuration, else the platform's default. The installed service uses /var/lib/heimdal and
/etc/heimdal/config.toml; pass those (or ``--config /etc/heimdal/config.toml``) to look at it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from heimdal_tui.config import Config, ConfigError, effective_data_dir, load_config


@dataclass(frozen=True, slots=True)
class Location:
    data_dir: Path
    config: Config
    config_path: Path | None
    config_error: str | None


def add_location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        help="the data directory holding the store (default: [store] data_dir of the configuration, "
        "else the platform's data directory; the service's is /var/lib/heimdal)",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        type=Path,
        help="configuration file (default: the path `heimdal-tui config path` prints; the service's is "
        "/etc/heimdal/config.toml)",
    )


def locate(args: argparse.Namespace) -> Location:
    """Never raises for a bad configuration: ``config_error`` says what is wrong (and the defaults
    are used), so a command that only needs ``--data-dir`` still works."""
    from heimdal_tui.detect.registry import register_settings

    register_settings()  # [detectors.*] tables are checked against the registered detectors
    config_path: Path | None = args.config
    try:
        config = load_config(config_path)
        error = None
    except ConfigError as exc:
        config = Config()
        error = "; ".join(str(issue) for issue in exc.issues) or str(exc)
    data_dir = args.data_dir if args.data_dir is not None else effective_data_dir(config)
    return Location(
        data_dir=Path(data_dir).expanduser(), config=config, config_path=config_path, config_error=error
    )
