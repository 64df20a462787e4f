#!/usr/bin/env python3
"""End-to-end throughput and peak memory of `heimdal-tui analyze` against tshark, scapy and tcpdump.

    python3 benchmarks/run_analyze_bench.py                      # 1M-packet capture, 3 runs each
    python3 benchmarks/run_analyze_bench.py --flatness           # + analyze on a 3M-packet capture
    python3 benchmarks/run_analyze_bench.py --capture my.pcap --repeat 5

Every measurement is a separate process run under GNU time (``/usr/bin/time -v``: peak RSS is its
"Maximum resident set size"); wall time is taken around the process with ``time.perf_counter``, so it
includes interpreter start-up and imports: it is what a user waits. Each is repeated ``--repeat``
times and the median is reported. The capture is read once before measuring so that every tool
starts from a warm page cache.

Measured:

a. ``python3 -m heimdal_tui analyze FILE -q``;
b. ``tshark -r FILE -T fields -e ...`` (the fields analyze extracts) with stdout to /dev/null;
c. scapy: ``benchmarks/scapy_dissect.py`` over the first ``--scapy-packets`` packets (default 100k;
   scapy manages a few thousand packets/s), its packets/s extrapolated to the whole capture;
d. ``tcpdump -r FILE -w /dev/null``: the raw read-and-copy ceiling (``--no-tcpdump`` skips it).

With ``--flatness`` analyze also runs on a capture three times as long (generated on demand with
``make_lan_capture.py --packets 3000000``, same devices) and the two peak RSS are compared.

The table goes to stdout and to ``benchmarks/out/results.md`` (``--results``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
GENERATOR = HERE / "make_lan_capture.py"
SCAPY_SCRIPT = HERE / "scapy_dissect.py"

TSHARK_FIELDS = [
    "frame.time_epoch",
    "eth.src",
    "eth.dst",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "ip.proto",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "tcp.flags",
    "frame.len",
    "dns.qry.name",
    "tls.handshake.extensions_server_name",
    "http.host",
    "http.user_agent",
    "dhcp.option.hostname",
]

# The bar (see README.md).
BAR_SPEEDUP = 3.0
GOAL_SPEEDUP = 10.0
BAR_RSS_MB = 250.0
BAR_FLAT_RATIO = 1.25  # peak RSS on 3x the packets may grow by at most this factor


@dataclass
class Run:
    wall_s: float
    rss_kb: int | None
    returncode: int
    stderr: str
    stdout: str


@dataclass
class Result:
    name: str
    command: str
    packets: int  # packets the tool read
    runs: list[Run] = field(default_factory=list)
    pps_override: float | None = None  # scapy: loop-internal rate, extrapolated
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.returncode == 0 for r in self.runs)

    @property
    def wall(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def rss_mb(self) -> float | None:
        values = [r.rss_kb for r in self.runs if r.rss_kb is not None]
        return statistics.median(values) / 1024 if values else None

    @property
    def pps(self) -> float:
        if self.pps_override is not None:
            return self.pps_override
        return self.packets / self.wall if self.wall > 0 else 0.0


def find_time() -> str | None:
    path = shutil.which("time", path="/usr/bin:/bin") or (
        "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    )
    return path


def measure(cmd: list[str], time_bin: str | None, timeout: float, keep_stdout: bool = False) -> Run:
    """Run ``cmd`` once and return its wall time and peak RSS.

    stdout goes to /dev/null unless ``keep_stdout`` (scapy's one JSON line); tshark's is huge.
    """
    full = [time_bin, "-v", *cmd] if time_bin else cmd
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            full,
            cwd=ROOT,
            stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return Run(
            time.perf_counter() - started, None, -9, f"timed out after {timeout:.0f} s\n{err[-4000:]}", ""
        )
    wall = time.perf_counter() - started
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    rss = int(match.group(1)) if match else None
    return Run(wall, rss, proc.returncode, proc.stderr, proc.stdout or "")


def count_packets(path: Path) -> int:
    """Records in a classic pcap file (walking the record headers), else capinfos's count."""
    with open(path, "rb") as f:
        head = f.read(24)
        magic = head[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            endian = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            endian = ">"
        else:
            endian = ""
        if endian:
            rec = struct.Struct(endian + "IIII")
            n = 0
            while True:
                header = f.read(16)
                if len(header) < 16:
                    return n
                n += 1
                f.seek(rec.unpack(header)[2], 1)
    out = subprocess.run(
        ["capinfos", "-c", "-M", "-T", str(path)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1].split("\t")[-1])


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def ensure_capture(path: Path, packets: int, devices: int, seed: int) -> float | None:
    """Generate ``path`` when absent; returns the generation wall time (None when it existed)."""
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {path} ({packets:,} packets, {devices} devices) ...", file=sys.stderr)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(GENERATOR),
            "--packets",
            str(packets),
            "--devices",
            str(devices),
            "--seed",
            str(seed),
            "--out",
            str(path),
        ],
        cwd=ROOT,
        check=True,
    )
    return time.perf_counter() - started


