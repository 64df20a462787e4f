"""The sender thread: registers, sends batches, fetches intelligence, backs off, stops on bad keys.

One thread per link; HTTP happens outside every lock. What it does after each answer:

- 2xx: the items Asgard lists as accepted or duplicate are delivered, the rejected ones are kept as
  rejected with Asgard's reason; any it did not mention are retried.
- network error, timeout, 5xx (and 404/405/408): every item of the batch counts a failed attempt
  and the link waits ``backoff_initial * 2**(n-1)`` (capped, with jitter) after the n-th failure
  in a row.
- 429: the link waits what Retry-After says (the backoff when it says nothing).
- 401/403: the sensor registers again, once; if that or the next request is refused too, the link
  stops in ``auth_failed`` ("authentication failed") until :meth:`Sender.resume`.
- 413: the batch is halved (an item too large on its own is rejected); 400/422: the items are
  rejected (Asgard will never take them as they are).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from heimdal_tui import __version__
from heimdal_tui.asgard import contract
from heimdal_tui.asgard.backoff import Backoff, parse_retry_after
from heimdal_tui.asgard.client import AsgardClient, Reply, TransportError
from heimdal_tui.asgard.intelligence import IntelligenceBook, parse_update
from heimdal_tui.asgard.queue import QueuedItem, SyncQueue, batch_body
from heimdal_tui.common.text import safe_text

log = logging.getLogger(__name__)

AUTH_FAILED = "authentication failed"
THROUGHPUT_WINDOW = 60.0
IDLE_WAIT = 1.0
_BACKOFF_STATUSES = frozenset({404, 405, 408, 409, 425})
_REJECT_STATUSES = frozenset({400, 422})


@dataclass
class LinkState:
    paused: bool = False
    auth_failed: bool = False
    registered: bool = False
    reregistered: bool = False  # a 401/403 already cost one re-registration
    failures: int = 0  # consecutive failed requests
    backoff_until: float = 0.0
    in_flight: set[int] = field(default_factory=set)
    last_error: str | None = None
    intel_due: float = 0.0
    intel_failures: int = 0
    batch_cap: int | None = None  # lowered after a 413
    server_batch_max: int = contract.MAX_BATCH_ITEMS
    server_body_max: int = contract.MAX_BODY_BYTES
    deliveries: deque[tuple[float, int]] = field(default_factory=deque)


class Sender:
    def __init__(
        self,
        queue: SyncQueue,
        client: AsgardClient,
        *,
        sensor_id: str,
        batch_size: int,
        backoff: Backoff,
        intelligence: IntelligenceBook,
        intelligence_interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.client = client
        self.sensor_id = sensor_id
        self.batch_size = batch_size
        self.backoff = backoff
        self.intelligence = intelligence
        self.intelligence_interval = intelligence_interval
        self.clock = clock
        self.state = LinkState()
        self.lock = threading.Lock()
        self.progress = threading.Condition(self.lock)  # notified after every request
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="asgard-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None) -> bool:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        self._thread = None
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    # -- operator commands ---------------------------------------------------------------------
    def pause(self) -> None:
        with self.lock:
            self.state.paused = True

    def resume(self) -> None:
        """Leave pause, and leave auth_failed to try the key again (register first)."""
        with self.lock:
            self.state.paused = False
            if self.state.auth_failed:
                self.state.auth_failed = False
                self.state.registered = False
                self.state.reregistered = False
                self.state.last_error = None
        self.wake()

    def retry_now(self) -> None:
        with self.lock:
            self.state.backoff_until = 0.0
        self.wake()

    # -- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self.step()
            except Exception as exc:  # never let the thread die: the queue is durable, try later
                log.exception("asgard sender step failed")
                with self.lock:
                    self.state.last_error = safe_text(f"internal error: {type(exc).__name__}: {exc}", 300)
                wait = IDLE_WAIT
            if wait > 0:
                self._wake.wait(wait)

    def step(self) -> float:
        """Do the next thing there is to do; how long to wait before the next step."""
        now = self.clock()
        with self.lock:
            st = self.state
            if st.paused or st.auth_failed:
                return IDLE_WAIT
            if st.backoff_until > now:
                return min(st.backoff_until - now, IDLE_WAIT)
            registered = st.registered
            intel_due = st.intel_due
            exclude = set(st.in_flight)
        if not registered:
            self._register()
            return 0.0
        if now >= intel_due:
            self._fetch_intelligence(now)
            return 0.0
        with self.lock:
            limit = min(self.batch_size, self.state.server_batch_max, self.state.batch_cap or self.batch_size)
            max_bytes = self.state.server_body_max
        batch = self.queue.next_batch(now, limit, max_bytes, exclude)
        if not batch:
            due = self.queue.next_due(exclude)
            horizon = min(IDLE_WAIT, max(0.0, intel_due - now))
            if due is not None:
                horizon = min(horizon, max(0.0, due - now))
            return max(horizon, 0.01)
        self._send(batch)
        return 0.0

    # -- requests ------------------------------------------------------------------------------
    def _register(self) -> None:
        body = {
            "sensor_id": self.sensor_id,
            "software": f"heimdal-tui {__version__}",
            "contract": contract.CONTRACT_VERSION,
            "kinds": list(contract.ITEM_KINDS),
            "intelligence_version": self.intelligence.version,
        }
        try:
            reply = self.client.register(body)
        except TransportError as exc:
            self._link_failed(str(exc))
            return
        if reply.ok:
            limits = reply.body.get("limits") if isinstance(reply.body, dict) else None
            with self.progress:
                self.state.registered = True
                self.state.failures = 0
                if isinstance(limits, dict):
                    self.state.server_batch_max = _bounded(
                        limits.get("max_batch_items"), 1, contract.MAX_BATCH_ITEMS
                    )
                    self.state.server_body_max = _bounded(
                        limits.get("max_body_bytes"), 4096, contract.MAX_BODY_BYTES
                    )
                self.progress.notify_all()
            return
        if reply.status in (401, 403):
            self._unauthorized(reply, [])
            return
        self._http_failed(reply)

    def _fetch_intelligence(self, now: float) -> None:
        since = self.intelligence.version
        try:
            reply = self.client.intelligence(since)
        except TransportError as exc:
            self._intel_failed(now, str(exc))
            return
        if reply.status in (401, 403):
            self._unauthorized(reply, [])
            return
        if reply.status == 304:
            self._intel_done(now)
            return
        if not reply.ok:
            self._intel_failed(now, reply.error(), parse_retry_after(reply.retry_after, now))
            return
        try:
            update = parse_update(reply.body, since)
        except ValueError as exc:
            self._intel_failed(now, f"unusable intelligence: {exc}")
            return
        if update.version != since or update.full:
            self.intelligence.record(update, now)
        for problem in update.problems:
            log.warning("asgard intelligence: %s", problem)
        self._intel_done(now, f"intelligence: {update.skipped} entries skipped" if update.skipped else None)

    def _intel_done(self, now: float, note: str | None = None) -> None:
        with self.progress:
            self.state.intel_failures = 0
            self.state.intel_due = now + self.intelligence_interval
            self.state.reregistered = False
            if note:
                self.state.last_error = note
            self.progress.notify_all()

    def _intel_failed(self, now: float, error: str, retry_after: float | None = None) -> None:
        # Intelligence trouble never holds back the queue: it is retried on its own schedule.
        with self.progress:
            self.state.intel_failures += 1
            delay = retry_after if retry_after is not None else self.backoff.delay(self.state.intel_failures)
            self.state.intel_due = now + min(delay, self.intelligence_interval)
            self.state.last_error = f"intelligence: {error}"
            self.progress.notify_all()

    def _send(self, batch: list[QueuedItem]) -> None:
        ids = [item.id for item in batch]
        retried = sum(1 for item in batch if item.attempts > 0)
        with self.lock:
            self.state.in_flight.update(ids)
        try:
            try:
                reply = self.client.post_items(
                    contract.PATH_FOR_KIND[batch[0].kind], batch_body(self.sensor_id, batch)
                )
            except TransportError as exc:
                self._batch_failed(batch, str(exc), retried)
                return
            self._answered(batch, reply, retried)
        finally:
            with self.progress:
                self.state.in_flight.difference_update(ids)
                self.progress.notify_all()

    def _answered(self, batch: list[QueuedItem], reply: Reply, retried: int) -> None:
        now = self.clock()
        if reply.ok:
            self._acknowledged(batch, reply, retried, now)
            return
        if reply.status in (401, 403):
            self._unauthorized(reply, batch, retried)
            return
        if reply.status == 413 and len(batch) > 1:
            with self.progress:
                self.state.batch_cap = max(1, len(batch) // 2)
                self.state.last_error = f"{reply.error()}: sending smaller batches"
            return
        if reply.status == 413 or reply.status in _REJECT_STATUSES:
            error = reply.error()
            self.queue.rejected([(item.id, error) for item in batch], now, retried)
            with self.progress:
                self.state.last_error = error
            return
        if reply.status == 429:
            wait = parse_retry_after(reply.retry_after, now)
            self._batch_failed(
                batch, reply.error() + (f" (retry after {wait:g} s)" if wait else ""), retried, wait
            )
            return
        self._batch_failed(batch, reply.error(), retried)

    def _acknowledged(self, batch: list[QueuedItem], reply: Reply, retried: int, now: float) -> None:
        body = reply.body if isinstance(reply.body, dict) else {}
        by_key = {item.key: item for item in batch}
        done: set[str] = set()
        for name in ("accepted", "duplicates"):
            for key in body.get(name) or []:
                if isinstance(key, str) and key in by_key:
                    done.add(key)
        refused: list[tuple[int, str]] = []
        for entry in body.get("rejected") or []:
            if isinstance(entry, dict) and entry.get("idempotency_key") in by_key:
                key = entry["idempotency_key"]
                if key not in done:
                    reason = safe_text(str(entry.get("error") or "rejected by Asgard"), 200)
                    refused.append((by_key[key].id, f"rejected: {reason}"))
                    done.add(key)
        refused_ids = {item_id for item_id, _ in refused}
        delivered = [by_key[k].id for k in done if by_key[k].id not in refused_ids]
        unanswered = [item for item in batch if item.key not in done]
        retried_done = sum(1 for item in batch if item.attempts > 0 and item.key in done)
        if delivered:
            self.queue.delivered(delivered, now, retried_done)
        if refused:
            self.queue.rejected(refused, now)
        with self.progress:
            st = self.state
            st.failures = 0
            st.reregistered = False
            st.batch_cap = None
            st.last_error = refused[-1][1] if refused else None
            st.deliveries.append((now, len(delivered)))
            while st.deliveries and st.deliveries[0][0] < now - THROUGHPUT_WINDOW:
                st.deliveries.popleft()
        if unanswered:
            # Asgard answered without naming them: send them again (the same keys, so no duplicate).
            self._batch_failed(unanswered, "not acknowledged by Asgard", retried - retried_done)

    def _unauthorized(self, reply: Reply, batch: list[QueuedItem], retried: int = 0) -> None:
        with self.lock:
            first = not self.state.reregistered
        if first:
            with self.progress:
                self.state.reregistered = True
                self.state.registered = False
                self.state.last_error = f"{reply.error()}: registering again"
            if batch:
                self.queue.failed([i.id for i in batch], f"{reply.error()}: registering again", 0.0, retried)
            return
        if batch:
            self.queue.failed([i.id for i in batch], AUTH_FAILED, 0.0, retried)
        self._auth_failed(reply)

    def _auth_failed(self, reply: Reply) -> None:
        with self.progress:
            self.state.auth_failed = True
            self.state.registered = False
            self.state.last_error = f"{AUTH_FAILED} ({reply.error()}): check the API key, then resume"
            self.progress.notify_all()
        log.error("asgard: %s", self.state.last_error)

    def _batch_failed(
        self, batch: list[QueuedItem], error: str, retried: int, wait: float | None = None
    ) -> None:
        until = self._link_failed(error, wait)
        self.queue.failed([item.id for item in batch], error, until, retried)

    def _http_failed(self, reply: Reply) -> None:
        now = self.clock()
        self._link_failed(
            reply.error(), parse_retry_after(reply.retry_after, now) if reply.status in (429, 503) else None
        )

    def _link_failed(self, error: str, wait: float | None = None) -> float:
        now = self.clock()
        with self.progress:
            st = self.state
            st.failures += 1
            delay = wait if wait is not None else self.backoff.delay(st.failures)
            st.backoff_until = now + delay
            st.last_error = error
            self.progress.notify_all()
            return st.backoff_until

    # -- reading -------------------------------------------------------------------------------
    def throughput(self, now: float) -> float:
        with self.lock:
            return float(sum(n for t, n in self.state.deliveries if t >= now - THROUGHPUT_WINDOW))


def _bounded(value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return high
    return max(low, min(high, value))
