"""Shared fixtures: where the real captures of other tools' test suites live (../shared/pcaps)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_PCAPS = REPO.parent / "shared" / "pcaps"


def shared_pcap(relative: str) -> Path:
    """A capture from ../shared/pcaps, or skip the test when it is not there (a fresh clone)."""
    path = SHARED_PCAPS / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: the real-capture checks need ../shared/pcaps beside the repo")
    return path
