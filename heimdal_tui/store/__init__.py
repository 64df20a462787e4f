"""Persistence: one SQLite store (WAL mode) for alerts and their triage history, suppressions,
the allowlist, per-device baselines and drift, and small sensor state.

Open it with :meth:`Store.open`; it is migrated to the current schema on the way, refused when a
newer heimdal-tui wrote it, and rebuilt (the old file moved aside) when it is corrupt.
"""

from heimdal_tui.store.alerts import ACTIVE_STATES, ALERT_STATES, SEVERITIES, alert_record
from heimdal_tui.store.base import StoreError
from heimdal_tui.store.baselines import DRIFT_KEEP
from heimdal_tui.store.db import DB_FILENAME, Store
from heimdal_tui.store.migrations import SCHEMA_VERSION

__all__ = [
    "ACTIVE_STATES",
    "ALERT_STATES",
    "DB_FILENAME",
    "DRIFT_KEEP",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "Store",
    "StoreError",
    "alert_record",
]
