"""forget_stale: the least recently used end of a map goes while it is stale, and no further."""

from __future__ import annotations

from collections import OrderedDict

from heimdal_tui.common.lru import forget_stale


def test_stale_entries_go_from_the_old_end_up_to_the_first_live_one():
    entries = OrderedDict([("a", 1), ("b", 2), ("c", 9), ("d", 1)])
    forget_stale(entries, lambda last: last < 5)
    assert list(entries) == ["c", "d"]  # d is stale too, but newer than the live c
    forget_stale(entries, lambda last: True)
    assert not entries
