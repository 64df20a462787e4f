"""AttachServer: a SensorLink served over a local Unix socket, to any number of consoles.

Each console gets a reader thread (its commands, run one after another through the link) and a
writer thread fed by a bounded queue of encoded events and answers. A console that stops reading
(a frozen SSH session) fills its queue and is dropped, never slowing the sensor or the others.

The socket is created mode 0660: only the daemon's user and group may attach.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import stat
import threading
from pathlib import Path
from typing import Any

from heimdal_tui import __version__
from heimdal_tui.daemon.protocol import PROTOCOL, ProtocolError, decode, encode
from heimdal_tui.sensor.events import SensorEvent, to_wire
from heimdal_tui.sensor.link import CommandError, SensorLink

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660
CLIENT_QUEUE = 2000  # messages waiting for one console before it is dropped
_STOP = b""


class AttachError(Exception):
    """The socket cannot be served (another daemon has it, or the path cannot be bound)."""


class _Client:
    def __init__(self, server: AttachServer, conn: socket.socket, number: int) -> None:
        self.server = server
        self.conn = conn
        self.number = number
        self.outbox: queue.Queue[bytes] = queue.Queue(CLIENT_QUEUE)
        self.closed = threading.Event()
        self.unsubscribe: Any = None

    def start(self) -> None:
        threading.Thread(target=self._write, name=f"attach-{self.number}-out", daemon=True).start()
        threading.Thread(target=self._read, name=f"attach-{self.number}-in", daemon=True).start()

    def send(self, message: dict[str, Any]) -> None:
        if self.closed.is_set():
            return
        try:
            self.outbox.put_nowait(encode(message))
        except queue.Full:
            log.warning("console %d stopped reading; dropping it", self.number)
            self.close()

    def on_event(self, event: SensorEvent) -> None:
        self.send({"event": to_wire(event)})

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        if self.unsubscribe is not None:
            self.unsubscribe()
        with contextlib.suppress(queue.Full):
            self.outbox.put_nowait(_STOP)
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)
        self.server._forget(self)

    def _write(self) -> None:
        try:
            while True:
                data = self.outbox.get()
                if not data:  # _STOP: closing
                    break
                self.conn.sendall(data)
        except OSError:
            pass
        finally:
            self.close()
            with contextlib.suppress(OSError):
                self.conn.close()

    def _read(self) -> None:
        link = self.server.link
        reader = self.conn.makefile("rb")
        try:
            for line in reader:
                try:
                    message = decode(line)
                    number = message.get("id")
                    command = message.get("cmd")
                    args = message.get("args") or {}
                    if not isinstance(command, str) or not isinstance(args, dict):
                        raise ProtocolError("a command needs a name (cmd) and arguments (args)")
                except ProtocolError as exc:
                    self.send({"id": None, "ok": False, "error": f"bad message: {exc}"})
                    continue
                try:
                    result = link.call(command, **args)
                except CommandError as exc:
                    self.send({"id": number, "ok": False, "error": str(exc)})
                except Exception as exc:  # an engine bug must not take the daemon down
                    log.exception("command %s from console %d failed", command, self.number)
                    self.send({"id": number, "ok": False, "error": f"{command} failed: {type(exc).__name__}"})
                else:
                    self.send({"id": number, "ok": True, "result": result})
        except (OSError, ValueError):
            pass
        finally:
            self.close()


class AttachServer:
    """Serves ``link`` on the Unix socket ``path`` until :meth:`close`."""

    def __init__(self, link: SensorLink, path: Path, info: dict[str, Any] | None = None) -> None:
        self.link = link
        self.path = Path(path)
        self.info = info or {}
        self._clients: set[_Client] = set()
        self._lock = threading.Lock()
        self._count = 0
        self._sock = self._bind()
        self._thread = threading.Thread(target=self._accept, name="attach-accept", daemon=True)

    def _bind(self) -> socket.socket:
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise AttachError(f"{self.path} exists and is not a socket; not replacing it")
            if _answers(self.path):
                raise AttachError(f"another daemon is serving {self.path}")
            self.path.unlink()  # left by a daemon that died
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o117)  # the socket is born 0660: no window where others could connect
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            raise AttachError(f"cannot listen on {self.path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, SOCKET_MODE)
        sock.listen(16)
        return sock

    def start(self) -> None:
        self._thread.start()

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._count += 1
                client = _Client(self, conn, self._count)
                self._clients.add(client)
            client.send(
                {"hello": {"protocol": PROTOCOL, "version": __version__, "pid": os.getpid(), **self.info}}
            )
            client.start()
            client.unsubscribe = self.link.subscribe(client.on_event)
            log.info("console %d attached", client.number)

    def _forget(self, client: _Client) -> None:
        with self._lock:
            self._clients.discard(client)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
