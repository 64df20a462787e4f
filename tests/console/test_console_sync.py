"""Screen 5 against the reference Asgard server over real loopback HTTP: the queue, the exact JSON
that leaves the network, and the pause / retry / drop keys."""

from __future__ import annotations

import asyncio
import json

from heimdal_tui.asgard.devserver import AsgardDevServer, FaultPlan
from heimdal_tui.console.factory import make_local_console
from heimdal_tui.console.screens.sync import SyncScreen
from heimdal_tui.sensor.build import SensorSpec
from tests.console.conftest import INCIDENTS

API_KEY = "console-test-key-5e8d"


async def _until(predicate, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def test_sync_screen_shows_the_queue_and_drives_it(tmp_path, monkeypatch):
    # Asgard answers 503 to the first 10,000 requests: every item stays queued, retried with backoff.
    server = AsgardDevServer(tmp_path / "asgard", API_KEY, faults=FaultPlan(fail_first=10_000)).start()
    monkeypatch.setenv("HEIMDAL_ASGARD_API_KEY", API_KEY)
    config = tmp_path / "config.toml"
    config.write_text(f'[asgard]\nurl = "{server.url}"\nbackoff_initial = 30.0\nbackoff_max = 60.0\n')
    spec = SensorSpec(
        replay=(str(INCIDENTS),), speed=None, config_path=config, data_dir=tmp_path / "data", sync=True
    )
    app, built = make_local_console(spec)
    built.session.start()
    link = built.session.sync
    assert link is not None and link.configured

    def sync() -> dict:
        assert app.state.sync is not None
        return app.state.sync

    async def run() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("5")
            await _until(
                lambda: (app.state.sync or {}).get("depth", 0) > 0 and (app.state.sync or {}).get("items")
            )
            screen = app.screen
            assert isinstance(screen, SyncScreen)
            await pilot.pause(0.5)
            assert screen.table.row_count == len(sync()["items"])
            head = str(screen.query_one("#sync-head").render())
            assert "Queue" in head and server.url.split("//")[1] in head
            assert API_KEY not in head
            # Enter: the exact anonymized JSON of the item under the cursor.
            await pilot.press("enter")
            await _until(lambda: "hidden" not in screen.query_one("#preview").classes)
            preview = str(screen.query_one("#preview").render())
            payload = preview.split("\n", 1)[1]
            json.loads(payload)  # it is JSON, as sent
            for raw in ("192.168.1.", "LAPTOP-J4R8TQ2N", "8c:8d:28:4f:b3:19"):
                assert raw not in payload, f"{raw} would leave the network"
            # d drops the item: the dropped counter counts it.
            before = sync()["dropped"]
            first = screen.table.cursor_key
            await pilot.press("d")
            await _until(lambda: sync()["dropped"] == before + 1)
            assert first not in {i["id"] for i in sync()["items"]}
            # p pauses and resumes sending.
            await pilot.press("p")
            await _until(lambda: sync()["state"] == "paused")
            await pilot.press("p")
            await _until(lambda: sync()["state"] != "paused")
            # t retries now: a request goes out at once instead of after the 30 s backoff.
            requests = server.faults._seen
            await pilot.press("T")
            await _until(lambda: server.faults._seen > requests, timeout=10)

    try:
        asyncio.run(run())
    finally:
        built.cleanup()
        server.stop()
