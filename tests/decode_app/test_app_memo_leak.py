"""A malformed payload's outcome is remembered (memo and repeat cache) as the exception itself; it
must not carry its traceback, whose frames hold the capture chunk being parsed: a paced replay or
live capture in small batches once kept every 16 MiB chunk it had read alive this way."""

from __future__ import annotations

import gc

from heimdal_tui.decode.app.errors import MalformedPayload
from heimdal_tui.decode.app_select import _parse


def test_a_remembered_parse_error_holds_no_frames():
    # A DNS header claiming a question the payload does not hold.
    outcome = _parse(17, 40000, 53, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05abc")
    assert isinstance(outcome, MalformedPayload)
    assert outcome.__traceback__ is None
    assert outcome.__context__ is None
    assert not [r for r in gc.get_referents(outcome) if type(r).__name__ in ("frame", "traceback")]
