"""What a configuration problem looks like: the key path, what is wrong, where in the file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem. ``key`` is the dotted key path (``detectors.port_scan.vertical_ports``,
    ``capture.local_networks[2]``); ``line``/``column`` are set for TOML syntax errors, which
    have no key."""

    key: str
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"line {self.line}, column {self.column}: {self.message}"
        if self.key:
            return f"{self.key}: {self.message}"
        return self.message


class ConfigError(Exception):
    """A configuration that cannot be used, with every problem found (not only the first)."""

    def __init__(self, issues: Iterable[ConfigIssue], path: Path | None = None) -> None:
        self.issues = list(issues)
        self.path = path
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"configuration {self.path}" if self.path is not None else "configuration"
        count = len(self.issues)
        head = f"invalid {where} ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([head, *(f"  {issue}" for issue in self.issues)])
