"""The service modules are engine side: importing them (and the service commands) loads no textual,
and the dependency checker imports nothing that could crash before it has checked."""

from __future__ import annotations

import subprocess
import sys

SERVICE_MODULES = [
    "heimdal_tui.service.lock",
    "heimdal_tui.service.doctor",
    "heimdal_tui.service.checks_system",
    "heimdal_tui.service.checks_storage",
    "heimdal_tui.service.checks_asgard",
    "heimdal_tui.service.backup",
    "heimdal_tui.service.logs",
    "heimdal_tui.service.retention",
    "heimdal_tui.cli.doctor",
    "heimdal_tui.cli.backup",
    "heimdal_tui.cli.restore",
]


def _loaded_after(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def test_service_modules_do_not_import_textual():
    imports = "\n".join(f"import {name}" for name in SERVICE_MODULES)
    loaded = _loaded_after(imports)
    assert not [m for m in loaded if m == "textual" or m.startswith("textual.")]


def test_the_dependency_checker_imports_no_compiled_dependency():
    loaded = _loaded_after("import heimdal_tui.service.deps")
    for heavy in ("numpy", "polars", "scapy", "iptocc", "heimdal_tui.config"):
        assert heavy not in loaded, heavy
