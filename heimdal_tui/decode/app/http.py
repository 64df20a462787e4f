"""The request line, Host and User-Agent of a plain-text HTTP/1.x request.

Only the first :data:`MAX_SCAN` bytes of the payload are looked at and at most :data:`MAX_HEADERS`
header lines are read; header names are matched without regard to case and the first occurrence wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from heimdal_tui.common.text import safe_text
from heimdal_tui.decode.app.errors import MalformedPayload

__all__ = ["HTTP_METHOD_PREFIXES", "HttpRequest", "parse_http_request"]

HTTP_METHOD_PREFIXES: tuple[bytes, ...] = (
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
)

MAX_SCAN = 8192
MAX_HEADERS = 100
URI_LIMIT = 512
USER_AGENT_LIMIT = 512


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    uri: str
    host: str | None
    user_agent: str | None


def parse_http_request(payload: bytes) -> HttpRequest | None:
    """The HTTP/1.x request starting ``payload``, or None if it does not start with a request method.

    :class:`MalformedPayload` when the request line (within the first 8 KiB) lacks ``" HTTP/1."``.
    """
    data = bytes(payload[:MAX_SCAN])
    if not data.startswith(HTTP_METHOD_PREFIXES):
        return None
    method_len = data.index(b" ")
    lines = data.split(b"\n", MAX_HEADERS + 1)
    request_line = lines[0].rstrip(b"\r")
    version_at = request_line.rfind(b" HTTP/1.")
    if version_at < method_len:
        raise MalformedPayload("HTTP request line has no ' HTTP/1.' version")
    host: str | None = None
    user_agent: str | None = None
    for line in lines[1 : MAX_HEADERS + 1]:
        line = line.rstrip(b"\r")
        if not line:
            break
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        key = name.strip().lower()
        if key == b"host" and host is None:
            host = safe_text(value.strip())
        elif key == b"user-agent" and user_agent is None:
            user_agent = safe_text(value.strip(), USER_AGENT_LIMIT)
    return HttpRequest(
        method=data[:method_len].decode("ascii"),
        uri=safe_text(request_line[method_len + 1 : version_at], URI_LIMIT),
        host=host,
        user_agent=user_agent,
    )
