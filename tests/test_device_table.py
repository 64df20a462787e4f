"""The rolling device table: who counts as a device, counters, peers, rates, and memory bounds."""

from __future__ import annotations

import polars as pl
from scapy.all import ARP, IP, UDP, Ether, IPv6, Raw

from heimdal_tui.capture.frames import LINKTYPE_RAW, FrameBatch
from heimdal_tui.decode.headers import decode_headers
from heimdal_tui.devices.locality import Locality, address_text, mac_text, mac_value
from heimdal_tui.devices.table import KEY_IPV4, DeviceLimits, DeviceTable

ROUTER = "60:a4:b7:00:00:01"
PHONE = "f0:18:98:00:00:02"
TV = "8c:79:f5:00:00:03"


def _pkt(ts, smac, dmac, src, dst, size=100, sport=5000, dport=443):
    ip = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    p = Ether(src=smac, dst=dmac) / ip / UDP(sport=sport, dport=dport) / Raw(b"x" * size)
    raw = bytes(p)
    return (ts, raw, len(raw))


def _feed(table: DeviceTable, frames, linktype=1):
    return table.update(decode_headers(FrameBatch.from_frames(frames, linktype)).to_frame())


def _row(table: DeviceTable, mac: str) -> dict:
    rows = table.devices.filter(pl.col("device") == mac_value(mac)).to_dicts()
    assert rows, f"{mac} is not a device"
    return rows[0]


def test_local_hosts_are_devices_keyed_by_mac_and_remote_hosts_are_peers():
    table = DeviceTable()
    update = _feed(
        table,
        [
            _pkt(1.0, PHONE, ROUTER, "192.168.1.20", "142.250.1.1", size=100),
            _pkt(2.0, ROUTER, PHONE, "142.250.1.1", "192.168.1.20", size=300),
        ],
    )
    assert update.new_devices == [mac_value(PHONE)]
    assert table.devices.height == 1  # the router only forwarded: it is not the talker here
    row = _row(table, PHONE)
    assert (row["packets_out"], row["packets_in"]) == (1, 1)
    assert row["bytes_out"] == 142 and row["bytes_in"] == 342
    peers = table.peers.to_dicts()
    assert [address_text(p["peer_hi"], p["peer_lo"]) for p in peers] == ["142.250.1.1"]
    ips = [address_text(r["ip_hi"], r["ip_lo"]) for r in table.ips.to_dicts()]
    assert ips == ["192.168.1.20"]


def test_lan_traffic_counts_for_both_devices_and_broadcasts_for_nobody_inbound():
    table = DeviceTable()
    _feed(
        table,
        [
            _pkt(1.0, PHONE, TV, "192.168.1.20", "192.168.1.30", sport=5353, dport=5353),
            _pkt(1.5, PHONE, "ff:ff:ff:ff:ff:ff", "192.168.1.20", "255.255.255.255", dport=67),
            _pkt(2.0, TV, "01:00:5e:00:00:fb", "fe80::1", "ff02::fb", dport=5353),
        ],
    )
    assert {mac_text(k) for k in table.devices["device"].to_list()} == {PHONE, TV}
    assert _row(table, PHONE)["packets_out"] == 2 and _row(table, TV)["packets_in"] == 1
    assert _row(table, TV)["packets_out"] == 1
    # Broadcast and multicast addresses are neither devices nor peers.
    peers = {address_text(p["peer_hi"], p["peer_lo"]) for p in table.peers.to_dicts()}
    assert peers == {"192.168.1.30", "192.168.1.20"}


def test_arp_and_configured_local_networks():
    arp = Ether(src=ROUTER, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=ROUTER, psrc="192.168.1.1", pdst="192.168.1.9"
    )
    table = DeviceTable(Locality(["141.142.0.0/16"]))
    _feed(table, [(1.0, bytes(arp), 60), _pkt(2.0, PHONE, ROUTER, "141.142.220.118", "8.8.8.8")])
    keys = {mac_text(k) for k in table.devices["device"].to_list()}
    assert keys == {ROUTER, PHONE}
    ips = {address_text(r["ip_hi"], r["ip_lo"]) for r in table.ips.to_dicts()}
    assert ips == {"192.168.1.1", "141.142.220.118"}


def test_devices_without_macs_are_keyed_by_ip():
    raw = bytes(IP(src="10.0.0.5", dst="1.1.1.1") / UDP(sport=1, dport=53))
    table = DeviceTable()
    _feed(table, [(1.0, raw, len(raw))], linktype=LINKTYPE_RAW)
    assert table.devices["device"].to_list() == [KEY_IPV4 | 0x0A000005]


