"""The deployment scripts: they parse, shellcheck finds nothing, the unit is hardened and passes
`systemd-analyze verify`, a dry run changes nothing, and a real install into a temporary root
creates the venv, installs the project from this checkout, checks the compiled dependencies,
writes a valid configuration and a unit that verifies, upgrades in place, and uninstalls.

The real install downloads the dependencies from PyPI (skipped when PyPI is unreachable) and takes
a minute or two: it is marked slow, and runs with the rest of the suite."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
INSTALL = SCRIPTS / "install.sh"
UNINSTALL = SCRIPTS / "uninstall.sh"
UNIT = SCRIPTS / "heimdal.service"


def run(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]


def test_the_scripts_parse():
    for script in (INSTALL, UNINSTALL):
        done = run("bash", "-n", script)
        assert done.returncode == 0, done.stderr
        assert os.access(script, os.X_OK), f"{script} is not executable"


def test_shellcheck_finds_nothing():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt install shellcheck)")
    done = run("shellcheck", "--severity=style", INSTALL, UNINSTALL)
    assert done.returncode == 0, done.stdout


def directives(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_the_unit_is_hardened():
    unit = directives(UNIT.read_text())
    assert unit["ExecStart"] == (
        "/opt/heimdal/venv/bin/heimdal-tui daemon --data-dir /var/lib/heimdal --config /etc/heimdal/config.toml"
    )
    assert unit["User"] == "heimdal" and unit["Restart"] == "on-failure" and unit["TimeoutStopSec"] == "10"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "AmbientCapabilities": "CAP_NET_RAW CAP_NET_ADMIN",
        "CapabilityBoundingSet": "CAP_NET_RAW CAP_NET_ADMIN",
    }.items():
        assert unit[key] == value, key
    assert "/var/lib/heimdal" in unit["ReadWritePaths"].split()


def rendered_unit(tmp_path: Path) -> Path:
    """The unit with its program pointing at this checkout's installed command, so verify can run."""
    command = shutil.which("heimdal-tui")
    if command is None:
        pytest.skip("heimdal-tui is not on PATH (pip install -e .)")
    unit = tmp_path / "heimdal.service"
    unit.write_text(UNIT.read_text().replace("/opt/heimdal/venv/bin/heimdal-tui", command))
    return unit


