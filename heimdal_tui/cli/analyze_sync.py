"""`heimdal-tui analyze FILE --sync`: send what the capture produced to Asgard, wait, report.

The queue lives in the store (``--data-dir``, else the configured/default data directory), so what
did not go out before ``--sync-timeout`` stays queued for the next sync or the sensor, and a
second sync of the same capture sends nothing twice.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from heimdal_tui.common.durations import parse_duration
from heimdal_tui.config import Config, effective_data_dir
from heimdal_tui.detect.engine import DetectionEngine
from heimdal_tui.store import Store, StoreError

if TYPE_CHECKING:  # the link (httpx, the anonymizer) is imported only when --sync is given
    from heimdal_tui.asgard import AsgardLink, SyncStatus

DEFAULT_TIMEOUT = "30s"


class SyncError(Exception):
    """--sync cannot work (no URL, no key, no store): the message says what to set."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Asgard")
    group.add_argument(
        "--sync",
        action="store_true",
        help="send the anonymized alerts and device summaries to Asgard ([asgard] in the configuration "
        "or HEIMDAL_ASGARD_URL / HEIMDAL_ASGARD_API_KEY) and wait until they are delivered",
    )
    group.add_argument(
        "--sync-timeout",
        default=DEFAULT_TIMEOUT,
        metavar="DURATION",
        help=f"longest wait for delivery (default {DEFAULT_TIMEOUT}); what is left stays queued",
    )


@dataclass
class SyncRun:
    link: AsgardLink
    store: Store
    timeout: float
    before: SyncStatus

    @classmethod
    def open(cls, args: argparse.Namespace, config: Config, err: TextIO) -> SyncRun:
        try:
            timeout = parse_duration(args.sync_timeout)
        except ValueError as exc:
            raise SyncError(f"--sync-timeout: {exc}") from None
        data_dir = Path(args.data_dir) if getattr(args, "data_dir", None) else effective_data_dir(config)
        try:
            store = Store.open(data_dir)
        except StoreError as exc:
            raise SyncError(f"--sync: {exc}") from None
        from heimdal_tui.asgard import AsgardLink

        link = AsgardLink(config.asgard, store)
        for warning in link.credentials.warnings:
            err.write(f"warning: {warning}\n")
        if not link.configured:
            store.close()
            raise SyncError(f"--sync: {link.reason}")
        return cls(link, store, timeout, link.status(max_items=0))

    def finish(self, engine: DetectionEngine | None, devices: list[dict[str, Any]], err: TextIO) -> int:
        """Queue, send, wait, report; 0 when everything went out, 1 otherwise."""
        link = self.link
        try:
            if engine is not None:
                for alert in sorted(engine.alerts.alerts.values(), key=lambda a: (a.first_seen, a.id)):
                    link.enqueue_alert(alert)
            link.enqueue_devices(devices, force=True)
            link.start()
            drained = link.wait_drained(self.timeout)
            after = link.status(max_items=0)
        finally:
            link.stop(5.0)
            self.store.close()
        err.write(report(self.before, after))
        if after.state == "auth_failed":
            err.write(f"heimdal-tui analyze: --sync: {after.last_error}\n")
            return 1
        if not drained:
            err.write(
                f"heimdal-tui analyze: --sync: {after.depth:,} items still queued after "
                f"{self.timeout:g} s ({after.last_error or 'no answer yet'}); they stay queued in "
                f"{self.store.path.parent} for the next sync\n"
            )
            return 1
        return 0


def report(before: SyncStatus, after: SyncStatus) -> str:
    sent = after.sent - before.sent
    retried = after.retried - before.retried
    dropped = after.dropped - before.dropped
    line = f"asgard sync  sent {sent:,}, retried {retried:,}, dropped {dropped:,}"
    if after.rejected:
        line += f", rejected {after.rejected:,}"
    line += f"; {after.depth:,} queued"
    if after.intel_version:
        line += (
            f"; intelligence v{after.intel_version}"
            f" ({after.intel_indicators:,} indicators, {after.intel_profiles:,} profiles)"
        )
    return line + "\n"
