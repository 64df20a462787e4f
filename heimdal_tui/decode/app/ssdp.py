"""SSDP (UPnP discovery, UDP 1900): searches, announcements and search responses.

Only the first :data:`MAX_SCAN` bytes and :data:`MAX_HEADERS` header lines are read; header names
are matched without regard to case, the first occurrence wins and lines without a colon are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from heimdal_tui.common.text import safe_text

__all__ = ["SsdpMessage", "parse_ssdp"]

MAX_SCAN = 8192
MAX_HEADERS = 64
VALUE_LIMIT = 512

_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"M-SEARCH ", "M-SEARCH"),
    (b"NOTIFY ", "NOTIFY"),
    (b"HTTP/1.", "RESPONSE"),
)
_FIELDS = {
    b"server": "server",
    b"user-agent": "user_agent",
    b"location": "location",
    b"st": "st",
    b"nt": "st",
    b"usn": "usn",
}


@dataclass(frozen=True, slots=True)
class SsdpMessage:
    kind: str
    server: str | None
    user_agent: str | None
    location: str | None
    st: str | None
    usn: str | None


def parse_ssdp(payload: bytes) -> SsdpMessage | None:
    """The SSDP message in a UDP payload, or None when it is not an M-SEARCH, NOTIFY or response.

    ``st`` holds the ST header (searches, responses) or the NT header (announcements).
    """
    data = bytes(payload[:MAX_SCAN])
    kind = next((kind for prefix, kind in _KINDS if data.startswith(prefix)), None)
    if kind is None:
        return None
    found: dict[str, str] = {}
    for line in data.split(b"\n", MAX_HEADERS + 1)[1 : MAX_HEADERS + 1]:
        line = line.rstrip(b"\r")
        if not line:
            break
        name, sep, value = line.partition(b":")
        field = _FIELDS.get(name.strip().lower()) if sep else None
        if field is not None and field not in found:
            found[field] = safe_text(value.strip(), VALUE_LIMIT)
    return SsdpMessage(
        kind=kind,
        server=found.get("server"),
        user_agent=found.get("user_agent"),
        location=found.get("location"),
        st=found.get("st"),
        usn=found.get("usn"),
    )