def repeat(
    name: str,
    cmd: list[str],
    packets: int,
    n: int,
    time_bin: str | None,
    timeout: float,
    keep_stdout: bool = False,
) -> Result:
    result = Result(name, " ".join(cmd), packets)
    for i in range(n):
        run = measure(cmd, time_bin, timeout, keep_stdout)
        result.runs.append(run)
        rss = f"{run.rss_kb / 1024:.0f} MB" if run.rss_kb else "?"
        status = "ok" if run.returncode == 0 else f"FAILED (exit {run.returncode})"
        print(f"  {name} run {i + 1}/{n}: {run.wall_s:.2f} s, peak RSS {rss}, {status}", file=sys.stderr)
        if run.returncode != 0:
            print(_tail(run.stderr), file=sys.stderr)
            break  # a crash is reported, not retried
    return result


def _tail(text: str, lines: int = 40) -> str:
    """The end of a stderr, without GNU time's own -v report."""
    keep = text.split("\tCommand being timed:")[0]
    keep = re.sub(r"(?m)^Command (exited with non-zero status|terminated by signal) .*$", "", keep)
    return "\n".join(keep.rstrip().splitlines()[-lines:])


def machine() -> str:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = info.get("model name", "unknown CPU")
    if "cpu family" in info:
        cpu += f" (family {info['cpu family']} model {info.get('model', '?')}"
        cpu += f", {float(info['cpu MHz']):.0f} MHz)" if "cpu MHz" in info else ")"
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}, {system}"


