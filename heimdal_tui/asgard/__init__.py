"""The Asgard link: anonymized metadata out through a durable queue, threat intelligence in.

The contract is docs/asgard-api.md (version 1). :class:`AsgardLink` is the whole public surface for
the sensor and the console; :mod:`.devserver` is the reference server (``heimdal-tui asgard-dev``).
Engine code: never imports textual.
"""

from heimdal_tui.asgard.anonymizer import Anonymizer
from heimdal_tui.asgard.contract import CONTRACT_VERSION
from heimdal_tui.asgard.link import AsgardLink
from heimdal_tui.asgard.status import LINK_STATES, SyncItemView, SyncStatus

__all__ = ["CONTRACT_VERSION", "LINK_STATES", "Anonymizer", "AsgardLink", "SyncItemView", "SyncStatus"]
