"""Where Heimdal keeps its files: the one place that decides (and that tests patch).

Both follow the platform's conventions through platformdirs: on Linux ``~/.local/share/heimdal-tui``
for data (the SQLite store) and ``~/.config/heimdal-tui/config.toml`` for the configuration, moved
by ``XDG_DATA_HOME`` / ``XDG_CONFIG_HOME``.
"""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_config_dir, user_data_dir

APP_NAME = "heimdal-tui"
CONFIG_FILENAME = "config.toml"


def default_data_dir() -> Path:
    """The directory holding the store when the configuration names none."""
    return Path(user_data_dir(APP_NAME))


def default_config_path() -> Path:
    """The configuration file read when no ``--config`` is given."""
    return Path(user_config_dir(APP_NAME)) / CONFIG_FILENAME
