"""The compact OUI registry against netaddr's own lookup, and its failure modes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import netaddr
import pytest

from heimdal_tui.devices.identity import vendor_for_mac
from heimdal_tui.devices.oui import OuiRegistry, default_registry


def test_every_registered_oui_gives_netaddrs_registrant() -> None:
    registry = default_registry()
    assert registry is not None
    index = Path(netaddr.__file__).parent / "eui" / "oui.idx"
    ouis = sorted({int(line.split(",")[0]) for line in index.read_text().splitlines() if line})
    assert len(ouis) > 30_000 and len(registry) == len(ouis)
    for oui in ouis:
        expected = str(netaddr.OUI(oui).registration().org).strip() or None
        assert registry.org(oui) == expected, f"{oui:06x}"


def test_unregistered_oui_is_none() -> None:
    registry = default_registry()
    assert registry is not None
    assert registry.org(0xFCFFFC) is None
    assert registry.org(-1) is None
    assert registry.org(1 << 30) is None


@pytest.mark.parametrize("mac", ["00:03:93:12:34:56", "00-03-93-12-34-56", "0003.9312.3456", "000393123456"])
def test_mac_spellings(mac: str) -> None:
    assert vendor_for_mac(mac) == "Apple, Inc."


@pytest.mark.parametrize(
    "mac", ["00:03:93:12:34", "00:03:93:12:34:56:78", "0003:9312:3456", "zz:03:93:12:34:56"]
)
def test_malformed_macs_are_none(mac: str) -> None:
    assert vendor_for_mac(mac) is None


def test_registry_files_that_do_not_match(tmp_path: Path) -> None:
    registry_file = tmp_path / "oui.txt"
    registry_file.write_bytes(b"00-03-93   (hex)\t\tApple, Inc.\r\n000393     (base 16)\t\tApple, Inc.\r\n")
    index = tmp_path / "oui.idx"
    index.write_text("915,0,30\n916,5000,40\n")  # the second record points past the end of the file
    registry = OuiRegistry(index, registry_file)
    assert registry.org(915) == "Apple, Inc."
    assert registry.org(916) is None
    registry_file.unlink()
    assert registry.org(915) is None  # the registry went away: no vendor, no crash


def test_engine_never_imports_netaddr() -> None:
    code = (
        "import sys; from heimdal_tui.devices.identity import vendor_for_mac; "
        "assert vendor_for_mac('00:03:93:12:34:56') == 'Apple, Inc.'; "
        "print('netaddr' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
