"""The episodes of new items behaviour detectors keep: ended ones are forgotten, open ones kept."""

from __future__ import annotations

from heimdal_tui.detect.detectors.behaviour import _Episodes


def test_an_ended_episode_is_forgotten_and_an_open_one_kept():
    episodes = _Episodes(gap=600.0)
    episodes.add(1, 0.0, "a.example", "10.0.0.1")
    episodes.add(2, 900.0, "b.example", "10.0.0.2")
    episodes.expire(1100.0)  # device 1's episode ended at 0 s: within two gaps, kept
    assert set(episodes._open) == {1, 2}
    episodes.expire(1300.0)
    assert set(episodes._open) == {2}
    # device 2 goes on in the same episode; device 1 starts a new one, as it would have anyway
    assert episodes.add(2, 1400.0, "c.example", "10.0.0.3").total == 2
    assert episodes.add(1, 1400.0, "d.example", "10.0.0.4").total == 1


def test_expiry_changes_no_episode_a_later_item_would_continue():
    kept, trimmed = _Episodes(), _Episodes()
    times = [0.0, 100.0, 650.0, 1900.0, 2000.0, 2500.0, 4000.0]
    for i, t in enumerate(times):
        for device in range(5):
            ts = t + device * 37.0
            a = kept.add(device, ts, f"n{i}", f"v{i}")
            b = trimmed.add(device, ts, f"n{i}", f"v{i}")
            assert (a.first_ts, a.last_ts, a.total, a.values) == (b.first_ts, b.last_ts, b.total, b.values)
        trimmed.expire(t + 200.0)
