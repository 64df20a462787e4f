"""The attach protocol: JSON lines over a local stream socket.

Server to console, one object per line:

- ``{"hello": {"protocol": 1, "version": "...", "pid": ..., "source": "..."}}`` first;
- ``{"event": <heimdal_tui.sensor.events.to_wire(event)>}`` for every sensor event (a new console
  first gets the whole current state, then changes as they happen);
- ``{"id": N, "ok": true, "result": ...}`` or ``{"id": N, "ok": false, "error": "..."}`` answering
  the console's command N.

Console to server: ``{"id": N, "cmd": "acknowledge", "args": {...}}``.

Lines are UTF-8 JSON without newlines inside; a line longer than MAX_LINE is refused (the peer is
not trusted to be well behaved, even on a local socket).
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL = 1
MAX_LINE = 64 * 1024 * 1024  # a DevicesEvent for thousands of devices is a few MB


class ProtocolError(Exception):
    pass


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise ProtocolError(f"a message of {len(line):,} bytes is larger than {MAX_LINE:,}")
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"not a JSON message: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message
