"""An alert's evidence packed as JSON once nothing folds into the alert any more.

A sensor holds thousands of alerts (``max_open_alerts``), and most of them are settled: their
correlation window is over, so their evidence never changes again. As a dict of Python objects an
evidence takes ~700 bytes; packed as its UTF-8 JSON it takes ~300. It is read rarely (the console's
evidence screen, a false-positive verdict, a sync), and each read decodes it.

The alert's JSON stays the same: evidence is JSON by contract (the store and the JSON lines output
write it with ``json.dumps``), so packing changes only Python types a reader might look at: tuples
come back as lists. Evidence that does not encode (a detector's bug) stays a dict.
"""

from __future__ import annotations

import json
from collections.abc import ItemsView, Iterator, Mapping
from typing import Any


class PackedEvidence(Mapping[str, Any]):
    """Read-only evidence decoded from its JSON on every read."""

    __slots__ = ("_json",)

    def __init__(self, packed: bytes) -> None:
        self._json = packed

    def unpacked(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self._json)
        return loaded

    def __getitem__(self, key: str) -> Any:
        return self.unpacked()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.unpacked())

    def __len__(self) -> int:
        return len(self.unpacked())

    def items(self) -> ItemsView[str, Any]:
        return self.unpacked().items()  # one decode, not one per key

    def __repr__(self) -> str:
        return f"PackedEvidence({self.unpacked()!r})"


def pack_evidence(evidence: Mapping[str, Any]) -> Mapping[str, Any]:
    """``evidence`` packed (itself when it is packed already or does not encode as JSON)."""
    if isinstance(evidence, PackedEvidence):
        return evidence
    try:
        text = json.dumps(evidence, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        return evidence
    return PackedEvidence(text.encode("utf-8"))


def plain_evidence(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """``evidence`` as a dict (what JSON encoders and the console take)."""
    if isinstance(evidence, PackedEvidence):
        return evidence.unpacked()
    return evidence if isinstance(evidence, dict) else dict(evidence)
