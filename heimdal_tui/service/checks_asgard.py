"""Doctor check: can this sensor reach Asgard (only when a URL is configured)?

A plain GET of ``<url>/v1/health`` with a short timeout: reachability, DNS, TLS and the answer's
status, without the API key (health needs none, and doctor prints what it finds).
"""

from __future__ import annotations

import os
import time

import httpx

from heimdal_tui.config.model import asgard_url_problem
from heimdal_tui.service.doctor import CheckResult, DoctorContext, fail, ok, skip, warn

# The environment wins over the file, as for the link itself (heimdal_tui/asgard/credentials.py).
URL_ENV = "HEIMDAL_ASGARD_URL"
TIMEOUT = 5.0


def asgard_url(ctx: DoctorContext) -> tuple[str | None, str]:
    """The configured URL and where it came from."""
    from_env = os.environ.get(URL_ENV, "").strip()
    if from_env:
        return from_env, URL_ENV
    return ctx.config.asgard.url, "[asgard] url"


def check_asgard(ctx: DoctorContext, timeout: float = TIMEOUT) -> CheckResult:
    name = "asgard"
    url, source = asgard_url(ctx)
    if not url:
        return skip(name, "not configured (no [asgard] url nor HEIMDAL_ASGARD_URL)")
    problem = asgard_url_problem(url)
    if problem:
        return fail(name, f"{source}: {problem}")
    health = url.rstrip("/") + "/v1/health"
    verify: bool | str = True
    if ctx.config.asgard.ca_bundle is not None:
        verify = str(ctx.config.asgard.ca_bundle.expanduser())
    start = time.monotonic()
    try:
        response = httpx.get(health, timeout=timeout, verify=verify, follow_redirects=False)
    except httpx.TimeoutException:
        return fail(name, f"{health}: no answer within {timeout:g}s")
    except httpx.ConnectError as exc:
        return fail(name, f"cannot connect to {health}: {_reason(exc)}")
    except (httpx.HTTPError, OSError) as exc:
        return fail(name, f"{health}: {_reason(exc)}")
    elapsed = (time.monotonic() - start) * 1000
    if 200 <= response.status_code < 300:
        return ok(name, f"{health} answered HTTP {response.status_code} in {elapsed:.0f} ms")
    if response.status_code >= 500:
        return fail(name, f"{health} answered HTTP {response.status_code}: Asgard is unwell")
    return warn(name, f"{health} answered HTTP {response.status_code} (expected 200)")


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]
