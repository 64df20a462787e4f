"""The messages the console posts to itself: sensor events arriving, commands answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.message import Message

from heimdal_tui.sensor.events import DevicesEvent, DriftEvent, SensorEvent, StatusEvent, SyncEvent

# Snapshots: a newer one makes an older one still queued worthless. Alerts and notices are deltas.
_SNAPSHOTS = (StatusEvent, DevicesEvent, DriftEvent, SyncEvent)


class SensorUpdate(Message):
    """An event from the sensor (posted from the sensor's or the socket reader's thread)."""

    def __init__(self, event: SensorEvent) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        return (
            isinstance(message, SensorUpdate)
            and isinstance(self.event, _SNAPSHOTS)
            and type(message.event) is type(self.event)
        )


class CommandDone(Message):
    """A command sent to the sensor was answered: ``result``, or ``error`` (the operator's message)."""

    def __init__(
        self,
        command: str,
        result: Any = None,
        error: str | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.command = command
        self.result = result
        self.error = error
        self.on_done = on_done
        self.on_error = on_error
