"""AsgardLink against the reference server over real loopback HTTP: delivery, policy, preview,
faults (5xx, 429 Retry-After, 401/403, 400, dropped connections, lost answers), operator commands,
status round trips, and the API key kept out of every message."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from asgard_support import (
    API_KEY,
    dev_server,
    device_row,
    link_for,
    make_alert,
    received,
    registered,
    wait_for,
)

from heimdal_tui.asgard import AsgardLink, SyncStatus
from heimdal_tui.asgard.devserver import FaultPlan
from heimdal_tui.config import AsgardConfig
from heimdal_tui.detect.alerts import AlertChange
from heimdal_tui.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "sensor") as opened:
        yield opened


@pytest.fixture
def server_dir(tmp_path: Path) -> Path:
    path = tmp_path / "asgard"
    path.mkdir()
    return path


def started(link: AsgardLink) -> AsgardLink:
    link.start()
    return link


def test_without_a_url_the_link_is_disabled_and_queues_nothing(store: Store):
    link = AsgardLink(AsgardConfig(), store, env={})
    assert link.enqueue_alert(make_alert()) is False
    assert link.enqueue_devices([device_row()]) == 0
    status = link.status()
    assert (status.configured, status.state, status.depth) == (False, "disabled", 0)
    assert status.reason is not None and "HEIMDAL_ASGARD_URL" in status.reason
    assert SyncStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status
    link.start()
    assert link.stop(1.0) is True
    no_key = AsgardLink(AsgardConfig(url="https://asgard.example"), store, env={})
    assert not no_key.configured and "HEIMDAL_ASGARD_API_KEY" in (no_key.status().reason or "")
    env_url = AsgardLink(
        AsgardConfig(),
        store,
        env={"HEIMDAL_ASGARD_URL": "http://remote.example", "HEIMDAL_ASGARD_API_KEY": "k"},
    )
    assert "plain http is only allowed to this machine" in (env_url.status().reason or "")


def test_alerts_and_devices_arrive_exactly_as_previewed(store: Store, server_dir: Path):
    with dev_server(server_dir) as server:
        link = link_for(server.url, store)
        assert link.enqueue_alert(make_alert(1, "critical"))
        assert link.enqueue_alert(make_alert(2, "medium"))
        assert not link.enqueue_alert(make_alert(3, "low"))  # below the policy's severities
        assert not link.enqueue_alert(make_alert(1, "critical"))  # already queued at this severity
        assert link.enqueue_alert(make_alert(2, "high"))  # it escalated: Asgard hears of it again
        assert link.enqueue_devices([device_row(1), device_row(2)]) == 2
        assert link.enqueue_devices([device_row(3)]) == 0  # the summary interval has not passed
        status = link.status()
        assert status.depth == 5 and [i.kind for i in status.items] == ["anomaly"] * 3 + ["device"] * 2
        assert [i.priority for i in status.items] == [40, 30, 20, 5, 5]
        assert SyncStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status
        previews = {item.id: link.preview(item.id) for item in status.items}
        started(link)
        assert link.wait_drained(20)
        done = link.status()
        assert (done.depth, done.sent, done.failed, done.state) == (0, 5, 0, "idle")
        assert done.throughput_per_minute == 5.0
        link.stop(5)
    arrived = [r["item"] for r in received(server_dir)] + [
        r["item"] for r in received(server_dir, "devices.jsonl")
    ]
    assert sorted(arrived, key=json.dumps) == sorted(
        (json.loads(p) for p in previews.values()), key=json.dumps
    )
    assert len(received(server_dir, "register.jsonl")) == 1
    with pytest.raises(KeyError):
        link.preview("999")


def test_the_engine_subscriber_queues_alerts_and_never_raises(tmp_path: Path):
    store = Store.open(tmp_path / "s")
    link = link_for("http://127.0.0.1:9", store)
    link.on_alert_change(AlertChange(make_alert(1), new=True))
    assert link.status().depth == 1
    store.close()  # a store that cannot be written: the detection thread must not see an error
    link.on_alert_change(AlertChange(make_alert(2), new=True))


def test_server_errors_back_off_count_attempts_then_deliver_once(store: Store, server_dir: Path):
    faults = FaultPlan(fail_first=4, fail_status=503)
    with dev_server(server_dir, faults) as server:
        link = link_for(server.url, store)
        link.enqueue_alert(make_alert(1))
        started(link)
        assert link.wait_drained(20)
        status = link.status()
        link.stop(5)
    assert status.sent == 1 and status.depth == 0
    assert len(received(server_dir)) == 1
    assert server.stats()["duplicates"] == 0


def test_failed_items_show_attempts_and_the_last_error(store: Store, server_dir: Path):
    faults = FaultPlan(fail_status=500)
    with dev_server(server_dir, faults) as server:
        link = started(link_for(server.url, store, backoff_initial=30.0, backoff_max=60.0))
        wait_for(lambda: registered(link), what="registration")
        faults.fail_first, faults._seen = 1, 0
        link.enqueue_alert(make_alert(1))
        status = wait_for(lambda: (s := link.status()).state == "backoff" and s, what="the backoff")
        link.stop(5)
    (item,) = status.items
    assert status.failed == 1 and status.next_retry is not None
    assert (item.state, item.attempts, item.next_retry) == ("waiting", 1, status.next_retry)
    assert item.last_error == "HTTP 500: injected fault (500)"
    assert status.last_error == "HTTP 500: injected fault (500)"
    assert status.next_retry - item.created >= 15.0  # at least half of the 30 s step (jitter)


def test_429_retry_after_is_honoured_and_retry_now_overrides_it(store: Store, server_dir: Path):
    faults = FaultPlan(fail_status=429, retry_after=120)
    with dev_server(server_dir, faults) as server:
        link = link_for(server.url, store)
        started(link)
        wait_for(lambda: registered(link), what="registration")
        faults.fail_first, faults._seen = 1, 0
        requests_before = sum(server.stats()["requests"].values())
        link.enqueue_alert(make_alert(1))
        status = wait_for(lambda: (s := link.status()).failed and s, what="the 429")
        assert status.state == "backoff"
        assert status.next_retry is not None and status.next_retry - status.items[0].created >= 119.0
        assert "retry after 120 s" in (status.items[0].last_error or "")
        assert sum(server.stats()["requests"].values()) == requests_before + 1
        assert link.retry_now() == 1
        assert link.wait_drained(20)
        link.stop(5)
    assert len(received(server_dir)) == 1


def test_401_registers_again_once_and_carries_on(store: Store, server_dir: Path):
    faults = FaultPlan()
    with dev_server(server_dir, faults) as server:
        link = link_for(server.url, store)
        started(link)
        wait_for(lambda: registered(link), what="registration")
        faults.fail_first, faults.fail_status, faults._seen = 1, 401, 0
        link.enqueue_alert(make_alert(1))
        assert link.wait_drained(20)
        link.stop(5)
    assert len(received(server_dir, "register.jsonl")) == 2
    assert len(received(server_dir)) == 1


@pytest.mark.parametrize("status_code", [401, 403])
def test_refused_twice_the_link_stops_with_authentication_failed(
    store: Store, server_dir: Path, status_code: int
):
    faults = FaultPlan(fail_first=2, fail_status=status_code)
    with dev_server(server_dir, faults) as server:
        link = link_for(server.url, store)
        link.enqueue_alert(make_alert(1))
        started(link)
        status = wait_for(lambda: (s := link.status()).state == "auth_failed" and s, what="auth_failed")
        assert "authentication failed" in (status.last_error or "")
        assert status.depth == 1  # nothing lost
        assert link.wait_drained(1) is False
        # The operator fixed the key (here: the fault is over) and resumes.
        link.resume()
        assert link.wait_drained(20)
        link.stop(5)
    assert len(received(server_dir)) == 1


def test_a_wrong_key_ends_in_auth_failed_without_sending(store: Store, server_dir: Path):
    with dev_server(server_dir) as server:
        link = link_for(server.url, store, key="not-the-key")
        link.enqueue_alert(make_alert(1))
        started(link)
        wait_for(lambda: link.status().state == "auth_failed", what="auth_failed")
        link.stop(5)
        assert server.stats()["requests"] == {"/v1/sensors/register": 2}
    assert received(server_dir) == []


def test_400_rejects_the_batch_and_retry_now_queues_an_item_again(store: Store, server_dir: Path):
    faults = FaultPlan()
    with dev_server(server_dir, faults) as server:
        link = link_for(server.url, store)
        started(link)
        wait_for(lambda: registered(link), what="registration")
        faults.fail_first, faults.fail_status, faults._seen = 1, 400, 0
        link.enqueue_alert(make_alert(1))
        status = wait_for(lambda: (s := link.status()).rejected and s, what="the rejection")
        assert status.depth == 0 and status.items[0].state == "rejected"
        assert "HTTP 400" in (status.items[0].last_error or "")
        assert link.retry_now(status.items[0].id) == 1
        assert link.wait_drained(20)
        assert link.status().rejected == 0
        link.stop(5)
    assert len(received(server_dir)) == 1


def test_a_lost_answer_is_sent_again_and_refused_as_a_duplicate(store: Store, server_dir: Path):
    faults = FaultPlan(lose_response_first=1, drop_first=1)
    with dev_server(server_dir, faults) as server:
        link = link_for(server.url, store)
        for n in range(3):
            link.enqueue_alert(make_alert(n))
        started(link)
        assert link.wait_drained(20)
        status = link.status()
        link.stop(5)
        stats = server.stats()
    keys = [r["idempotency_key"] for r in received(server_dir)]
    assert len(keys) == len(set(keys)) == 3
    assert stats["duplicates"] == 3  # the whole lost batch came again
    assert status.retried == 3 and status.sent == 3


def test_pause_holds_everything_and_resume_sends_it(store: Store, server_dir: Path):
    with dev_server(server_dir) as server:
        link = link_for(server.url, store)
        link.pause()
        started(link)
        link.enqueue_alert(make_alert(1))
        assert link.status().state == "paused"
        assert link.wait_drained(0.5) is False
        assert server.stats()["requests"] == {}
        link.resume()
        assert link.wait_drained(20)
        link.stop(5)


def test_drop_removes_an_item_and_counts_it(store: Store, server_dir: Path):
    with dev_server(server_dir) as server:
        link = link_for(server.url, store)
        link.enqueue_alert(make_alert(1))
        link.enqueue_alert(make_alert(2))
        first = link.status().items[0]
        assert link.drop(first.id) is True and link.drop(first.id) is False
        with pytest.raises(KeyError):
            link.drop("not-an-id")
        started(link)
        assert link.wait_drained(20)
        status = link.status()
        link.stop(5)
    assert (status.sent, status.dropped) == (1, 1)
    assert len(received(server_dir)) == 1


def test_the_queue_outlives_the_link(tmp_path: Path, server_dir: Path):
    with Store.open(tmp_path / "s") as store:
        link = link_for("http://127.0.0.1:9", store)  # nothing listens there
        for n in range(4):
            link.enqueue_alert(make_alert(n))
        started(link)
        wait_for(lambda: link.status().last_error, what="a failed connection")
        assert link.stop(5)
    with Store.open(tmp_path / "s") as store, dev_server(server_dir) as server:
        link = link_for(server.url, store)
        assert link.status().depth == 4
        started(link)
        assert link.wait_drained(20)
        link.stop(5)
    assert len(received(server_dir)) == 4


# -- the key stays secret ----------------------------------------------------------------------------
class _EchoHandler(BaseHTTPRequestHandler):
    """A server that echoes the request's Authorization header back in a 500 error: what a broken
    or hostile Asgard might do."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"error": f"bad header {self.headers.get('Authorization')}"}).encode()
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo", str(self.headers.get("Authorization")))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _echo


