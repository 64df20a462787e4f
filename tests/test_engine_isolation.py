"""The engine never imports textual (the console is one consumer among several)."""

from __future__ import annotations

import subprocess
import sys

ENGINE_MODULES = [
    "heimdal_tui.capture.pcap_file",
    "heimdal_tui.capture.replay",
    "heimdal_tui.capture.live",
    "heimdal_tui.capture.worker",
    "heimdal_tui.decode.headers",
    "heimdal_tui.decode.app_select",
    "heimdal_tui.devices.snapshot",
    "heimdal_tui.flows.table",
    "heimdal_tui.pipeline.engine",
    "heimdal_tui.cli.analyze",
    "heimdal_tui.samples.cli",
    "heimdal_tui.asgard.link",
    "heimdal_tui.asgard.devserver.server",
    "heimdal_tui.cli.asgard_dev",
    "heimdal_tui.sensor.session",
    "heimdal_tui.sensor.build",
    "heimdal_tui.detect.whatif",
    "heimdal_tui.daemon.run",
    "heimdal_tui.daemon.remote",
    "heimdal_tui.daemon.metrics",
    # The command line parses without the console: `analyze` and `capture` never load textual.
    "heimdal_tui.cli.main",
    "heimdal_tui.cli.console",
]


def test_engine_modules_do_not_import_textual():
    code = (
        "import importlib, sys\n"
        f"for name in {ENGINE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(','.join(leaked))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_asgard_status_types_load_without_the_link_and_httpx():
    # The sensor and the console read the sync status whether or not sync is configured: the
    # package loads its link (and httpx) only when something asks for it.
    code = (
        "import sys\n"
        "import heimdal_tui.asgard.status\n"
        "from heimdal_tui.asgard import SyncStatus, LINK_STATES\n"
        "before = 'httpx' in sys.modules or 'heimdal_tui.asgard.link' in sys.modules\n"
        "from heimdal_tui.asgard import AsgardLink\n"
        "after = 'httpx' in sys.modules and AsgardLink.__module__ == 'heimdal_tui.asgard.link'\n"
        "print(before, after)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
