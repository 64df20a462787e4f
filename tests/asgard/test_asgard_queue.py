"""The durable queue on a real SQLite store: order, batching, the drop policy and its counter,
operator commands, per-item attempts and errors, pruning, and surviving a reopen."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from heimdal_tui.asgard.queue import SyncQueue, batch_body
from heimdal_tui.store import SCHEMA_VERSION, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "data") as opened:
        yield opened


def entry(n: int, priority: int = 20, kind: str = "anomaly") -> tuple[str, int, str, dict[str, int]]:
    return (kind, priority, f"key-{n}", {"n": n})


def test_schema_version_3_holds_the_link_tables(store: Store):
    assert SCHEMA_VERSION >= 3
    names = {r[0] for r in store._rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sync_queue", "sync_counters", "intel_indicators", "intel_profiles"} <= names


def test_highest_priority_first_oldest_first_one_kind_per_batch(store: Store):
    queue = SyncQueue(store)
    queue.enqueue([entry(1, 20), entry(2, 40), entry(3, 5, "device"), entry(4, 40), entry(5, 20)], now=100.0)
    first = queue.next_batch(100.0, limit=10)
    assert [i.key for i in first] == ["key-2", "key-4", "key-1", "key-5"]
    assert {i.kind for i in first} == {"anomaly"}
    queue.delivered([i.id for i in first], 101.0)
    assert [i.key for i in queue.next_batch(101.0, limit=10)] == ["key-3"]
    assert [i.key for i in queue.next_batch(100.0, limit=2)] == ["key-3"]


def test_batches_respect_the_byte_budget_but_always_carry_one_item(store: Store):
    queue = SyncQueue(store)
    queue.enqueue([("anomaly", 20, f"big-{n}", {"blob": "x" * 5000}) for n in range(5)], now=1.0)
    assert len(queue.next_batch(1.0, limit=100, max_bytes=11_000)) == 2
    assert len(queue.next_batch(1.0, limit=100, max_bytes=10)) == 1


def test_the_batch_body_is_the_stored_items_byte_for_byte(store: Store):
    queue = SyncQueue(store)
    queue.enqueue([entry(1), entry(2)], now=1.0)
    batch = queue.next_batch(1.0, limit=10)
    body = json.loads(batch_body("hs-1", batch))
    assert body["sensor_id"] == "hs-1" and body["contract"] == 1
    assert [json.dumps(i, separators=(",", ":")) for i in body["items"]] == [i.payload for i in batch]
    assert body["items"][0] == {
        "idempotency_key": "key-1",
        "kind": "anomaly",
        "created": "1970-01-01T00:00:01.000Z",
        "data": {"n": 1},
    }


def test_the_same_idempotency_key_is_queued_once(store: Store):
    queue = SyncQueue(store)
    assert queue.enqueue([entry(1)], now=1.0) == (1, 0)
    assert queue.enqueue([entry(1)], now=2.0) == (0, 0)
    queue.delivered([queue.next_batch(3.0, 10)[0].id], 3.0)
    assert queue.enqueue([entry(1)], now=4.0) == (0, 0)  # delivered keys keep counting
    assert queue.depth() == 0


def test_full_queue_drops_lowest_priority_oldest_first_and_counts(store: Store):
    queue = SyncQueue(store, max_items=5)
    queue.enqueue([entry(1, 5), entry(2, 5), entry(3, 30), entry(4, 30), entry(5, 40)], now=1.0)
    assert queue.enqueue([entry(6, 20)], now=2.0) == (1, 1)
    assert [i["idempotency_key"] for i in queue.items(10)] == ["key-5", "key-3", "key-4", "key-6", "key-2"]
    # A newcomer of the lowest priority is itself what goes.
    assert queue.enqueue([entry(7, 1)], now=3.0) == (1, 1)
    assert "key-7" not in [i["idempotency_key"] for i in queue.items(10)]
    assert queue.counters()["dropped_full"] == 2
    # Rejected items (never to be sent) go before any pending one.
    rejected = [i for i in queue.next_batch(4.0, 10) if i.key == "key-5"]
    queue.rejected([(rejected[0].id, "rejected: bad item")], 4.0)
    queue.enqueue([entry(8, 1)], now=5.0)
    assert "key-5" not in [i["idempotency_key"] for i in queue.items(10)]
    assert queue.depth() == 5 and queue.rejected_count() == 0


def test_items_being_sent_are_never_dropped(store: Store):
    queue = SyncQueue(store, max_items=2)
    queue.enqueue([entry(1, 1), entry(2, 1)], now=1.0)
    sending = queue.next_batch(1.0, 1)[0]
    queue.enqueue([entry(3, 1)], now=2.0, protect={sending.id})
    assert sending.key in [i["idempotency_key"] for i in queue.items(10)]


def test_attempts_errors_retry_now_and_drop(store: Store):
    queue = SyncQueue(store)
    queue.enqueue([entry(1), entry(2)], now=1.0)
    batch = queue.next_batch(1.0, 10)
    queue.failed([i.id for i in batch], "HTTP 503: busy", next_attempt=500.0)
    assert queue.next_batch(2.0, 10) == []
    assert queue.next_due() == 500.0
    row = queue.item(batch[0].id)
    assert row is not None and (row["attempts"], row["last_error"]) == (1, "HTTP 503: busy")
    assert queue.retry_now(batch[0].id, 3.0) == 1
    again = queue.next_batch(3.0, 10)
    assert [i.key for i in again] == ["key-1"] and again[0].attempts == 1
    assert queue.retry_now(None, 3.0) == 1
    assert queue.drop(batch[1].id) is True and queue.drop(batch[1].id) is False
    queue.delivered([again[0].id], 4.0, retried=1)
    counters = queue.counters()
    assert (counters["sent"], counters["failed"], counters["retried"], counters["dropped_operator"]) == (
        1,
        2,
        1,
        1,
    )


def assert_depth_is_exact(store: Store) -> None:
    """The per-state counts the triggers keep agree with the rows."""
    for state in ("pending", "delivered", "rejected"):
        (real,) = store._row("SELECT count(*) FROM sync_queue WHERE state = ?", (state,)) or (0,)
        assert store.sync_count(state) == real, state


def test_depth_counts_follow_every_change(store: Store):
    queue = SyncQueue(store, max_items=6)
    queue.enqueue([entry(n, n % 3) for n in range(8)], now=1.0)
    batch = queue.next_batch(1.0, 4)
    queue.delivered([batch[0].id], 2.0)
    queue.rejected([(batch[1].id, "no")], 2.0)
    queue.failed([batch[2].id], "later", 9.0)
    queue.drop(batch[3].id)
    queue.retry_now(batch[1].id, 3.0)
    store.prune_delivered(5.0)
    assert_depth_is_exact(store)
    assert queue.depth() == 4  # 8 queued, 2 dropped (full), 1 delivered, 1 dropped, the rejected one back


def test_a_rejected_item_can_be_queued_again(store: Store):
    queue = SyncQueue(store)
    queue.enqueue([entry(1)], now=1.0)
    item = queue.next_batch(1.0, 10)[0]
    queue.rejected([(item.id, "rejected: too large")], 2.0)
    assert queue.depth() == 0 and queue.rejected_count() == 1
    assert queue.items(10)[0]["state"] == "rejected"
    queue.retry_now(item.id, 3.0)
    assert [i.key for i in queue.next_batch(3.0, 10)] == ["key-1"]


def test_prune_delivered_forgets_only_old_deliveries(store: Store):
    queue = SyncQueue(store)
    queue.enqueue([entry(n) for n in range(4)], now=1.0)
    ids = [i.id for i in queue.next_batch(1.0, 10)]
    queue.delivered(ids[:2], 10.0)
    queue.delivered(ids[2:3], 20.0)
    assert store.prune_delivered(15.0) == 2
    assert queue.prune_delivered(15.0) == 0
    assert store.sync_count("delivered") == 1 and queue.depth() == 1


def test_the_queue_survives_closing_and_reopening(tmp_path: Path):
    with Store.open(tmp_path) as store:
        queue = SyncQueue(store)
        queue.enqueue([entry(n) for n in range(3)], now=1.0)
        queue.failed([queue.next_batch(1.0, 1)[0].id], "timed out", 50.0)
    with Store.open(tmp_path) as store:
        queue = SyncQueue(store)
        assert queue.depth() == 3
        assert [i["attempts"] for i in queue.items(10)] == [1, 0, 0]
        assert queue.counters()["failed"] == 1


def test_bad_inputs_are_refused_with_a_reason(store: Store):
    queue = SyncQueue(store)
    with pytest.raises(ValueError, match="unknown item kind 'email'"):
        queue.enqueue([("email", 1, "k", {})])
    with pytest.raises(ValueError, match="unknown queue state"):
        store.sync_count("lost")
    other = sqlite3.connect(store.path)
    try:
        with pytest.raises(sqlite3.IntegrityError):  # the schema itself refuses an unknown state
            other.execute(
                "INSERT INTO sync_queue (kind, priority, idempotency_key, payload_json, size, state,"
                " created_wall) VALUES ('anomaly', 1, 'z', '{}', 2, 'lost', 0)"
            )
    finally:
        other.close()
