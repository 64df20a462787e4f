"""Errors the capture layer raises, each with a message an operator can act on."""

from __future__ import annotations


class CaptureError(Exception):
    """Base class: capture could not start or continue."""


class CaptureFileError(CaptureError):
    """A capture file could not be read at all (missing, not a capture, unsupported)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class CapturePermissionError(CaptureError):
    """The process may not open a raw socket on the interface."""


class UnknownInterfaceError(CaptureError):
    """The named interface does not exist on this machine."""

    def __init__(self, name: str, available: list[str]) -> None:
        listing = ", ".join(available) if available else "(none found)"
        super().__init__(f"no network interface named {name!r}; interfaces here: {listing}")
        self.name = name
        self.available = available


class FilterError(CaptureError):
    """The BPF filter expression could not be compiled."""
