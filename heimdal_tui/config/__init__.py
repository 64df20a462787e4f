"""Configuration: one TOML file, read with tomllib, written with tomli-w, strictly validated.

Unknown keys are errors, types are strict (``true`` is not a number), ranges come from each field's
metadata, and every problem is reported at once with its key path. Paths: :mod:`.paths`.
"""

from heimdal_tui.config.errors import ConfigError, ConfigIssue
from heimdal_tui.config.files import (
    config_to_dict,
    config_to_toml,
    effective_data_dir,
    load_config,
    parse_config,
    save_config,
)
from heimdal_tui.config.model import (
    AlertsConfig,
    AsgardConfig,
    BaselineConfig,
    CaptureConfig,
    Config,
    DevicesConfig,
    IntelConfig,
    LoggingConfig,
    RetentionConfig,
    StoreConfig,
    UIConfig,
    register_detector_settings,
    registered_detectors,
)
from heimdal_tui.config.paths import default_config_path, default_data_dir
from heimdal_tui.config.validation import (
    config_from_dict,
    detector_settings,
    validate,
    with_detector_setting,
)

__all__ = [
    "AlertsConfig",
    "AsgardConfig",
    "BaselineConfig",
    "CaptureConfig",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "DevicesConfig",
    "IntelConfig",
    "LoggingConfig",
    "RetentionConfig",
    "StoreConfig",
    "UIConfig",
    "config_from_dict",
    "config_to_dict",
    "config_to_toml",
    "default_config_path",
    "default_data_dir",
    "detector_settings",
    "effective_data_dir",
    "load_config",
    "parse_config",
    "register_detector_settings",
    "registered_detectors",
    "save_config",
    "validate",
    "with_detector_setting",
]
