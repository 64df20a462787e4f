"""The [asgard] configuration table: every option validated, problems named by key path."""

from __future__ import annotations

from pathlib import Path

from heimdal_tui.config import AsgardConfig, config_to_toml, parse_config


def problems(text: str) -> list[str]:
    return [str(issue) for issue in parse_config(text)[1]]


def test_a_full_asgard_table_is_read():
    config, issues = parse_config(
        """
[asgard]
url = "https://asgard.example/api"
api_key_file = "/etc/heimdal/asgard.key"
ca_bundle = "/etc/heimdal/ca.pem"
connect_timeout = 5
read_timeout = 20.0
alert_severities = ["high", "critical"]
device_summaries = true
device_summary_interval = 600
names = "drop"
ip_detail = "region"
batch_size = 50
queue_max_items = 5000
backoff_initial = 1
backoff_max = 120
intelligence_interval = 1800
"""
    )
    assert issues == []
    asgard = config.asgard
    assert asgard.url == "https://asgard.example/api" and asgard.api_key_file == Path(
        "/etc/heimdal/asgard.key"
    )
    assert asgard.alert_severities == ("high", "critical") and asgard.names == "drop"
    assert (asgard.batch_size, asgard.queue_max_items, asgard.backoff_max) == (50, 5000, 120.0)
    again, issues = parse_config(config_to_toml(config))
    assert issues == [] and again.asgard == asgard


def test_defaults_leave_the_link_off():
    config, issues = parse_config("")
    assert issues == [] and config.asgard == AsgardConfig() and config.asgard.url is None


def test_every_bad_value_is_named():
    found = problems(
        """
[asgard]
url = "ftp://asgard.example"
alert_severities = ["high", "urgent"]
names = "everything"
batch_size = 0
queue_max_items = 5
connect_timeout = 0
token = "abc"
"""
    )
    assert "asgard.url: 'ftp://asgard.example' is not an https:// URL" in found
    assert (
        "asgard.alert_severities[1]: 'urgent' is not a severity (one of low, medium, high, critical)" in found
    )
    assert any(p.startswith("asgard.names: must be one of") for p in found)
    assert "asgard.batch_size: must be between 1 and 1000, got 0" in found
    assert "asgard.queue_max_items: must be between 10 and 1000000, got 5" in found
    assert any(p.startswith("asgard.connect_timeout: must be greater than 0") for p in found)
    assert any(p.startswith("asgard.token: unknown key") for p in found)


def test_urls_must_be_https_and_hold_no_credentials():
    assert problems('[asgard]\nurl = "http://asgard.example"') == [
        "asgard.url: 'http://asgard.example': plain http is only allowed to this machine (localhost); use https"
    ]
    assert problems('[asgard]\nurl = "http://127.0.0.1:8443"') == []
    assert problems('[asgard]\nurl = "https://user:secret@asgard.example"') == [
        "asgard.url: the URL must not hold credentials (put the API key in api_key_file)"
    ]


def test_backoff_max_below_backoff_initial_is_refused():
    assert problems("[asgard]\nbackoff_initial = 60\nbackoff_max = 10") == [
        "asgard: backoff_max (10) must be at least backoff_initial (60)"
    ]
