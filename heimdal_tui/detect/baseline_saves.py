"""Which baselines a save has to write: those that changed since the store last got them.

A mature baseline stops learning, so between two saves the only thing that moves on most of them
is ``last_seen``. Writing every baseline every minute anyway was ~1.5 MB of JSON a minute on a
1,000-device LAN: ~2 GB a day on the sensor's SD card for no new information. :class:`SaveTracker`
keeps a 16-byte digest of what each baseline held when it was last written (everything but
``last_seen``) and the ``last_seen`` written with it. A save then writes a baseline when

- what it learned changed (any table, a minute learned, frozen, its golden profile, ...), or
- it is new to the store, or
- its ``last_seen`` moved on by ``slack`` seconds of capture time or more since (an hour by default:
  the store's ``last_seen`` is at most that stale after a crash), or by any amount on a final save
  (the sensor stopping).

The digest is taken over the baseline's own JSON, so nothing that changes a baseline has to
remember to mark it: whatever the change, the JSON differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from heimdal_tui.detect.baseline import Baseline

# Capture-time seconds a baseline whose only change is last_seen waits before it is written again.
LAST_SEEN_SLACK = 3600.0

SaveItem = tuple[int, dict[str, Any], str | None]


def content_digest(data: dict[str, Any]) -> bytes:
    """The digest of a baseline's dict without ``last_seen``."""
    learned = {key: value for key, value in data.items() if key != "last_seen"}
    text = json.dumps(learned, separators=(",", ":"), ensure_ascii=False)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class SaveTracker:
    """What the store holds of each baseline (module docstring)."""

    __slots__ = ("_saved", "slack")

    def __init__(self, slack: float = LAST_SEEN_SLACK) -> None:
        self.slack = slack
        self._saved: dict[int, tuple[bytes, float]] = {}  # device -> (digest, last_seen written)

    def __len__(self) -> int:
        return len(self._saved)

    def mark_saved(self, baselines: Iterable[Baseline]) -> None:
        """Record ``baselines`` as the store holds them (e.g. just loaded from it)."""
        for base in baselines:
            self._saved[base.device] = (content_digest(base.to_dict()), base.last_seen)

    def forget(self, device: int) -> None:
        """The store no longer holds the device's baseline: the next save writes it, whatever it is."""
        self._saved.pop(device, None)

    def save(
        self,
        baselines: dict[int, Baseline],
        write: Callable[[Iterable[SaveItem]], object],
        *,
        final: bool = False,
    ) -> int:
        """Hand ``write`` the ``(device, dict, profile)`` of each baseline due (one at a time, as
        ``write`` takes them: a thousand dicts at once were tens of MB of short-lived objects), then
        record them as saved; how many. A ``write`` that raises records nothing, so the next save
        tries them again."""
        saved = self._saved
        for gone in saved.keys() - baselines.keys():
            del saved[gone]  # the book let it go; if it comes back it is written again
        written: list[tuple[int, bytes, float]] = []

        def due() -> Iterator[SaveItem]:
            for device, base in list(baselines.items()):
                data = base.to_dict()
                digest = content_digest(data)
                before = saved.get(device)
                if before is not None and before[0] == digest:
                    moved = base.last_seen - before[1]
                    if moved <= 0.0 or (moved < self.slack and not final):
                        continue
                written.append((device, digest, base.last_seen))
                yield device, data, base.profile

        write(due())
        for device, digest, last_seen in written:
            saved[device] = (digest, last_seen)
        return len(written)
