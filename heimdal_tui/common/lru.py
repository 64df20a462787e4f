"""Least-recently-used maps: forgetting their stale end."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def forget_stale(entries: OrderedDict[K, V], stale: Callable[[V], bool]) -> None:
    """Drop entries from the least recently used end of ``entries`` while ``stale`` says so; the
    first live one stops the scan (entries more recently used than it are not looked at)."""
    while entries and stale(next(iter(entries.values()))):
        entries.popitem(last=False)
