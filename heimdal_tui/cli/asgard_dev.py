"""`heimdal-tui asgard-dev`: the reference Asgard server, for tests and demos."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from heimdal_tui.asgard.credentials import KEY_ENV


def add_arguments(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "asgard-dev",
        help="run the reference Asgard server (contract v1) on this machine, for tests and demos",
        description="Serve the Asgard API (docs/asgard-api.md) over HTTP: check the API key, keep "
        "what arrives as JSON lines under DIR/received/, refuse copies of an idempotency key, serve "
        "DIR/intelligence.json, and inject faults on request. Exit 2 on bad arguments.",
    )
    parser.add_argument(
        "--port", type=int, default=8443, metavar="P", help="port (0: any free one; default 8443)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--data", type=Path, required=True, metavar="DIR", help="where received items are kept"
    )
    parser.add_argument(
        "--api-key", metavar="KEY", help=f"the key sensors must present (default: ${KEY_ENV})"
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--fail-first",
        type=int,
        default=0,
        metavar="N",
        help="answer the first N requests with --fail-status",
    )
    faults.add_argument(
        "--fail-status",
        type=int,
        default=503,
        metavar="CODE",
        help="status of injected failures (default 503)",
    )
    faults.add_argument(
        "--retry-after",
        type=float,
        metavar="S",
        help="send Retry-After: S with injected failures (use with 429)",
    )
    faults.add_argument(
        "--slow",
        type=float,
        default=0.0,
        metavar="S",
        help="answer metadata batches S seconds late (after storing them)",
    )
    faults.add_argument(
        "--slow-first", type=int, default=0, metavar="N", help="only the first N batches are slow (0: all)"
    )
    faults.add_argument(
        "--drop-first",
        type=int,
        default=0,
        metavar="N",
        help="close the first N connections without answering",
    )
    faults.add_argument(
        "--lose-response-first",
        type=int,
        default=0,
        metavar="N",
        help="store the first N metadata batches, then close without answering (tests idempotency)",
    )
    tls = parser.add_argument_group("TLS")
    tls.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve HTTPS with this certificate (chain)")
    tls.add_argument("--tls-key", type=Path, metavar="PEM", help="its private key (when not in --tls-cert)")
    parser.add_argument("--quiet", "-q", action="store_true", help="do not log each request")


def run(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    from heimdal_tui.asgard.devserver import AsgardDevServer, FaultPlan

    err = stderr or sys.stderr
    key = args.api_key or os.environ.get(KEY_ENV, "").strip()
    if not key:
        err.write(f"heimdal-tui asgard-dev: give --api-key KEY or set {KEY_ENV}\n")
        return 2
    problems = [
        f"--{name.replace('_', '-')} must not be negative"
        for name in ("fail_first", "slow", "slow_first", "drop_first", "lose_response_first")
        if getattr(args, name) < 0
    ]
    if not 0 <= args.port <= 65535:
        problems.append(f"--port {args.port} is not a port (0..65535)")
    if not 100 <= args.fail_status <= 599:
        problems.append(f"--fail-status {args.fail_status} is not an HTTP status")
    if args.retry_after is not None and args.retry_after < 0:
        problems.append("--retry-after must not be negative")
    if args.tls_key is not None and args.tls_cert is None:
        problems.append("--tls-key needs --tls-cert")
    if problems:
        for problem in problems:
            err.write(f"heimdal-tui asgard-dev: {problem}\n")
        return 2
    faults = FaultPlan(
        fail_first=args.fail_first,
        fail_status=args.fail_status,
        retry_after=args.retry_after,
        drop_first=args.drop_first,
        lose_response_first=args.lose_response_first,
        slow=args.slow,
        slow_first=args.slow_first,
    )
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="asgard-dev: %(message)s", stream=err)
    try:
        server = AsgardDevServer(
            args.data,
            key,
            host=args.host,
            port=args.port,
            faults=faults,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            quiet=args.quiet,
        )
    except OSError as exc:
        err.write(f"heimdal-tui asgard-dev: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}\n")
        return 2
    except ValueError as exc:
        err.write(f"heimdal-tui asgard-dev: {exc}\n")
        return 2
    err.write(f"asgard-dev listening on {server.url} (data in {args.data})\n")
    err.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    err.write(
        f"asgard-dev stopped: {server.records.accepted} accepted, {server.records.duplicates} duplicates refused\n"
    )
    return 0
