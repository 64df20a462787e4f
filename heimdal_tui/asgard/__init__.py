"""The Asgard link: anonymized metadata out through a durable queue, threat intelligence in.

The contract is docs/asgard-api.md (version 1). :class:`AsgardLink` is the whole public surface for
the sensor and the console; :mod:`.devserver` is the reference server (``heimdal-tui asgard-dev``).
Engine code: never imports textual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heimdal_tui.asgard.anonymizer import Anonymizer
    from heimdal_tui.asgard.contract import CONTRACT_VERSION
    from heimdal_tui.asgard.link import AsgardLink
    from heimdal_tui.asgard.status import LINK_STATES, SyncItemView, SyncStatus

__all__ = ["CONTRACT_VERSION", "LINK_STATES", "Anonymizer", "AsgardLink", "SyncItemView", "SyncStatus"]

# Imported when first used (PEP 562): a sensor that never configures sync, or a module that needs
# only the contract or the status types, does not load httpx and the link's machinery (~7 MB).
_HOMES = {
    "Anonymizer": "anonymizer",
    "CONTRACT_VERSION": "contract",
    "AsgardLink": "link",
    "LINK_STATES": "status",
    "SyncItemView": "status",
    "SyncStatus": "status",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
