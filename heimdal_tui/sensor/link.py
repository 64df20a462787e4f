"""The one interface between a console and a sensor: events in, commands out.

``subscribe(callback)`` delivers every event to ``callback`` (from the sensor's thread, or the
socket reader's: the callback must be thread-safe and quick; the console posts a message).
``call(command, **args)`` runs one named command (see ``heimdal_tui.sensor.commands``) and returns
its JSON-ready result, or raises CommandError with a message for the operator. Both work the same
in-process (SensorSession) and over the daemon's socket (RemoteSensor).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from heimdal_tui.sensor.events import SensorEvent

EventCallback = Callable[[SensorEvent], None]


class CommandError(Exception):
    """A command could not be carried out; the message says why, for the operator."""


class SensorLink(Protocol):
    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Start delivering events to ``callback``; returns a function that stops it. A new
        subscriber first gets the current state (status, devices, every alert, drift, sync)."""
        ...

    def call(self, command: str, **args: Any) -> Any:
        """Run ``command`` with JSON-ready ``args``; its JSON-ready result. Blocks until done."""
        ...

    def close(self) -> None:
        """Stop this link (the in-process sensor stops; a remote one just disconnects)."""
        ...