def versions() -> str:
    parts = []
    for cmd in (["tshark", "--version"], ["tcpdump", "--version"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            parts.append((out.stdout or out.stderr).splitlines()[0].strip())
        except (OSError, IndexError):
            pass
    try:
        import scapy

        parts.append(f"scapy {scapy.__version__}")
    except ImportError:
        pass
    return "; ".join(parts)


def fmt_mb(value: float | None) -> str:
    return f"{value:,.0f}" if value is not None else "n/a"


def table(results: list[Result], reps: int) -> str:
    lines = [
        f"| tool | packets | wall s (median of {reps}) | packets/s | peak RSS MB | vs tshark | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    tshark = next((r for r in results if r.name == "tshark" and r.ok), None)
    for r in results:
        if not r.ok:
            failed = next(run for run in r.runs if run.returncode != 0)
            lines.append(f"| {r.name} | {r.packets:,} | FAILED (exit {failed.returncode}) | | | | {r.note} |")
            continue
        ratio = f"{r.pps / tshark.pps:.1f}x" if tshark is not None else ""
        cells = [r.name, f"{r.packets:,}", f"{r.wall:.2f}", f"{r.pps:,.0f}", fmt_mb(r.rss_mb), ratio, r.note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--capture", type=Path, default=OUT / "lan_1m.pcap", help="capture to measure (generated when absent)"
    )
    parser.add_argument("--packets", type=int, default=1_000_000, help="packets when generating the capture")
    parser.add_argument("--devices", type=int, default=1000, help="devices when generating captures")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument(
        "--scapy-packets", type=int, default=100_000, help="packets scapy dissects (default 100k)"
    )
    parser.add_argument("--scapy-no-tls", action="store_true", help="scapy without its (slow) TLS layer")
    parser.add_argument("--no-tshark", action="store_true")
    parser.add_argument("--no-scapy", action="store_true")
    parser.add_argument("--no-tcpdump", action="store_true")
    parser.add_argument(
        "--analyze-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for analyze, repeatable (e.g. --analyze-arg=--no-detect)",
    )
    parser.add_argument("--flatness", action="store_true", help="also run analyze on a 3x longer capture")
    parser.add_argument(
        "--flatness-capture", type=Path, default=None, help="default: benchmarks/out/lan_3m.pcap"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before one run is stopped")
    parser.add_argument("--results", type=Path, default=OUT / "results.md")
    args = parser.parse_args(argv)

    time_bin = find_time()
    if time_bin is None:
        print(
            "benchmarks: GNU time (/usr/bin/time) not found: peak RSS cannot be measured. "
            "Install it with `apt-get install -y time`.",
            file=sys.stderr,
        )
    capture = args.capture.resolve()
    gen_s = ensure_capture(capture, args.packets, args.devices, args.seed)
    packets = count_packets(capture)
    size_mb = capture.stat().st_size / 1e6
    print(f"capture {capture}: {packets:,} packets, {size_mb:,.0f} MB", file=sys.stderr)
    warm(capture)

    results: list[Result] = []
    py = sys.executable
    extra = list(args.analyze_arg)
    analyze_cmd = [py, "-m", "heimdal_tui", "analyze", str(capture), "-q", *extra]
    results.append(repeat("heimdal-tui analyze", analyze_cmd, packets, args.repeat, time_bin, args.timeout))

    summary = ""
    if results[0].ok:  # one more run without -q, for analyze's own summary (not part of the medians)
        run = measure([py, "-m", "heimdal_tui", "analyze", str(capture), *extra], time_bin, args.timeout)
        summary = _tail(run.stderr, 20)

    if not args.no_tshark and shutil.which("tshark"):
        cmd = ["tshark", "-r", str(capture), "-T", "fields"]
        for name in TSHARK_FIELDS:
            cmd += ["-e", name]
        res = repeat("tshark", cmd, packets, args.repeat, time_bin, args.timeout)
        res.command = " ".join(cmd) + " > /dev/null"
        results.append(res)

    if not args.no_scapy:
        n = min(args.scapy_packets, packets)
        cmd = [py, str(SCAPY_SCRIPT), str(capture), "--packets", str(n)]
        if args.scapy_no_tls:
            cmd.append("--no-tls")
        res = repeat("scapy (PcapReader)", cmd, n, args.repeat, time_bin, args.timeout, keep_stdout=True)
        if res.ok:
            loops = [json.loads(r.stdout.strip().splitlines()[-1]) for r in res.runs]
            loop_s = statistics.median(x["loop_s"] for x in loops)
            res.pps_override = n / loop_s if loop_s > 0 else 0.0
            res.note = (
                f"first {n:,} packets only; packets/s is the dissection loop's (imports excluded), "
                f"extrapolated: {packets / res.pps_override / 60:,.1f} min for the whole capture"
                + ("" if not args.scapy_no_tls else "; TLS layer off")
            )
        results.append(res)

    if not args.no_tcpdump and shutil.which("tcpdump"):
        cmd = ["tcpdump", "-r", str(capture), "-w", "/dev/null"]
        res = repeat("tcpdump -w /dev/null", cmd, packets, args.repeat, time_bin, args.timeout)
        res.note = "raw read/copy ceiling, no decoding"
        results.append(res)

    flat: list[tuple[str, int, Result]] = []
    gen3_s = None
    if args.flatness:
        big = (args.flatness_capture or OUT / "lan_3m.pcap").resolve()
        gen3_s = ensure_capture(big, 3 * args.packets, args.devices, args.seed)
        big_packets = count_packets(big)
        warm(big)
        res = repeat(
            "heimdal-tui analyze (3x)",
            [py, "-m", "heimdal_tui", "analyze", str(big), "-q", *extra],
            big_packets,
            args.repeat,
            time_bin,
            args.timeout,
        )
        flat = [(capture.name, packets, results[0]), (big.name, big_packets, res)]

    # -- report -----------------------------------------------------------------------------------
    now = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    md = [
        "# heimdal-tui analyze benchmark",
        "",
        f"- date: {now}",
        f"- machine: {machine()}",
        f"- tools: {versions()}",
        f"- capture: `{_rel(capture)}`: {packets:,} packets, {size_mb:,.0f} MB"
        + (f" (generated in {gen_s:.1f} s)" if gen_s is not None else ""),
        f"- wall time is end to end (process start to exit), the median of {args.repeat} runs; "
        "peak RSS is GNU time's maximum resident set size",
        "",
        table(results, args.repeat),
        "",
    ]
    analyze, tshark = results[0], next((r for r in results if r.name == "tshark"), None)
    checks = []
    if analyze.ok and tshark is not None and tshark.ok:
        speedup = analyze.pps / tshark.pps
        checks.append(
            f"- speed: analyze is {speedup:.1f}x tshark end to end: "
            f"{'PASS' if speedup >= BAR_SPEEDUP else 'FAIL'} (bar >= {BAR_SPEEDUP:.0f}x); "
            f"goal >= {GOAL_SPEEDUP:.0f}x: {'met' if speedup >= GOAL_SPEEDUP else 'not met'}"
        )
    if analyze.ok and analyze.rss_mb is not None:
        checks.append(
            f"- memory: analyze peak RSS {analyze.rss_mb:,.0f} MB on {packets:,} packets: "
            f"{'PASS' if analyze.rss_mb <= BAR_RSS_MB else 'FAIL'} (bar <= {BAR_RSS_MB:.0f} MB)"
        )
    if flat:
        (_, p1, r1), (n3, p3, r3) = flat
        md += [
            "## RSS flatness (analyze)",
            "",
            "| capture | packets | wall s | packets/s | peak RSS MB |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, p, r in flat:
            if r.ok:
                md.append(f"| {name} | {p:,} | {r.wall:.2f} | {r.pps:,.0f} | {fmt_mb(r.rss_mb)} |")
            else:
                md.append(f"| {name} | {p:,} | FAILED | | |")
        md.append("")
        if r1.ok and r3.ok and r1.rss_mb and r3.rss_mb:
            ratio = r3.rss_mb / r1.rss_mb
            checks.append(
                f"- flatness: peak RSS {r1.rss_mb:,.0f} MB at {p1:,} packets, {r3.rss_mb:,.0f} MB at {p3:,} "
                f"({ratio:.2f}x for {p3 / p1:.1f}x the packets): "
                f"{'PASS' if ratio <= BAR_FLAT_RATIO else 'FAIL'} (bar <= {BAR_FLAT_RATIO:.2f}x)"
            )
        if gen3_s is not None:
            md.append(f"({n3} generated in {gen3_s:.1f} s)")
            md.append("")
    if checks:
        md += ["## Against the bar", "", *checks, ""]
    if summary:
        md += ["## analyze's own summary (one extra run without -q)", "", "```", summary, "```", ""]
    failures = [r for r in results + [f[2] for f in flat[1:]] if not r.ok]
    for r in failures:
        bad = next(run for run in r.runs if run.returncode != 0)
        md += [
            f"## {r.name} FAILED (exit {bad.returncode})",
            "",
            f"`{r.command}`",
            "",
            "```",
            _tail(bad.stderr),
            "```",
            "",
        ]
    md += ["## Commands", ""]
    md += [f"- {r.name}: `{_short(r.command)}`" for r in results]
    text = "\n".join(md) + "\n"
    print(text)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(text, encoding="utf-8")
    print(f"written to {_rel(args.results.resolve())}", file=sys.stderr)
    return 1 if failures else 0


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _short(command: str) -> str:
    return command.replace(str(ROOT) + "/", "").replace(sys.executable, "python3")


if __name__ == "__main__":
    raise SystemExit(main())
