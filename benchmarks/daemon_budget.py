"""The daemon's memory budget: a 1,000-device LAN at 2,000 packets/s for an hour of capture time.

Generates (once) an hour of a busy 1,000-device LAN at 2,000 packets/s (7.2M packets; headers
kept, payloads cut at 128 bytes as a snaplen would, so the file stays ~1 GB), then runs
``heimdal-tui daemon --replay FILE --speed X`` (a paced replay: X times the capture's own pace)
and samples the daemon's resident memory (VmRSS) every second until the replay ends (its packet
count, scraped from its --metrics endpoint, stands still). Reports the
peak RSS of each half (and quarter) of the hour, whether the second half grew, and how much the
daemon wrote to storage (``write_bytes`` of /proc/PID/io: what an SD card would take).

    python3 benchmarks/daemon_budget.py                 # --speed 6: about 10 minutes
    python3 benchmarks/daemon_budget.py --speed 1       # the real pace: an hour
    python3 benchmarks/daemon_budget.py --config my.toml   # with these settings (default: none)

Bar (issue): RSS under 200 MB, not growing in the second half.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CAPTURE = HERE / "out" / "lan_1h_2000pps.pcap"


def proc_number(pid: int, name: str, field: str) -> int | None:
    """The number after ``field`` in /proc/PID/NAME (None once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mb(pid: int) -> float | None:
    kib = proc_number(pid, "status", "VmRSS:")
    return None if kib is None else kib / 1024


def written_mb(pid: int) -> float | None:
    """The bytes the process has had written to storage (``write_bytes`` of /proc/PID/io), in MB."""
    written = proc_number(pid, "io", "write_bytes:")
    return None if written is None else written / 1e6


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape_packets(port: int) -> float | None:
    """heimdal_packets_total from the daemon's Prometheus endpoint (None until it answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("heimdal_packets_total"):
            return float(line.split()[-1])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE)
    parser.add_argument("--speed", type=float, default=6.0)
    parser.add_argument("--pps", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=3600.0, help="capture time to generate")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--samples-out", type=Path, help="write the RSS samples (seconds, MB) here")
    parser.add_argument("--config", type=Path, help="the daemon's configuration (default: an empty one)")
    args = parser.parse_args(argv)
    if not args.capture.exists():
        args.capture.parent.mkdir(parents=True, exist_ok=True)
        packets = int(args.pps * args.seconds)
        subprocess.run(
            [sys.executable, str(HERE / "make_lan_capture.py"), "--packets", str(packets), "--devices",
             str(args.devices), "--pps", str(args.pps), "--snaplen", "128", "--out", str(args.capture)],
            check=True,
        )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        config = args.config or Path(tmp) / "config.toml"
        if args.config is None:
            config.write_text("")
        errors = open(Path(tmp) / "stderr.txt", "w+")  # noqa: SIM115 (a pipe nobody reads could stall the daemon)
        port = free_port()
        started = time.monotonic()
        daemon = subprocess.Popen(
            [sys.executable, "-m", "heimdal_tui", "daemon", "--replay", str(args.capture), "--speed",
             str(args.speed), "--data-dir", str(Path(tmp) / "data"), "--config", str(config),
             "--learning-period", "20m", "--metrics", f"127.0.0.1:{port}"],
            stderr=errors, text=True,
        )  # fmt: skip
        expected = args.seconds / args.speed
        samples: list[tuple[float, float]] = []
        written = 0.0  # MB the daemon has written to storage (the store, its logs), as last read
        progress: list[tuple[float, float]] = []  # (seconds, packets the daemon has taken in)
        try:
            # The daemon stays up when its replay ends (consoles may still attach): the run is over
            # when its packet count has stood still for 15 s.
            while daemon.poll() is None and time.monotonic() - started < expected * 2 + 120:
                now = time.monotonic() - started
                value = rss_mb(daemon.pid)
                if value is not None:
                    samples.append((now, value))
                written = written_mb(daemon.pid) or written
                packets = scrape_packets(port)
                if packets is not None:
                    progress.append((now, packets))
                    moved = [t for t, n in progress if n != packets]
                    if packets > 0 and now - (moved[-1] if moved else 0.0) > 15.0:
                        break
                time.sleep(1.0)
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=30)
        last_packets = progress[-1][1] if progress else 0.0
        done_at = next((t for t, n in progress if n == last_packets), float("nan"))
        store_mb = sum(f.stat().st_size for f in (Path(tmp) / "data").rglob("*") if f.is_file()) / 1e6
        errors.seek(0)
        tail = errors.read()[-2000:]
        errors.close()
    if not samples:
        print("no samples: the daemon did not run", file=sys.stderr)
        return 1
    if args.samples_out is not None:
        args.samples_out.write_text("".join(f"{t:.1f} {v:.1f}\n" for t, v in samples))
    span = done_at if done_at == done_at else expected  # nan: no metrics answered
    first = [v for t, v in samples if t <= span / 2]
    second = [v for t, v in samples if span / 2 < t <= span]
    peak = max(v for _, v in samples)
    print(f"daemon replaying {args.capture.name} at {args.speed:g}x ({args.pps:,.0f} pps of capture time, "
          f"{args.devices:,} devices) for {samples[-1][0]:.0f} s; exit {code}")  # fmt: skip
    print(f"  peak RSS {peak:.0f} MB; first half peak {max(first):.0f} MB, second half peak "
          f"{max(second) if second else float('nan'):.0f} MB, at the end {samples[-1][1]:.0f} MB")  # fmt: skip
    growth = (max(second) / max(first)) if first and second else float("nan")
    quarters = [[v for t, v in samples if span * q / 4 < t <= span * (q + 1) / 4] for q in range(4)]
    print("  peak of each quarter of the hour: "
          + " / ".join(f"{max(q):.0f}" if q else "-" for q in quarters) + " MB")  # fmt: skip
    print(f"  second half / first half: {growth:.2f}x; bar: < 200 MB and not growing -> "
          f"{'met' if peak < 200 and growth <= 1.05 else 'NOT met'}")  # fmt: skip
    print(f"  {last_packets:,.0f} packets taken in {done_at:.0f} s for {expected:.0f} s of paced capture"
          f" ({'kept pace' if done_at <= expected * 1.02 + 10 else 'fell behind the pace'})")  # fmt: skip
    print(
        f"  written to storage while replaying: {written:,.0f} MB; the store at the end: {store_mb:,.0f} MB"
    )
    if tail.strip():
        print("  daemon stderr (end):\n" + tail)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
