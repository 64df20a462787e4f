"""Making strings that a network peer controls safe to keep, log and show.

Hostnames, DNS names, User-Agents and the like arrive from the network: they may hold terminal
escape sequences, Unicode direction overrides, invalid UTF-8 or megabytes of junk. Every such string
goes through :func:`safe_text` once, where it is decoded, and is stored only in that form: control
characters become visible escapes and the length is bounded. Display code must still render them as
plain text (never as markup); this module only makes sure nothing in them can act on a terminal.
"""

from __future__ import annotations

import re

# Default bound for a peer-supplied string (a DNS name is at most 253 characters).
DEFAULT_LIMIT = 255
ELLIPSIS = "…"

# C0 controls, DEL, C1 controls, and the Unicode format characters that reorder or hide text
# (bidi embeddings/overrides/isolates, zero-width joiners, BOM, line/paragraph separators).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: str | bytes | bytearray | memoryview, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` decoded (bytes as UTF-8, invalid bytes as ``\\xNN``), escaped and bounded.

    The result holds no control or text-direction characters and at most ``limit`` characters
    (a cut string ends with an ellipsis).
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value[: limit * 4 + 4])
        text = raw.decode("utf-8", errors="backslashreplace")
    else:
        text = value[: limit * 4 + 4]
    if _UNSAFE.search(text):
        text = _UNSAFE.sub(_escape, text)
    if len(text) > limit:
        text = text[: max(limit - 1, 0)] + ELLIPSIS
    return text


def is_safe(text: str) -> bool:
    """True when ``text`` holds nothing :func:`safe_text` would escape."""
    return _UNSAFE.search(text) is None
