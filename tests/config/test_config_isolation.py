"""Configuration is engine code: importing it (and its CLI command) never pulls in textual."""

from __future__ import annotations

import subprocess
import sys


def test_config_does_not_import_textual():
    code = (
        "import sys\n"
        "import heimdal_tui.config, heimdal_tui.config.paths, heimdal_tui.cli.config_cmd\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'textual')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
