"""Theme files: TOML in themes/ (and the user's config dir), validated, turned into Textual themes.

Textual has no theme-file loader. A file here is a flat table of colours plus optional
``[variables]``; anything wrong (bad TOML, an unknown key, a colour Textual cannot parse) is
reported with the file and the key, and that file is skipped: the console falls back to its default
theme with a notification, never a crash.

Severity colours come from the variables ``sev-critical``, ``sev-high``, ``sev-medium`` and
``sev-low`` when a theme defines them, else from its error / warning / accent / foreground colours.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_config_dir
from textual.color import Color, ColorParseError
from textual.theme import Theme

import heimdal_tui
from heimdal_tui.config.paths import APP_NAME

DEFAULT_THEME = "heimdal-dark"
COLOUR_KEYS = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
_OTHER_KEYS = {"name": str, "dark": bool, "luminosity_spread": float, "text_alpha": float}
MAX_THEME_FILE = 64 * 1024


@dataclass(frozen=True, slots=True)
class ThemeProblem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"theme file {self.path}: {self.message}"


def theme_dirs() -> list[Path]:
    """Where theme files are looked for: the project's themes/ folder, then the user's."""
    bundled = Path(heimdal_tui.__file__).resolve().parent.parent / "themes"
    return [bundled, Path(user_config_dir(APP_NAME)) / "themes"]


def load_themes(dirs: list[Path] | None = None) -> tuple[list[Theme], list[ThemeProblem]]:
    """Every valid theme in ``dirs`` (later directories override earlier ones by name), and the
    problems of the files that are not."""
    themes: dict[str, Theme] = {}
    problems: list[ThemeProblem] = []
    for directory in dirs if dirs is not None else theme_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                theme = load_theme(path)
            except ThemeFileError as exc:
                problems.append(ThemeProblem(path, str(exc)))
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems


class ThemeFileError(Exception):
    pass


def load_theme(path: Path) -> Theme:
    try:
        if path.stat().st_size > MAX_THEME_FILE:
            raise ThemeFileError(f"larger than {MAX_THEME_FILE // 1024} KiB")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeFileError(f"cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ThemeFileError("not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"not valid TOML ({exc})") from None
    return theme_from_dict(data)


def theme_from_dict(data: dict[str, object]) -> Theme:
    problems: list[str] = []
    values: dict[str, object] = {}
    for key, value in data.items():
        if key == "variables":
            continue
        if key in COLOUR_KEYS:
            if not isinstance(value, str) or not _is_colour(value):
                problems.append(f'{key}: {value!r} is not a colour (use e.g. "#1e1e2e" or "ansi_red")')
            else:
                values[key] = value
        elif key in _OTHER_KEYS:
            expected = _OTHER_KEYS[key]
            ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
            if not ok or isinstance(value, bool) is not (expected is bool):
                problems.append(f"{key}: expected {expected.__name__}, got {value!r}")
            else:
                values[key] = float(value) if expected is float else value  # type: ignore[arg-type]
        else:
            problems.append(
                f"unknown key {key!r} (allowed: {', '.join([*_OTHER_KEYS, *COLOUR_KEYS, 'variables'])})"
            )
    name = values.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append("name: required (a non-empty string)")
    if "primary" not in values and "primary" not in [p.split(":")[0] for p in problems]:
        problems.append("primary: required (a colour)")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        problems.append('variables: expected a table of name = "value"')
        variables = {}
    for key, value in variables.items():
        if not isinstance(value, str):
            problems.append(f"variables.{key}: expected a string")
    if problems:
        raise ThemeFileError("; ".join(problems))
    return Theme(variables={str(k): str(v) for k, v in variables.items()}, **values)  # type: ignore[arg-type]


def _is_colour(text: str) -> bool:
    try:
        Color.parse(text)
    except ColorParseError:
        return False
    return True


def colours(variables: dict[str, str]) -> dict[str, str]:
    """The theme's CSS variables that are colours, as Rich can take them: translucent ones
    (Textual writes "#e0e0e099") are blended onto the background. Cached per set of variables:
    screens ask on every redraw, and parsing ~150 values each time is not free."""
    key = tuple(sorted(variables.items()))
    cached = _PALETTES.get(key)
    if cached is None:
        background = _parse(variables.get("background", "#000000")) or Color(0, 0, 0)
        cached = {}
        for name, value in variables.items():
            colour = _parse(value) if value.startswith(_COLOUR_PREFIXES) else None
            if colour is not None:
                cached[name] = (background + colour).hex6 if colour.a < 1 else colour.hex6
        if len(_PALETTES) > 16:
            _PALETTES.clear()
        _PALETTES[key] = cached
    return cached


_PALETTES: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
_COLOUR_PREFIXES = ("#", "rgb", "hsl", "ansi_")


def _parse(value: str) -> Color | None:
    try:
        return Color.parse(value)
    except ColorParseError:
        return None


def severity_styles(variables: dict[str, str]) -> dict[str, str]:
    """Rich styles for the four severities under the current theme's CSS variables."""
    palette = colours(variables)
    fallback = {
        "critical": palette.get("error", "red"),
        "high": palette.get("warning", "yellow"),
        "medium": palette.get("accent", "blue"),
        "low": palette.get("foreground-muted", palette.get("foreground", "white")),
    }
    return {
        sev: ("bold " if sev in ("critical", "high") else "") + palette.get(f"sev-{sev}", colour)
        for sev, colour in fallback.items()
    }
