"""`heimdal-tui analyze` with detection: alert output formats, baselines saved and reused, a store,
threat intel, and clear errors for bad arguments."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from heimdal_tui.cli.main import main

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
INCIDENTS = str(SAMPLES / "home_lan_incidents.pcap")
BENIGN = str(SAMPLES / "home_lan_benign.pcap")


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch, tmp_path):
    """Never read the machine's own config file."""
    from heimdal_tui.config import paths

    monkeypatch.setattr(paths, "default_config_path", lambda: tmp_path / "absent" / "config.toml")


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["analyze", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_jsonl_alerts_one_per_line(capsys):
    code, out, err = _run(capsys, INCIDENTS, "--format", "jsonl")
    assert code == 0, err
    alerts = [json.loads(line) for line in out.splitlines()]
    kinds = {a["kind"] for a in alerts}
    assert {"port_scan", "arp_spoof", "dns_tunnel", "beaconing", "brute_force", "geo_violation"} <= kinds
    for alert in alerts:
        assert alert["severity"] in ("low", "medium", "high", "critical")
        assert 0 <= alert["score"] <= 10 and alert["count"] >= 1
        assert alert["device"]["id"] and alert["summary"] and alert["evidence"]
    assert "alerts       " in err


def test_text_table_and_quiet_exit_zero_even_with_findings(capsys):
    code, out, _err = _run(capsys, INCIDENTS, "-q")
    assert code == 0
    assert out.splitlines()[0].startswith("first seen (UTC)")
    assert "port_scan" in out and out.rstrip().splitlines()[-1].endswith(
        ("low", "medium", "high", "critical")
    )


def test_no_detect_prints_no_alerts(capsys):
    code, out, err = _run(capsys, BENIGN, "--no-detect")
    assert code == 0 and out == "" and "alerts" not in err


def test_baseline_saved_from_one_capture_is_used_on_another(capsys, tmp_path):
    saved = tmp_path / "baseline.json"
    code, _, err = _run(capsys, BENIGN, "--format", "none", "--save-baseline", str(saved))
    assert code == 0, err
    data = json.loads(saved.read_text())
    assert data["format"] == "heimdal-baselines" and len(data["devices"]) >= 9
    # With a mature baseline from the benign day, the incident capture is judged from its first minute.
    code, out, err = _run(capsys, INCIDENTS, "--format", "jsonl", "--baseline", str(saved))
    assert code == 0, err
    kinds = {json.loads(line)["kind"] for line in out.splitlines()}
    assert "geo_violation" in kinds and "volume_spike" in kinds


def test_bad_baseline_and_learning_period_are_named(capsys, tmp_path):
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    code, _, err = _run(capsys, BENIGN, "--baseline", str(junk))
    assert code == 2 and "junk.json" in err and "not a usable baseline file" in err
    code, _, err = _run(capsys, BENIGN, "--learning-period", "a while")
    assert code == 2 and "--learning-period" in err


def test_store_only_when_named(capsys, tmp_path):
    data_dir = tmp_path / "store"
    code, _, err = _run(capsys, INCIDENTS, "--format", "none", "--data-dir", str(data_dir))
    assert code == 0, err
    db = sqlite3.connect(data_dir / "heimdal.db")
    assert db.execute("select count(*) from alerts").fetchone()[0] > 0
    assert db.execute("select count(*) from baselines").fetchone()[0] >= 9
    db.close()


def test_threat_intel_file(capsys, tmp_path):
    intel = tmp_path / "intel.txt"
    intel.write_text("# bad places\n95.213.37.0/24\ncloudbox-transfer.net\nnot an indicator!\n")
    code, out, err = _run(capsys, INCIDENTS, "--format", "jsonl", "--intel", str(intel))
    assert code == 0, err
    hits = [json.loads(line) for line in out.splitlines() if json.loads(line)["kind"] == "threat_intel"]
    assert {h["device"]["name"] for h in hits} >= {"Samsung-Q70-TV", "DS-2CD2143G2-I"}
    assert "line 4" in err


def test_bad_config_names_key_and_range(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[detectors.port_scan]\nenabled = 3\n")
    code, _, err = _run(capsys, BENIGN, "--config", str(config))
    assert code == 2 and "detectors.port_scan.enabled" in err


def test_config_validate_command(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[alerts]\ncorrelation_window = -1\nbogus = 1\n")
    code = main(["config", "validate", "--config", str(config)])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "alerts.correlation_window" in out and "alerts.bogus" in out
