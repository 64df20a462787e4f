"""``python -m heimdal_tui.samples``: regenerate the sample captures and their ground truth."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence

from heimdal_tui.samples import home_lan
from heimdal_tui.samples.writer import write_pcap


def generate_all(
    out_dir: str, seed: int = home_lan.DEFAULT_SEED, duration_s: float = home_lan.DEFAULT_DURATION_S
) -> list[str]:
    """Write every scenario's pcap and truth file into ``out_dir``; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    written: list[str] = []
    for incidents in (True, False):
        run = home_lan.generate(seed, incidents=incidents, duration_s=duration_s)
        pcap_name = f"{run.scenario}.pcap"
        pcap_path = os.path.join(out_dir, pcap_name)
        digest = write_pcap(pcap_path, run.log)
        truth_path = os.path.join(out_dir, f"{run.scenario}.truth.json")
        with open(truth_path, "w", encoding="utf-8", newline="\n") as f:
            json.dump(run.truth(pcap_name, digest), f, indent=2)
            f.write("\n")
        written += [pcap_path, truth_path]
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="heimdal-tui samples",
        description="Regenerate the seeded sample captures (pcap + ground-truth JSON).",
    )
    parser.add_argument("--out", default="sample_pcaps", help="output directory (default: sample_pcaps)")
    parser.add_argument("--seed", type=int, default=home_lan.DEFAULT_SEED, help="scenario seed")
    parser.add_argument(
        "--duration",
        type=float,
        default=home_lan.DEFAULT_DURATION_S,
        help=(
            f"capture length in seconds (default {home_lan.DEFAULT_DURATION_S}, "
            f"minimum {home_lan.MIN_DURATION_S})"
        ),
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    if args.duration < home_lan.MIN_DURATION_S:
        parser.error(f"--duration must be at least {home_lan.MIN_DURATION_S}")
    started = time.perf_counter()
    paths = generate_all(args.out, args.seed, args.duration)
    if not args.quiet:
        for path in paths:
            print(f"{path}  {os.path.getsize(path):>9,} bytes")
        print(f"generated in {time.perf_counter() - started:.1f} s")
    return 0
