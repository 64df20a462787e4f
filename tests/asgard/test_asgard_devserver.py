"""`heimdal-tui asgard-dev` as a real process: the API key, what it keeps, de-duplication across
its own restarts, intelligence, injected faults, and clear errors for bad arguments."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from asgard_support import API_KEY, start_server_process, stop_process

from heimdal_tui.cli import asgard_dev
from heimdal_tui.cli.main import build_parser

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def batch(*keys: str, kind: str = "anomaly") -> dict:
    return {
        "sensor_id": "hs-test",
        "contract": 1,
        "items": [
            {"idempotency_key": k, "kind": kind, "created": "2026-01-01T00:00:00Z", "data": {"k": k}}
            for k in keys
        ],
    }


def test_it_checks_the_key_keeps_items_and_refuses_copies_across_restarts(tmp_path: Path):
    data = tmp_path / "asgard"
    (data).mkdir()
    (data / "intelligence.json").write_text(
        json.dumps({"version": 2, "indicators": [{"indicator": "evil.example"}]})
    )
    proc, url = start_server_process(data)
    try:
        assert (
            httpx.post(f"{url}/v1/sensors/register", json={"sensor_id": "x", "contract": 1}).status_code
            == 401
        )
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(f"{url}/v1/metadata/anomalies", json=batch("a"), headers=wrong).status_code == 401
        registered = httpx.post(
            f"{url}/v1/sensors/register", json={"sensor_id": "hs-test", "contract": 1}, headers=AUTH
        )
        assert registered.status_code == 200 and registered.json()["intelligence_version"] == 2
        first = httpx.post(f"{url}/v1/metadata/anomalies", json=batch("a", "b"), headers=AUTH).json()
        assert first == {"accepted": ["a", "b"], "duplicates": [], "rejected": []}
        bad = batch("c", kind="device")
        answer = httpx.post(f"{url}/v1/metadata/anomalies", json=bad, headers=AUTH).json()
        assert answer["rejected"] == [
            {"idempotency_key": "c", "error": "kind must be 'anomaly' on this endpoint"}
        ]
        full = httpx.get(f"{url}/v1/intelligence", params={"since": 0}, headers=AUTH).json()
        assert (full["version"], full["full"], len(full["indicators"])) == (2, True, 1)
        same = httpx.get(f"{url}/v1/intelligence", params={"since": 2}, headers=AUTH).json()
        assert (same["full"], same["indicators"]) == (False, [])
        assert httpx.get(f"{url}/v1/intelligence", params={"since": "x"}, headers=AUTH).status_code == 400
        assert httpx.post(f"{url}/v1/nothing", json={}, headers=AUTH).status_code == 404
        assert httpx.post(f"{url}/v1/metadata/devices", content=b"{", headers=AUTH).status_code == 400
        old = batch("z")
        old["contract"] = 9
        assert httpx.post(f"{url}/v1/metadata/devices", json=old, headers=AUTH).status_code == 400
    finally:
        stop_process(proc)
    lines = (data / "received" / "anomalies.jsonl").read_text().splitlines()
    assert [json.loads(line)["idempotency_key"] for line in lines] == ["a", "b"]
    assert json.loads(lines[0])["item"]["data"] == {"k": "a"}
    proc, url = start_server_process(data)
    try:
        again = httpx.post(f"{url}/v1/metadata/anomalies", json=batch("b", "d"), headers=AUTH).json()
        assert again == {"accepted": ["d"], "duplicates": ["b"], "rejected": []}
    finally:
        stop_process(proc)


def test_injected_faults(tmp_path: Path):
    proc, url = start_server_process(
        tmp_path / "a", "--drop-first", "1", "--fail-first", "2", "--fail-status", "429", "--retry-after", "7"
    )
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{url}/v1/metadata/anomalies", json=batch("a"), headers=AUTH)
        limited = httpx.post(f"{url}/v1/metadata/anomalies", json=batch("a"), headers=AUTH)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
        assert httpx.post(f"{url}/v1/metadata/anomalies", json=batch("a"), headers=AUTH).status_code == 429
        assert httpx.post(f"{url}/v1/metadata/anomalies", json=batch("a"), headers=AUTH).json()[
            "accepted"
        ] == ["a"]
    finally:
        stop_process(proc)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "D", "--api-key", "k", "--fail-first", "-1"], "--fail-first must not be negative"),
        (["--data", "D", "--api-key", "k", "--fail-status", "42"], "--fail-status 42 is not an HTTP status"),
        (["--data", "D", "--api-key", "k", "--port", "70000"], "--port 70000 is not a port"),
        (["--data", "D", "--api-key", "k", "--tls-key", "k.pem"], "--tls-key needs --tls-cert"),
    ],
)
def test_bad_arguments_are_named(args: list[str], message: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HEIMDAL_ASGARD_API_KEY", raising=False)
    err = io.StringIO()
    assert asgard_dev.run(build_parser().parse_args(["asgard-dev", *args]), stderr=err) == 2
    assert message in err.getvalue()


def test_no_key_is_a_clear_error_from_the_real_command(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "HEIMDAL_ASGARD_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "heimdal_tui", "asgard-dev", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2
    assert (
        "give --api-key KEY or set HEIMDAL_ASGARD_API_KEY" in result.stderr
        and "Traceback" not in result.stderr
    )
