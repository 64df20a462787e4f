"""The IEEE OUI registry (MAC prefix -> registrant), read from netaddr's data files, compactly.

netaddr ships the IEEE registry (``oui.txt``) and an index of it (``oui.idx``: OUI, offset, size),
well kept and updated with each release. Importing ``netaddr.eui`` loads that index into a dict of
lists of tuples: ~9 MB of Python objects and ~0.1 s at every start, for a sensor that looks up a few
dozen vendors. Here the index is three numpy columns (~0.8 MB) searched with ``searchsorted``, and a
lookup reads the one record it needs from ``oui.txt``; netaddr itself is never imported.

The registrant is the one netaddr's ``OUI(x).registration().org`` gives: the first record of the
OUI, the text after ``(hex)`` on its first line.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np


class OuiRegistry:
    """Registrants by 24-bit OUI, from an ``oui.idx`` index and its ``oui.txt`` registry."""

    def __init__(self, index: Path, registry: Path) -> None:
        self.registry = registry
        rows = np.loadtxt(index, delimiter=",", dtype=np.int64, ndmin=2)
        if rows.shape[0] == 0:
            rows = np.zeros((0, 3), dtype=np.int64)
        # Stable sort: where an OUI has several records, the first in the file comes first.
        order = np.argsort(rows[:, 0], kind="stable")
        self._keys = np.ascontiguousarray(rows[order, 0])
        self._offsets = np.ascontiguousarray(rows[order, 1])
        self._sizes = np.ascontiguousarray(rows[order, 2])

    def __len__(self) -> int:
        return int(np.unique(self._keys).shape[0])

    def org(self, oui: int) -> str | None:
        """The registrant of ``oui`` (the first three octets as an integer), or None."""
        at = int(np.searchsorted(self._keys, oui))
        if at >= self._keys.shape[0] or int(self._keys[at]) != oui:
            return None
        try:
            with self.registry.open("rb") as handle:
                handle.seek(int(self._offsets[at]))
                record = handle.read(int(self._sizes[at])).decode("utf-8", errors="replace")
        except OSError:
            return None
        for line in record.splitlines():
            if "(hex)" in line:
                parts = line.strip().split(None, 2)
                org = parts[2].strip() if len(parts) == 3 else ""
                return org or None
        return None


def _netaddr_data() -> Path | None:
    """Where netaddr keeps its registry files, found without importing it."""
    spec = importlib.util.find_spec("netaddr")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "eui"
    if not (folder / "oui.idx").is_file() or not (folder / "oui.txt").is_file():
        return None
    return folder


@lru_cache(maxsize=1)
def default_registry() -> OuiRegistry | None:
    """The registry netaddr ships (None when it is not installed or its files are missing)."""
    folder = _netaddr_data()
    if folder is None:
        return None
    try:
        return OuiRegistry(folder / "oui.idx", folder / "oui.txt")
    except (OSError, ValueError):
        return None
