"""Console responsiveness: keypress latency while replaying at full speed, and startup time.

Measured as a user over SSH sees it: the real ``heimdal-tui`` process runs in a pseudo-terminal
(80x24, TERM=xterm-256color), and the benchmark reads what the console writes to the terminal.

Keypresses: the console replays a large capture as fast as it can (the sensor thread keeps the
pipeline at full speed throughout). Every 300 ms the benchmark types a screen key (1..4 in turn)
and times from writing the key to the pty until the console has written that screen's title
("2 Devices", ...) to the terminal: handling the key, composing the new screen and painting it.
Reports p50/p95/max over the presses made while the replay was still running.

Startup: time from spawning ``heimdal-tui --replay sample_pcaps/home_lan_incidents.pcap`` to the
first frame of the Overview screen holding sensor data ("Packets" with a figure), through the same
pty; it includes the interpreter, every import, the store and the first paint. Median of several.

    python3 benchmarks/console_responsiveness.py                      # generates the capture if absent
    python3 benchmarks/console_responsiveness.py --capture some.pcap --presses 200
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLE = REPO / "sample_pcaps" / "home_lan_incidents.pcap"
DEFAULT_CAPTURE = HERE / "out" / "lan_300k.pcap"
TITLES = {"1": b"1 Overview", "2": b"2 Devices", "3": b"3 Alerts", "4": b"4 Drift"}
SEQUENCE = ["2", "3", "4", "1"]
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")


def ensure_capture(path: Path, packets: int) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                str(HERE / "make_lan_capture.py"),
                "--packets",
                str(packets),
                "--out",
                str(path),
            ],
            check=True,
        )
    return path


class Terminal:
    """``heimdal-tui ARGS`` in an 80x24 pseudo-terminal; what it writes, with escapes removed."""

    def __init__(self, args: list[str]) -> None:
        self.started = time.perf_counter()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the console
            os.environ["TERM"] = "xterm-256color"
            os.execvp(sys.executable, [sys.executable, "-m", "heimdal_tui", *args])
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.text = b""
        self.last = b""  # the last few screens' worth, never cleared

    def read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            return False
        plain = _ESCAPES.sub(b"", chunk)
        self.text = (self.text + plain)[-200_000:]
        self.last = (self.last + plain)[-20_000:]
        return True

    def wait_for(self, pattern: bytes, timeout: float = 30.0) -> float | None:
        """Seconds until ``pattern`` is written after now; None on timeout. Clears what was read."""
        self.text = b""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if re.search(pattern, self.text):
                return time.perf_counter() - start
            self.read(0.005)
        return None

    def type(self, key: str) -> None:
        os.write(self.fd, key.encode())

    def close(self) -> None:
        try:
            os.write(self.fd, b"q")
            deadline = time.time() + 5
            while time.time() < deadline and self.read(0.1):
                pass
            os.kill(self.pid, signal.SIGTERM)
        except OSError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def keypress_latencies(
    capture: Path, presses: int, config: Path
) -> tuple[list[tuple[str, float]], list[float]]:
    """(screen switches as (key, seconds), cursor moves): from each key to the console's answer on the
    terminal. A screen key is answered when the new screen's title is written; a cursor key
    (down/up in the devices and alerts tables) when the repaint of the moved highlight starts."""
    term = Terminal(["--replay", str(capture), "--speed", "max", "--config", str(config)])
    switches: list[tuple[str, float]] = []
    moves: list[float] = []
    try:
        if term.wait_for(rb"Packets [0-9]", 60) is None:
            raise SystemExit("the console never showed the overview with data")
        for i in range(presses):
            key = SEQUENCE[i % len(SEQUENCE)]
            term.text = b""
            written = time.perf_counter()
            term.type(key)
            while time.perf_counter() - written < 10 and TITLES[key] not in term.text:
                term.read(0.002)
            if TITLES[key] not in term.text:
                raise SystemExit(f"key {key!r}: the screen never changed")
            switches.append((key, time.perf_counter() - written))
            if b"finished" in term.text:
                break
            settle(term, 0.2)
            # The devices table of this capture always has rows, so a cursor key always moves the
            # highlight (on an empty or short table it would change nothing, and the next status
            # line would be mistaken for the answer).
            if key == "2" and re.search(rb"[0-9]{3,} of [0-9,]+ devices", term.text + term.last):
                for arrow in ("\x1b[B", "\x1b[B", "\x1b[A"):
                    term.text = b""
                    written = time.perf_counter()
                    term.type(arrow)
                    while time.perf_counter() - written < 5 and not term.text:
                        term.read(0.001)
                    if term.text:
                        moves.append(time.perf_counter() - written)
                    settle(term, 0.15)
    finally:
        term.close()
    return switches, moves


def settle(term: Terminal, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        term.read(0.02)


def startup_times(runs: int, config: Path) -> list[float]:
    times = []
    for _ in range(runs):
        term = Terminal(["--replay", str(SAMPLE), "--speed", "60", "--config", str(config)])
        try:
            seen = term.wait_for(rb"Packets [0-9]", 60)
            if seen is None:
                raise SystemExit("the console never showed the overview with data")
            times.append(time.perf_counter() - term.started)
        finally:
            term.close()
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--capture", type=Path, default=DEFAULT_CAPTURE, help="capture replayed at full speed"
    )
    parser.add_argument("--packets", type=int, default=300_000, help="packets of the generated capture")
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--startup-runs", type=int, default=5)
    args = parser.parse_args(argv)
    capture = ensure_capture(args.capture, args.packets)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text("")
        switches, moves = keypress_latencies(capture, args.presses, config)
        startup = startup_times(args.startup_runs, config)
    print(f"keys typed while {capture.name} replayed at full speed:")
    per_screen = [
        (f"  to {TITLES[key].decode()}", [t for k, t in switches if k == key])
        for key in dict.fromkeys(SEQUENCE)
    ]
    rows = [("cursor key to repaint", moves), ("screen key to the new screen", [t for _, t in switches])]
    for what, values in [*rows, *per_screen]:
        ms = [v * 1000 for v in values]
        if ms:
            print(f"  {what}: {len(ms)} keys, p50 {percentile(ms, 0.5):.0f} ms, p95 {percentile(ms, 0.95):.0f} ms, "
                  f"max {max(ms):.0f} ms")  # fmt: skip
    print(f"startup to the first screen with data: median {statistics.median(startup):.2f} s "
          f"(min {min(startup):.2f}, max {max(startup):.2f}, {len(startup)} runs)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
