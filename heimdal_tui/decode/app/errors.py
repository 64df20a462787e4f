"""The one exception the application payload parsers raise."""

from __future__ import annotations


class MalformedPayload(ValueError):
    """A payload that claims to be of a protocol but is truncated or inconsistent.

    The message says what is wrong and where (e.g. ``"DNS name pointer loop at offset 45"``); it holds
    no peer-supplied text, so it is safe to log as is.
    """