def test_the_api_key_never_appears_in_status_errors_logs_or_reprs(
    store: Store, caplog: pytest.LogCaptureFixture
):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    caplog.set_level(logging.DEBUG)
    try:
        link = link_for(f"http://127.0.0.1:{server.server_address[1]}", store)
        link.enqueue_alert(make_alert(1))
        started(link)
        status = wait_for(lambda: (s := link.status()).last_error and s, what="the echoed error")
        assert "bad header Bearer ***" in (status.last_error or "")
        link.stop(5)
    finally:
        server.shutdown()
        server.server_close()
    texts = [
        json.dumps(status.to_dict()),
        repr(link),
        repr(link.credentials),
        repr(link.credentials.key),
        str(link.credentials.key),
        repr(link.sender.client) if link.sender else "",
        caplog.text,
        json.dumps(store.sync_items(10)),
    ]
    for text in texts:
        assert API_KEY not in text


def test_api_key_file_mode_is_checked_and_the_environment_wins(store: Store, tmp_path: Path):
    key_file = tmp_path / "asgard.key"
    key_file.write_text("from-the-file\n")
    os.chmod(key_file, 0o644)
    link = AsgardLink(AsgardConfig(url="https://asgard.example", api_key_file=key_file), store, env={})
    assert link.configured and link.credentials.key is not None
    assert link.credentials.key.reveal() == "from-the-file"
    assert any("chmod 600" in w for w in link.status().warnings)
    os.chmod(key_file, 0o600)
    quiet = AsgardLink(AsgardConfig(url="https://asgard.example", api_key_file=key_file), store, env={})
    assert quiet.status().warnings == ()
    env = {"HEIMDAL_ASGARD_API_KEY": "from-env", "HEIMDAL_ASGARD_URL": "https://other.example/"}
    chosen = AsgardLink(AsgardConfig(url="https://asgard.example", api_key_file=key_file), store, env=env)
    assert chosen.credentials.key is not None and chosen.credentials.key.reveal() == "from-env"
    assert chosen.status().url == "https://other.example"
    missing = AsgardLink(
        AsgardConfig(url="https://asgard.example", api_key_file=tmp_path / "nope"), store, env={}
    )
    assert "cannot read the API key file" in (missing.status().reason or "")
    key_file.write_text("two words\n")
    bad = AsgardLink(AsgardConfig(url="https://asgard.example", api_key_file=key_file), store, env={})
    assert "cannot carry" in (bad.status().reason or "") and "two words" not in (bad.status().reason or "")