def test_rates_and_sparklines_come_from_the_rolling_history():
    table = DeviceTable(limits=DeviceLimits(bucket_seconds=10.0, history_buckets=6))
    frames = [_pkt(float(t), PHONE, ROUTER, "192.168.1.20", "1.1.1.1", size=958) for t in range(0, 60)]
    _feed(table, frames)  # one 1000-byte frame per second for a minute
    rates = table.rates().to_dicts()[0]
    assert abs(rates["bps_1m"] - 1000.0) < 1e-6
    assert abs(rates["bps_10s"] - 1000.0) < 1e-6
    spark = table.sparklines()[mac_value(PHONE)]
    assert spark == [10_000] * 6
    # History is bounded: older buckets fall off as capture time moves on.
    _feed(table, [_pkt(200.0, PHONE, ROUTER, "192.168.1.20", "1.1.1.1")])
    assert int(table.history["bucket"].min()) >= 20 - 5  # type: ignore[arg-type]


def test_caps_on_devices_and_peers_and_idle_eviction():
    limits = DeviceLimits(max_devices=5, max_peers=3, idle_timeout=1000.0)
    table = DeviceTable(limits=limits)
    frames = [
        _pkt(float(i), f"02:00:00:00:01:{i:02x}", ROUTER, f"192.168.1.{i + 10}", "8.8.8.8") for i in range(8)
    ]
    frames += [_pkt(10.0 + i, PHONE, ROUTER, "192.168.1.200", f"9.9.9.{i}") for i in range(6)]
    update = _feed(table, frames)
    assert table.devices.height == 5 and table.dropped["devices"] == 4
    assert len(update.evicted_devices) == 4
    assert table.peers.filter(pl.col("device") == mac_value(PHONE)).height == 3
    assert table.dropped["peers"] == 3
    _feed(table, [_pkt(5000.0, TV, ROUTER, "192.168.1.77", "8.8.8.8")])
    assert {mac_text(k) for k in table.devices["device"].to_list()} == {TV}


def _peer_batch(device_count: int, peers: range, ts: float) -> pl.DataFrame:
    """Per-batch peer aggregates as the table folds them: every device to every peer once."""
    rows = [
        (dev, 0, 0xFFFF_0808_0000 + peer, ts, ts + 0.5, 1, 100, 10)
        for dev in range(1, device_count + 1)
        for peer in peers
    ]
    return pl.DataFrame(
        rows,
        schema=[
            "device",
            "peer_hi",
            "peer_lo",
            "first_seen",
            "last_seen",
            "packets",
            "bytes_out",
            "bytes_in",
        ],
        orient="row",
    ).cast({"device": pl.UInt64, "peer_hi": pl.UInt64, "peer_lo": pl.UInt64})


def test_the_sharded_rolling_table_folds_to_what_one_group_by_of_everything_gives():
    table = DeviceTable()
    batches = [_peer_batch(300, range(i * 5, i * 5 + 20), float(i)) for i in range(12)]
    for batch in batches:
        table._peers.add(batch)  # queued; merged shard by shard as the queue fills
    expected = (
        pl.concat(batches)
        .group_by("device", "peer_hi", "peer_lo")
        .agg(
            pl.col("first_seen").min(),
            pl.col("last_seen").max(),
            pl.col("packets").sum(),
            pl.col("bytes_out").sum(),
            pl.col("bytes_in").sum(),
        )
    )
    got = table.peers
    key = ["device", "peer_hi", "peer_lo"]
    assert got.sort(key).equals(expected.select(got.columns).sort(key))
    # Every device's rows sit in one shard, and the shards cover the table exactly.
    shard_of: dict[int, int] = {}
    for i, part in enumerate(table._peers.parts):
        for device in part["device"].unique().to_list():
            assert shard_of.setdefault(device, i) == i
    assert len(shard_of) == 300 and sum(p.height for p in table._peers.parts) == got.height
    assert table._peers.height == got.height
    # Replacing the table (as eviction does) re-splits it; reading it back gives the same rows.
    table.peers = got.filter(pl.col("device") != 7)
    assert table.peers.height == got.height - got.filter(pl.col("device") == 7).height
    assert sorted({d for p in table._peers.parts for d in p["device"].to_list()}) == [
        d for d in range(1, 301) if d != 7
    ]


def test_a_cap_keeps_the_most_recently_seen_entries_whenever_the_batches_are_folded():
    # 40 batches of 10 new peers per device against a cap of 25: whether merged batch by batch
    # or many at once, each device keeps its 25 most recently seen peers and the rest are counted.
    limits = DeviceLimits(max_peers=25)
    for min_queue in (1, 10_000_000):
        table = DeviceTable(limits=limits)
        table._peers.MIN_QUEUE = min_queue
        for i in range(40):
            table._peers.add(_peer_batch(50, range(i * 10, i * 10 + 10), float(i)))
        peers = table.peers
        per_device = peers.group_by("device").agg(pl.col("peer_lo") - 0xFFFF_0808_0000)
        for kept in per_device["peer_lo"].to_list():
            # The two newest batches (peers 380-399) and 5 of the one before (tied on last_seen).
            assert len(kept) == 25 and set(range(380, 400)) <= set(kept) <= set(range(370, 400))
        assert table.dropped["peers"] == 50 * (400 - 25)


