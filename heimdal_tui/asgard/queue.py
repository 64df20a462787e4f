"""The durable outbound queue, over the store's ``sync_queue`` table.

- Items are kept anonymized and serialized exactly as sent (the envelope of docs/asgard-api.md).
- Order: priority (critical alerts first, device summaries last), then age; one endpoint per batch.
- Full (``max_items`` undelivered): rejected items go first, then the lowest priority, oldest first;
  each one counted in ``dropped``. An item being sent is never dropped.
- Every attempt is counted per item with its last error; delivered items stay (their keys keep a
  re-enqueue from sending twice) until :meth:`prune_delivered`.
- Committed rows survive a restart or kill -9 (SQLite WAL); an item in flight when the sender died
  is still pending and is sent again with the same idempotency key, which Asgard de-duplicates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from heimdal_tui.asgard import contract
from heimdal_tui.devices.snapshot import iso
from heimdal_tui.store import Store


@dataclass(frozen=True, slots=True)
class QueuedItem:
    id: int
    kind: str
    priority: int
    key: str
    payload: str
    size: int
    attempts: int


def envelope(key: str, kind: str, created: float, data: Mapping[str, Any]) -> str:
    """An item as it travels (compact JSON, keys in this order)."""
    return json.dumps(
        {"idempotency_key": key, "kind": kind, "created": iso(created), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def batch_body(sensor_id: str, items: Iterable[QueuedItem]) -> bytes:
    """The request body of a batch: the stored item texts, byte for byte."""
    head = json.dumps({"sensor_id": sensor_id, "contract": contract.CONTRACT_VERSION}, separators=(",", ":"))
    return (head[:-1] + ',"items":[' + ",".join(item.payload for item in items) + "]}").encode()


class SyncQueue:
    def __init__(self, store: Store, max_items: int = 10_000) -> None:
        self.store = store
        self.max_items = max_items

    def enqueue(
        self,
        entries: Iterable[tuple[str, int, str, Mapping[str, Any]]],
        *,
        now: float | None = None,
        protect: Collection[int] = (),
    ) -> tuple[int, int]:
        """Queue ``(kind, priority, idempotency_key, data)`` entries; (inserted, dropped)."""
        when = time.time() if now is None else now
        rows = []
        for kind, priority, key, data in entries:
            if kind not in contract.ITEM_KINDS:
                raise ValueError(f"unknown item kind {kind!r} (one of {', '.join(contract.ITEM_KINDS)})")
            rows.append((kind, int(priority), key, envelope(key, kind, when, data)))
        return self.store.sync_enqueue(rows, max_items=self.max_items, now=when, protect=protect)

    def next_batch(
        self, now: float, limit: int, max_bytes: int = contract.MAX_BODY_BYTES, exclude: Collection[int] = ()
    ) -> list[QueuedItem]:
        # Room for the envelope around the items (sensor id, brackets, commas).
        budget = max(1, max_bytes - 256)
        rows = self.store.sync_next_batch(now, limit, budget, exclude)
        return [
            QueuedItem(
                r["id"],
                r["kind"],
                r["priority"],
                r["idempotency_key"],
                r["payload_json"],
                r["size"],
                r["attempts"],
            )
            for r in rows
        ]

    def next_due(self, exclude: Collection[int] = ()) -> float | None:
        return self.store.sync_next_due(exclude)

    def delivered(self, ids: list[int], now: float, retried: int = 0) -> int:
        return self.store.sync_mark_delivered(ids, now, {"retried": retried})

    def rejected(self, pairs: list[tuple[int, str]], now: float, retried: int = 0) -> int:
        return self.store.sync_mark_rejected(pairs, now, {"retried": retried})

    def failed(self, ids: list[int], error: str, next_attempt: float, retried: int = 0) -> int:
        return self.store.sync_mark_failed(ids, error, next_attempt, {"retried": retried})

    def retry_now(self, item_id: int | None, now: float) -> int:
        return self.store.sync_retry_now(item_id, now)

    def drop(self, item_id: int) -> bool:
        return self.store.sync_drop(item_id)

    def prune_delivered(self, older_than: float) -> int:
        """Forget items delivered before wall time ``older_than``; how many."""
        return self.store.prune_delivered(older_than)

    def item(self, item_id: int) -> dict[str, Any] | None:
        return self.store.sync_item(item_id)

    def items(self, limit: int) -> list[dict[str, Any]]:
        return self.store.sync_items(limit)

    def depth(self) -> int:
        return self.store.sync_count("pending")

    def rejected_count(self) -> int:
        return self.store.sync_count("rejected")

    def counters(self) -> dict[str, int]:
        return self.store.sync_counters()

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        return self.store.sync_keys(keys)