def test_systemd_verifies_the_unit_and_rates_its_exposure(tmp_path: Path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = rendered_unit(tmp_path)
    done = run("systemd-analyze", "verify", unit, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    security = run("systemd-analyze", "security", "--offline=yes", unit, cwd=tmp_path)
    if security.returncode != 0 and "offline" in security.stderr:
        pytest.skip("this systemd-analyze cannot rate a unit offline")
    level = re.search(r"Overall exposure level for heimdal.service: ([0-9.]+) (\w+)", security.stdout)
    assert level is not None, security.stdout
    assert float(level.group(1)) < 4.0, security.stdout  # "OK" or better on systemd's scale


def test_a_dry_run_changes_nothing(tmp_path: Path):
    root = tmp_path / "root"
    done = run(INSTALL, "--dry-run", "--prefix", root)
    assert done.returncode == 0, done.stderr
    assert not root.exists()
    assert f"+ python3 -m venv --copies {root}/opt/heimdal/venv" in done.stdout
    assert f"+ write {root}/etc/systemd/system/heimdal.service" in done.stdout
    assert "+ systemctl enable heimdal.service" in done.stdout
    done = run(UNINSTALL, "--dry-run", "--prefix", root, "--purge", "--no-systemd")
    assert done.returncode == 0, done.stderr


def test_bad_options_and_no_root_are_refused(tmp_path: Path):
    done = run(INSTALL, "--bogus")
    assert done.returncode == 1 and "unknown option: --bogus" in done.stderr
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running as another user needs root and setpriv")
    nobody = run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", INSTALL)
    assert nobody.returncode == 1 and "run as root" in nobody.stderr


def _pypi_reachable() -> bool:
    for host in ("pypi.org", "files.pythonhosted.org"):
        try:
            socket.create_connection((host, 443), timeout=5).close()
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_install_into_a_temporary_root_and_uninstall(tmp_path: Path):
    if not _pypi_reachable():
        pytest.skip("PyPI is unreachable: the install downloads the dependencies")
    root = tmp_path / "root"
    # Bytecode is compiled by the interpreter on first use anyway; skipping it keeps the suite fast.
    env = {**os.environ, "PIP_NO_COMPILE": "1"}
    python = shutil.which("python3") or sys.executable
    setcap = ["--setcap"] if os.geteuid() == 0 and shutil.which("setcap") else []
    done = run(
        INSTALL,
        "--prefix",
        root,
        "--no-apt",
        "--no-user",
        "--no-systemd",
        "--no-doctor",
        "--python",
        python,
        *setcap,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    venv = root / "opt/heimdal/venv"
    interpreter = venv / "bin/python"
    assert interpreter.exists() and not interpreter.is_symlink()  # --copies
    assert "checking that every compiled dependency works on this CPU" in done.stdout
    assert re.search(r"^ok +polars: ", done.stdout, re.M) and re.search(r"^ok +numpy: ", done.stdout, re.M)
    if setcap:
        assert "cap_net_admin,cap_net_raw=eip" in run("getcap", interpreter).stdout
        assert stat.S_IMODE(interpreter.stat().st_mode) == 0o750

    command = root / "usr/local/bin/heimdal-tui"
    assert command.is_symlink() and run(command, "--version").stdout.startswith("heimdal-tui ")
    config = root / "etc/heimdal/config.toml"
    assert run(command, "config", "validate", "--config", config).returncode == 0
    assert f'data_dir = "{root}/var/lib/heimdal"' in config.read_text()
    assert stat.S_IMODE((root / "var/lib/heimdal").stat().st_mode) == 0o750
    unit = root / "etc/systemd/system/heimdal.service"
    assert f"ExecStart={venv}/bin/heimdal-tui daemon --data-dir {root}/var/lib/heimdal" in unit.read_text()
    if shutil.which("systemd-analyze"):
        verified = run("systemd-analyze", "verify", unit, cwd=tmp_path)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    # Run again it would upgrade in place: the project reinstalled, the configuration kept.
    again = run(INSTALL, "--prefix", root, "--no-apt", "--no-user", "--no-systemd", "--dry-run")
    assert again.returncode == 0, again.stderr
    assert "upgrading heimdal-tui" in again.stdout and "keeping the configuration" in again.stdout
    assert "--no-deps --force-reinstall" in again.stdout and "venv --copies" not in again.stdout

    # A store to keep, then uninstall: the service goes, the data stays; --purge wants a backup.
    from heimdal_tui.store import Store

    Store.open(root / "var/lib/heimdal").close()
    planned = run(UNINSTALL, "--prefix", root, "--no-systemd", "--purge", "--dry-run")
    assert re.search(
        rf"^\+ {venv}/bin/heimdal-tui backup {root}/var/backups/heimdal-\S+\.db", planned.stdout, re.M
    )
    removed = run(UNINSTALL, "--prefix", root, "--no-systemd")
    assert removed.returncode == 0, removed.stderr
    assert not venv.exists() and not unit.exists() and not command.exists()
    assert (root / "var/lib/heimdal/heimdal.db").exists() and config.exists()
    refused = run(UNINSTALL, "--prefix", root, "--no-systemd", "--purge")
    assert refused.returncode == 1 and "cannot back up" in refused.stderr  # nothing lost unasked
    assert (root / "var/lib/heimdal/heimdal.db").exists()
    purged = run(UNINSTALL, "--prefix", root, "--no-systemd", "--purge", "--no-backup")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "var/lib/heimdal").exists() and not config.exists()
