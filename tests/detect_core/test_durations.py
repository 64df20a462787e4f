from __future__ import annotations

import pytest

from heimdal_tui.common.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("20m", 1200.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("0.5h", 1800.0),
    ],
)
def test_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "a day", "-5", "5x", "m5", "1h 30"])
def test_bad_durations_are_named(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format():
    assert [format_duration(s) for s in (86400, 7200, 1200, 45)] == ["1d", "2h", "20m", "45s"]
