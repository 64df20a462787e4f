"""AsgardLink: the one object the sensor session and the console use to talk to Asgard.

It owns the durable queue (in the session's store), the anonymizer, the sender thread and the
intelligence book. Producers call :meth:`enqueue_alert` / :meth:`enqueue_devices` (cheap: an
anonymization and one SQLite transaction, never network I/O); the console reads :meth:`status`
and sends :meth:`pause`, :meth:`resume`, :meth:`retry_now`, :meth:`drop`; :meth:`preview` shows an
item exactly as it will leave. Without a URL (or a key) the link is disabled: it says why in its
status and queues nothing.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from heimdal_tui.asgard import contract
from heimdal_tui.asgard.anonymizer import Anonymizer
from heimdal_tui.asgard.backoff import Backoff
from heimdal_tui.asgard.client import AsgardClient, TransportError
from heimdal_tui.asgard.credentials import LinkCredentials, resolve_credentials
from heimdal_tui.asgard.identity import SensorIdentity
from heimdal_tui.asgard.intelligence import IntelligenceBook
from heimdal_tui.asgard.policy import EnqueuePolicy
from heimdal_tui.asgard.queue import SyncQueue
from heimdal_tui.asgard.sender import Sender
from heimdal_tui.asgard.status import MAX_ITEM_VIEWS, SyncItemView, SyncStatus
from heimdal_tui.config.model import AsgardConfig
from heimdal_tui.detect.alerts import Alert, AlertChange
from heimdal_tui.detect.geo import CountryLookup
from heimdal_tui.detect.intel import ThreatIntel
from heimdal_tui.detect.learning import BaselineBook
from heimdal_tui.store import Store

log = logging.getLogger(__name__)

# Idempotency keys enqueued lately, remembered so a repeat costs no database write.
RECENT_KEYS = 4096


class AsgardLink:
    def __init__(
        self,
        config: AsgardConfig | None,
        store: Store | None,
        *,
        env: Mapping[str, str] | None = None,
        countries: CountryLookup | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config or AsgardConfig()
        self.store = store
        self.clock = clock
        self.policy = EnqueuePolicy.from_config(self.config)
        self.intelligence = IntelligenceBook(store)
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._last_devices: float | None = None
        self.credentials: LinkCredentials = resolve_credentials(self.config, env)
        self.reason: str | None = self.credentials.reason
        self.identity: SensorIdentity | None = None
        self.queue: SyncQueue | None = None
        self.anonymizer: Anonymizer | None = None
        self.sender: Sender | None = None
        if store is None:
            self.reason = "no store: the Asgard link keeps its queue in the sensor's store"
        for warning in self.credentials.warnings:
            log.warning("asgard: %s", warning)
        if self.reason is not None or store is None:
            return
        assert self.credentials.url is not None and self.credentials.key is not None
        self.identity = SensorIdentity.load_or_create(store)
        try:
            client = AsgardClient(
                self.credentials.url,
                self.credentials.key,
                sensor_id=self.identity.sensor_id,
                ca_bundle=self.config.ca_bundle,
                connect_timeout=self.config.connect_timeout,
                read_timeout=self.config.read_timeout,
                transport=transport,
            )
        except TransportError as exc:
            self.reason = str(exc)
            return
        self.queue = SyncQueue(store, self.config.queue_max_items)
        self.anonymizer = Anonymizer(
            self.identity.secret,
            names=self.config.names,
            ip_detail=self.config.ip_detail,
            countries=countries,
        )
        self.sender = Sender(
            self.queue,
            client,
            sensor_id=self.identity.sensor_id,
            batch_size=self.config.batch_size,
            backoff=Backoff(self.config.backoff_initial, self.config.backoff_max, rng or random.Random()),
            intelligence=self.intelligence,
            intelligence_interval=self.config.intelligence_interval,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"AsgardLink(url={self.credentials.url!r}, configured={self.configured})"

    @property
    def configured(self) -> bool:
        return self.sender is not None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the sender thread (nothing when disabled)."""
        if self.sender is not None:
            self.sender.start()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop the sender thread, waiting up to ``timeout`` s for a request in progress; True when
        it stopped. Whatever was not delivered stays queued for the next start."""
        if self.sender is None:
            return True
        stopped = self.sender.stop(timeout)
        if stopped:
            self.sender.client.close()
        return stopped

    # -- producers -----------------------------------------------------------------------------
    def enqueue_alert(self, alert: Alert) -> bool:
        """Queue an alert when the policy wants it (severity listed, not queued at this severity
        before); True when it was queued."""
        if self.queue is None or self.anonymizer is None or not self.policy.accepts_alert(alert):
            return False
        severity = str(alert.severity)
        key = "a-" + self.anonymizer.keyed("item", f"anomaly|{alert.id}|{severity}", 32)
        if self._seen(key):
            return False
        data = self.anonymizer.alert(alert)
        priority = contract.SEVERITY_PRIORITY.get(severity, 0)
        inserted, _ = self.queue.enqueue(
            [(contract.KIND_ANOMALY, priority, key, data)], now=self.clock(), protect=self._in_flight()
        )
        self._wake()
        return inserted > 0

    def on_alert_change(self, change: AlertChange) -> None:
        """A :attr:`DetectionEngine.subscribers <heimdal_tui.detect.engine.DetectionEngine.subscribers>`
        callback: queues the alert per the policy, and never raises into the detection thread (a
        store that cannot take the write is logged; the alert stays in the alert book)."""
        try:
            self.enqueue_alert(change.alert)
        except Exception:
            log.exception("asgard: could not queue alert %s", change.alert.id)

    def enqueue_devices(self, rows: list[dict[str, Any]], *, force: bool = False) -> int:
        """Queue a summary of each device row (devices/snapshot.py) when the policy says one is due
        (``force`` ignores the interval, not the policy's on/off); how many were queued."""
        if self.queue is None or self.anonymizer is None or not self.policy.devices:
            return 0
        now = self.clock()
        if not force and not self.policy.devices_due(now, self._last_devices):
            return 0
        self._last_devices = now
        entries = []
        for row in rows:
            data = self.anonymizer.device(row)
            # The key follows the content: an unchanged device is not queued (nor sent) twice.
            canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            key = "d-" + self.anonymizer.keyed("item", f"device|{canonical}", 32)
            entries.append((contract.KIND_DEVICE, contract.DEVICE_PRIORITY, key, data))
        fresh = [e for e in entries if not self._seen(e[2], remember=False)]
        if not fresh:
            return 0
        inserted, _ = self.queue.enqueue(fresh, now=now, protect=self._in_flight())
        for entry in fresh:
            self._seen(entry[2])
        self._wake()
        return inserted

    def _seen(self, key: str, remember: bool = True) -> bool:
        with self._recent_lock:
            if key in self._recent:
                self._recent.move_to_end(key)
                return True
            if remember:
                self._recent[key] = None
                while len(self._recent) > RECENT_KEYS:
                    self._recent.popitem(last=False)
            return False

    def _in_flight(self) -> set[int]:
        if self.sender is None:
            return set()
        with self.sender.lock:
            return set(self.sender.state.in_flight)

    def _wake(self) -> None:
        if self.sender is not None:
            self.sender.wake()

    # -- intelligence --------------------------------------------------------------------------
    def apply_intelligence(self, intel: ThreatIntel | None, book: BaselineBook | None) -> None:
        """Feed Asgard's intelligence into a detection engine's indicator table and baseline book:
        what the store holds now, and every update the link fetches from now on. Works while
        disabled too (intelligence received earlier still applies)."""
        self.intelligence.attach(intel, book, self.clock())

    # -- console commands ----------------------------------------------------------------------
    def pause(self) -> None:
        if self.sender is not None:
            self.sender.pause()

    def resume(self) -> None:
        if self.sender is not None:
            self.sender.resume()

    def retry_now(self, item_id: str | None = None) -> int:
        """Make one item (or every pending item) due now and end the link's backoff; how many
        items changed. A rejected item given by id is queued again."""
        if self.queue is None or self.sender is None:
            return 0
        changed = self.queue.retry_now(None if item_id is None else _row_id(item_id), self.clock())
        self.sender.retry_now()
        return changed

    def drop(self, item_id: str) -> bool:
        """Remove an undelivered item (counted as dropped); False when there is no such item."""
        if self.queue is None:
            return False
        row_id = _row_id(item_id)
        if row_id in self._in_flight():
            return False
        return self.queue.drop(row_id)

    def preview(self, item_id: str) -> str:
        """The item exactly as it leaves the network (its JSON text inside the batch body).
        KeyError when there is no such item."""
        if self.queue is None:
            raise KeyError(item_id)
        row = self.queue.item(_row_id(item_id))
        if row is None:
            raise KeyError(item_id)
        return str(row["payload_json"])

    def prune_delivered(self, older_than: float) -> int:
        return 0 if self.queue is None else self.queue.prune_delivered(older_than)

    # -- reading -------------------------------------------------------------------------------
    def status(self, max_items: int = MAX_ITEM_VIEWS) -> SyncStatus:
        version = self.intelligence.version
        indicators, profiles = self.intelligence.counts()
        warnings = tuple(self.credentials.warnings)
        if self.sender is None or self.queue is None:
            return SyncStatus(
                configured=False,
                reason=self.reason,
                state="disabled",
                url=self.credentials.url,
                intel_version=version,
                intel_indicators=indicators,
                intel_profiles=profiles,
                warnings=warnings,
            )
        now = self.clock()
        sender = self.sender
        with sender.lock:
            st = sender.state
            in_flight = set(st.in_flight)
            paused, auth_failed = st.paused, st.auth_failed
            backoff_until = st.backoff_until
            last_error = st.last_error
        if auth_failed:
            state = "auth_failed"
        elif paused:
            state = "paused"
        elif in_flight:
            state = "sending"
        elif backoff_until > now:
            state = "backoff"
        else:
            state = "idle"
        counters = self.queue.counters()
        views = []
        for row in self.queue.items(max_items):
            waiting_until = max(row["next_attempt"], backoff_until)
            if row["state"] == "rejected":
                item_state, next_retry = "rejected", None
            elif row["id"] in in_flight:
                item_state, next_retry = "sending", None
            elif waiting_until > now and row["attempts"] > 0:
                item_state, next_retry = "waiting", waiting_until
            else:
                item_state, next_retry = "queued", None
            views.append(
                SyncItemView(
                    id=str(row["id"]),
                    kind=row["kind"],
                    priority=row["priority"],
                    state=item_state,
                    attempts=row["attempts"],
                    created=row["created"],
                    next_retry=next_retry,
                    last_error=row["last_error"],
                    size=row["size"],
                )
            )
        return SyncStatus(
            configured=True,
            reason=None,
            state=state,
            url=self.credentials.url,
            depth=self.queue.depth(),
            sent=counters["sent"],
            failed=counters["failed"],
            retried=counters["retried"],
            dropped=counters["dropped_full"] + counters["dropped_operator"],
            rejected=self.queue.rejected_count(),
            throughput_per_minute=sender.throughput(now),
            next_retry=backoff_until if backoff_until > now else None,
            last_error=last_error,
            intel_version=version,
            intel_indicators=indicators,
            intel_profiles=profiles,
            sensor_id=self.identity.sensor_id if self.identity else None,
            max_items=self.queue.max_items,
            warnings=warnings,
            items=tuple(views),
        )

    def wait_drained(self, timeout: float) -> bool:
        """Block until nothing pending is left to send (rejected items do not count), up to
        ``timeout`` seconds; False on timeout, when paused, or once authentication failed."""
        if self.sender is None or self.queue is None:
            return True
        deadline = time.monotonic() + timeout
        sender = self.sender
        while True:
            with sender.lock:
                busy = bool(sender.state.in_flight)
                blocked = sender.state.auth_failed or sender.state.paused
            if not busy and self.queue.depth() == 0:
                return True
            left = deadline - time.monotonic()
            if blocked or left <= 0 or not sender.running:
                return False
            with sender.progress:
                sender.progress.wait(min(left, 0.2))


def _row_id(item_id: str | int) -> int:
    try:
        return int(str(item_id).strip())
    except ValueError:
        raise KeyError(item_id) from None
