"""`heimdal-tui doctor`: is this machine ready to run the sensor, and is the sensor well?

Each check is a small function of a :class:`DoctorContext` returning a :class:`CheckResult` (a
status and one line saying what was found and, when something is wrong, what to do). The daemon
reuses them (e.g. disk space on a timer); :func:`run_checks` runs a list of them and never raises:
a check that crashes is reported as failed with its error.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from heimdal_tui.config.model import Config


class Status(enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # not applicable here (e.g. Asgard not configured)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    message: str

    def line(self) -> str:
        return f"{self.status.value:<4}  {self.name}: {self.message}"


def ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, Status.OK, message)


def warn(name: str, message: str) -> CheckResult:
    return CheckResult(name, Status.WARN, message)


def fail(name: str, message: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, message)


def skip(name: str, message: str) -> CheckResult:
    return CheckResult(name, Status.SKIP, message)


@dataclass(frozen=True, slots=True)
class DoctorContext:
    """What the checks look at. ``interface`` None: the one holding the default route.
    ``config_error`` says why the configuration could not be read (then ``config`` is the defaults)."""

    data_dir: Path
    config: Config
    interface: str | None = None
    config_path: Path | None = None
    config_error: str | None = None
    full_integrity: bool = False

    @property
    def store_path(self) -> Path:
        from heimdal_tui.store import DB_FILENAME

        return self.data_dir / DB_FILENAME


Check = Callable[[DoctorContext], CheckResult]


def check_config(ctx: DoctorContext) -> CheckResult:
    where = str(ctx.config_path) if ctx.config_path is not None else "the default path"
    if ctx.config_error is not None:
        return fail("configuration", f"{ctx.config_error} (checks below use the defaults)")
    return ok("configuration", f"valid ({where})")


def all_checks() -> list[Check]:
    """Every check, in the order doctor prints them."""
    from heimdal_tui.service import checks_storage, checks_system
    from heimdal_tui.service.checks_asgard import check_asgard
    from heimdal_tui.service.deps import check_compiled_dependencies

    return [
        check_config,
        checks_system.check_capture_permission,
        checks_system.check_interface,
        checks_system.check_libpcap,
        check_compiled_dependencies,
        checks_storage.check_data_directory,
        checks_storage.check_store,
        checks_storage.check_disk_space,
        checks_system.check_clock,
        check_asgard,
        checks_storage.check_daemon,
    ]


def run_checks(ctx: DoctorContext, checks: Iterable[Check] | None = None) -> list[CheckResult]:
    results = []
    for check in all_checks() if checks is None else checks:
        try:
            results.append(check(ctx))
        except Exception as exc:  # a broken check must not hide the others
            name = check.__name__.removeprefix("check_").replace("_", " ")
            results.append(fail(name, f"the check itself failed: {type(exc).__name__}: {exc}"))
    return results


def exit_status(results: Sequence[CheckResult], *, strict: bool = False) -> int:
    """1 when a check failed (or, with ``strict``, warned), else 0."""
    bad = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    return 1 if any(r.status in bad for r in results) else 0


def summary_line(results: Sequence[CheckResult], elapsed: float) -> str:
    counts = {s: sum(1 for r in results if r.status is s) for s in Status}
    parts = [f"{counts[s]} {s.value}" for s in Status if counts[s]]
    return f"{len(results)} checks in {elapsed:.1f}s: {', '.join(parts)}"


def timed(results_of: Callable[[], list[CheckResult]]) -> tuple[list[CheckResult], float]:
    start = time.monotonic()
    results = results_of()
    return results, time.monotonic() - start
