"""RemoteSensor: the SensorLink of a daemon, over its Unix socket.

A reader thread turns the daemon's lines into events for the subscribers and answers for the
callers waiting in :meth:`call`. If the daemon goes away, waiting calls fail with CommandError and
subscribers get a NoticeEvent saying so; nothing is retried behind the operator's back.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from heimdal_tui.daemon.protocol import PROTOCOL, ProtocolError, decode, encode
from heimdal_tui.sensor.events import NoticeEvent, SensorEvent, from_wire
from heimdal_tui.sensor.link import CommandError, EventCallback

CALL_TIMEOUT = 15.0
MAX_BUFFERED = 1000
log = logging.getLogger(__name__)


class AttachFailed(Exception):
    """No daemon answers on the socket (or it speaks another protocol)."""


class RemoteSensor:
    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(str(self.path))
        except OSError as exc:
            self._sock.close()
            raise AttachFailed(f"cannot attach to the daemon at {self.path}: {exc.strerror or exc}") from None
        self._reader = self._sock.makefile("rb")
        try:
            hello = decode(self._reader.readline()).get("hello")
        except (OSError, ProtocolError) as exc:
            self._sock.close()
            raise AttachFailed(f"the daemon at {self.path} did not greet: {exc}") from None
        if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL:
            self._sock.close()
            raise AttachFailed(f"the daemon at {self.path} speaks another protocol ({hello!r})")
        self.hello = hello
        self._sock.settimeout(None)
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[Any]] = {}
        self._subscribers: list[EventCallback] = []
        self._buffered: list[SensorEvent] = []  # events that came before anyone subscribed
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="attach-reader", daemon=True)
        self._thread.start()

    # -- SensorLink --------------------------------------------------------------------------------
    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)
            buffered, self._buffered = self._buffered, []
        for event in buffered:
            callback(event)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def call(self, command: str, **args: Any) -> Any:
        if self.closed.is_set():
            raise CommandError("the console is no longer attached to the daemon")
        number = next(self._ids)
        future: Future[Any] = Future()
        with self._lock:
            self._pending[number] = future
        try:
            with self._send_lock:
                self._sock.sendall(encode({"id": number, "cmd": command, "args": args}))
        except OSError as exc:
            with self._lock:
                self._pending.pop(number, None)
            raise CommandError(f"the daemon went away: {exc.strerror or exc}") from None
        try:
            return future.result(timeout=CALL_TIMEOUT)
        except TimeoutError:
            raise CommandError(f"{command}: the daemon did not answer within {CALL_TIMEOUT:g} s") from None
        finally:
            with self._lock:
                self._pending.pop(number, None)

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    # -- reading ------------------------------------------------------------------------------------
    def _read(self) -> None:
        reason = "the daemon closed the connection"
        try:
            for line in self._reader:
                message = decode(line)
                if "event" in message:
                    self._deliver(from_wire(message["event"]))
                elif "id" in message:
                    with self._lock:
                        future = self._pending.get(message["id"]) if message["id"] is not None else None
                    if future is None:
                        continue
                    if message.get("ok"):
                        future.set_result(message.get("result"))
                    else:
                        future.set_exception(CommandError(str(message.get("error"))))
        except (OSError, ValueError, ProtocolError) as exc:
            reason = f"the connection to the daemon broke: {exc}"
        finally:
            was_closed = self.closed.is_set()
            self.closed.set()
            with self._lock:
                pending, self._pending = dict(self._pending), {}
            for future in pending.values():
                if not future.done():
                    future.set_exception(CommandError(reason))
            if not was_closed:
                self._deliver(
                    NoticeEvent("error", f"{reason}; monitoring goes on in the daemon. Attach again.")
                )

    def _deliver(self, event: SensorEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
            if not subscribers:
                if len(self._buffered) < MAX_BUFFERED:
                    self._buffered.append(event)
                return
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                log.exception("a subscriber of the daemon's events failed")
