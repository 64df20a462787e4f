"""The reference Asgard server (``heimdal-tui asgard-dev``): contract version 1 over real HTTP,
for tests and demos. It checks the API key, keeps what it receives as JSON lines under
``DATA/received/`` (one file per endpoint), refuses a second copy of an idempotency key (across its
own restarts too), serves intelligence from ``DATA/intelligence.json`` and injects faults on
request (:class:`~.faults.FaultPlan`)."""

from heimdal_tui.asgard.devserver.faults import FaultPlan
from heimdal_tui.asgard.devserver.server import AsgardDevServer

__all__ = ["AsgardDevServer", "FaultPlan"]
