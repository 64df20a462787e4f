"""`heimdal-tui [options]`: the operator console, on live capture or on replayed captures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from heimdal_tui.cli.capture import parse_speed
from heimdal_tui.common.durations import parse_duration
from heimdal_tui.sensor.build import SensorSpec, SetupError

UI_SWITCH_INTERVAL = 0.0005  # seconds (CPython's default is 0.005)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = add_sensor_arguments(parser, "console (when no command is given)")
    group.add_argument(
        "--attach",
        action="store_true",
        help="open the console on the daemon running for the data dir (plain heimdal-tui does so "
        "by itself when one runs and no --replay is given)",
    )


def add_sensor_arguments(parser: argparse.ArgumentParser, title: str = "sensor") -> argparse._ArgumentGroup:
    """What the sensor runs on, shared by the console and the daemon."""
    group = parser.add_argument_group(title)
    group.add_argument(
        "--replay", nargs="+", metavar="FILE", help="replay capture files instead of capturing live"
    )
    group.add_argument(
        "--speed",
        default="1",
        metavar="X",
        help="replay pace: a factor of the capture's own timing, or 'max' (default 1)",
    )
    group.add_argument(
        "-i",
        "--interface",
        metavar="IF",
        help="interface to capture on (default: from config, else the default route's)",
    )
    group.add_argument("-f", "--filter", metavar="BPF", help="capture filter, e.g. 'not port 22'")
    group.add_argument(
        "--config", type=Path, metavar="PATH", help="configuration file (default: the platform config path)"
    )
    group.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the store (default: the configured data dir live; a temporary one for a replay)",
    )
    group.add_argument(
        "--learning-period",
        metavar="DURATION",
        help="capture time each baseline learns before behaviour detectors judge it (default: 20m for a replay, "
        "the configured period live)",
    )
    group.add_argument("--intel", action="append", metavar="FILE", help="threat indicator list (repeatable)")
    group.add_argument("--profiles", metavar="PATH", help="golden device-type profiles (JSON)")
    group.add_argument("--local-net", action="append", metavar="CIDR", help="a local network (repeatable)")  # fmt: skip
    return group


def spec_from_args(args: argparse.Namespace) -> SensorSpec:
    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        raise SetupError(f"--speed: {exc}") from None
    period = None
    if args.learning_period:
        try:
            period = parse_duration(args.learning_period)
        except ValueError as exc:
            raise SetupError(f"--learning-period: {exc}") from None
    return SensorSpec(
        replay=tuple(args.replay or ()),
        speed=speed,
        interface=args.interface,
        bpf_filter=args.filter,
        config_path=args.config,
        data_dir=args.data_dir,
        learning_period=period,
        intel_files=tuple(args.intel or ()),
        profiles=args.profiles,
        local_networks=tuple(args.local_net or ()),
    )


def run(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    err = stderr or sys.stderr
    attach = _daemon_socket(args, err)
    if attach is not None:
        return attach_console(attach, args, err)
    if args.attach:
        return 1
    try:
        spec = spec_from_args(args)
        from heimdal_tui.console.factory import make_local_console

        app, built = make_local_console(spec)
    except SetupError as exc:
        err.write(f"heimdal-tui: {exc}\n")
        return 2
    # The sensor thread works flat out during a fast replay; a short GIL switch interval keeps the
    # UI thread from waiting 5 ms for the interpreter each time it wakes (the convoy effect).
    sys.setswitchinterval(UI_SWITCH_INTERVAL)
    built.session.start()
    try:
        app.run()
    finally:
        built.cleanup()
    session = built.session
    if session.state == "failed" and session.error:
        err.write(f"heimdal-tui: {session.error}\n")
        return 1
    return app.return_code or 0


def _daemon_socket(args: argparse.Namespace, err: TextIO) -> Path | None:
    """The socket of the daemon to attach to: asked for with --attach, or found running for the
    data dir when neither a replay nor a live interface was asked for. With --attach and no daemon,
    says so on ``err`` (and returns None)."""
    if args.replay or (not args.attach and (args.interface or args.filter)):
        return None
    from heimdal_tui.cli.daemon import data_dir_of
    from heimdal_tui.service.lock import DaemonLockError, running_daemon

    try:
        data_dir = data_dir_of(args)
        info = running_daemon(data_dir)
    except (SetupError, DaemonLockError) as exc:
        if args.attach:
            err.write(f"heimdal-tui: {exc}\n")
        return None
    if info is None:
        if args.attach:
            err.write(f"heimdal-tui: no daemon runs for {data_dir} (start one with `heimdal-tui daemon`)\n")
        return None
    return info.socket


def attach_console(socket: Path, args: argparse.Namespace, err: TextIO) -> int:
    from heimdal_tui.console.factory import make_app
    from heimdal_tui.daemon.remote import AttachFailed, RemoteSensor
    from heimdal_tui.sensor.build import load_sensor_config

    try:
        config, config_path = load_sensor_config(args.config)
        link = RemoteSensor(socket)
    except (SetupError, AttachFailed) as exc:
        err.write(f"heimdal-tui: {exc}\n")
        return 1
    app = make_app(link, config, config_path, attached=True)
    try:
        app.run()
    finally:
        link.close()
    return app.return_code or 0