def test_the_total_cap_keeps_the_most_recently_seen_entries_of_any_device():
    # 50 devices, each batch 4 new peers a device, against a total of 160 peers (20 per shard):
    # the table keeps the most recent 20 of each shard whenever it folds, older devices' first.
    limits = DeviceLimits(max_peers=1000, total_peers=160)
    tables = []
    for min_queue in (1, 10_000_000):
        table = DeviceTable(limits=limits)
        table._peers.MIN_QUEUE = min_queue
        for i in range(30):
            table._peers.add(_peer_batch(50, range(i * 4, i * 4 + 4), float(i)))
        peers = table.peers
        assert peers.height <= 160 and all(part.height <= 20 for part in table._peers.parts)
        assert peers.height > 150  # the shares are filled
        # Every part holds its newest rows: none older than the newest it dropped.
        for part in table._peers.parts:
            assert float(part["last_seen"].min()) >= 28.5  # type: ignore[arg-type]  # batches 28 and 29 fill 20
        assert table.dropped["peers"] == 50 * 120 - peers.height
        tables.append(peers.sort("device", "peer_lo"))
    assert tables[0].equals(tables[1])  # the same rows whenever the batches were folded


def test_a_long_queue_split_a_group_at_a_time_folds_to_the_same_table():
    # The queue is split into shards a group of batches at a time (an eighth of it); the table it
    # folds to is the one a single split of the whole queue gives, row for row.
    tables = []
    for groups in (False, True):
        table = DeviceTable(limits=DeviceLimits(max_peers=40))
        table._peers.MIN_QUEUE = 10_000_000  # nothing folds while the batches are added
        for i in range(30):
            table._peers.add(_peer_batch(20 + i, range(i * 3, i * 3 + 5), float(i)))
        if groups:
            table._peers.MIN_QUEUE = 1  # the fold's group size: queued rows / 8
        tables.append(table.peers.sort("device", "peer_lo"))
    one, grouped = tables
    assert one.height > 0 and one.equals(grouped)
    assert one.group_by("device").len()["len"].max() == 40  # the cap applied in both


def test_many_small_batches_wait_joined_and_fold_to_the_same_table():
    # A live pace queues hundreds of small batches before a fold; they wait joined into a few
    # frames (each small polars frame costs memory of its own), and fold to the same rows.
    tables = []
    for compact in (10**9, 16):
        table = DeviceTable(limits=DeviceLimits(max_peers=40))
        rolling = table._peers
        rolling.COMPACT_FRAMES = compact
        rolling.MIN_QUEUE = 64  # joins of 64 rows or more stay as they are
        rolling.height = 10**9  # as if the table were big: nothing folds while batches come
        for i in range(300):
            rolling.add(_peer_batch(3, range(i % 50, i % 50 + 2), float(i)))  # 6 rows a batch
            if compact == 16:
                assert len(rolling.queue) <= 16 + rolling.queued // 64
        if compact == 16:
            assert len(rolling.queue) < 60 and all(f.n_chunks() == 1 for f in rolling.queue[:-1])
        rolling.height = 0
        tables.append(table.peers.sort("device", "peer_lo"))
    apart, joined = tables
    assert apart.height > 0 and apart.equals(joined)


def test_names_fold_per_device_with_a_cap_and_go_with_their_device():
    limits = DeviceLimits(max_names=3, max_devices=2)
    table = DeviceTable(limits=limits)
    _feed(table, [_pkt(1.0, PHONE, ROUTER, "192.168.1.20", "1.1.1.1")])
    phone = mac_value(PHONE)
    table.add_name_sightings([(phone, "a.example", "dns", 1.0), (phone, "a.example", "dns", 2.0)])
    table.add_name_sightings([(phone, "a.example", "sni", 3.0), (12345, "ghost.example", "dns", 3.0)])
    names = table.names.sort("kind")
    assert names.select("name", "kind", "first_seen", "last_seen", "count").rows() == [
        ("a.example", "dns", 1.0, 2.0, 2),
        ("a.example", "sni", 3.0, 3.0, 1),
    ]  # the sighting for a device the table does not hold is dropped
    table.add_name_sightings([(phone, f"n{i}.example", "dns", 10.0 + i) for i in range(4)])
    assert sorted(table.names["name"].to_list()) == ["n1.example", "n2.example", "n3.example"]
    assert table.dropped["names"] == 3
    # Evicting the device (two newer devices arrive, max_devices=2) drops its names.
    _feed(
        table,
        [
            _pkt(20.0, TV, ROUTER, "192.168.1.30", "1.1.1.1"),
            _pkt(21.0, "02:00:00:00:00:09", ROUTER, "192.168.1.31", "1.1.1.1"),
        ],
    )
    assert phone not in table.devices["device"].to_list()
    assert table.names.filter(pl.col("device") == phone).height == 0
