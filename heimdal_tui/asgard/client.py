"""The HTTP side of the link: httpx, TLS verified, timeouts, the API key as a bearer token.

Every call returns a :class:`Reply` (any HTTP status) or raises :class:`TransportError` (no HTTP
answer: refused, reset, timed out, TLS failure). Neither ever holds the API key: texts pass through
:func:`~.credentials.scrub`, and server-supplied text is escaped and bounded (a server is a peer).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from heimdal_tui import __version__
from heimdal_tui.asgard import contract
from heimdal_tui.asgard.credentials import ApiKey, scrub
from heimdal_tui.common.text import safe_text

MAX_ERROR_TEXT = 200


# httpx and httpcore log at DEBUG what a server sent back, headers included: a server echoing the
# key would put it in the log. Their records pass through this filter, which blanks every live key.
_HTTP_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy")


class _KeyScrubber(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        with self._lock:
            if not self.keys:
                for name in _HTTP_LOGGERS:
                    logging.getLogger(name).addFilter(self)
            self.keys.add(key)

    def filter(self, record: logging.LogRecord) -> bool:
        keys = self.keys
        if not keys:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        if any(key in message for key in keys):
            for key in keys:
                message = message.replace(key, "***")
            record.msg, record.args = message, ()
        return True


_SCRUBBER = _KeyScrubber()


class TransportError(Exception):
    """No HTTP answer came back (the message is safe to show: it names no key)."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # parsed JSON, or None when the body was empty or not JSON
    retry_after: str | None
    text: str  # a short, escaped excerpt of the body, for error messages

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> str:
        """``HTTP 503: <the server's message>``."""
        message = ""
        if isinstance(self.body, dict):
            found = self.body.get("error") or self.body.get("message")
            if isinstance(found, str):
                message = found
        message = message or self.text
        message = safe_text(message, MAX_ERROR_TEXT) if message else ""
        return f"HTTP {self.status}" + (f": {message}" if message else "")


class AsgardClient:
    def __init__(
        self,
        url: str,
        key: ApiKey,
        *,
        sensor_id: str,
        ca_bundle: Path | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._key = key
        _SCRUBBER.add(key.reveal())
        verify: ssl.SSLContext | bool = True
        if ca_bundle is not None:
            try:
                verify = ssl.create_default_context(cafile=str(Path(ca_bundle).expanduser()))
            except (OSError, ssl.SSLError) as exc:
                raise TransportError(f"cannot use the CA bundle {ca_bundle}: {exc}") from None
        self._http = httpx.Client(
            base_url=self.url,
            verify=verify,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=False,
            transport=transport,
            headers={
                "Authorization": f"Bearer {key.reveal()}",
                "User-Agent": f"heimdal-tui/{__version__}",
                "Accept": "application/json",
                contract.CONTRACT_HEADER: str(contract.CONTRACT_VERSION),
                contract.SENSOR_HEADER: sensor_id,
            },
        )

    def __repr__(self) -> str:
        return f"AsgardClient({self.url!r})"

    def close(self) -> None:
        self._http.close()

    # -- calls ---------------------------------------------------------------------------------
    def register(self, body: dict[str, Any]) -> Reply:
        return self._request("POST", contract.REGISTER_PATH, content=_json_bytes(body))

    def post_items(self, path: str, body: bytes) -> Reply:
        return self._request("POST", path, content=body)

    def intelligence(self, since: int) -> Reply:
        return self._request("GET", contract.INTELLIGENCE_PATH, params={"since": str(int(since))})

    def _request(
        self, method: str, path: str, *, content: bytes | None = None, params: dict[str, str] | None = None
    ) -> Reply:
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = self._http.request(method, path, content=content, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise TransportError(self._describe("timed out", exc)) from None
        except httpx.HTTPError as exc:
            raise TransportError(self._describe("failed", exc)) from None
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise TransportError(self._describe("failed", exc)) from None
        raw = response.content
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body = None
        excerpt = scrub(raw[: MAX_ERROR_TEXT * 2].decode("utf-8", errors="replace"), self._key)
        if isinstance(body, dict):
            body = _scrub_json(body, self._key)
        return Reply(response.status_code, body, response.headers.get("Retry-After"), excerpt)

    def _describe(self, what: str, exc: BaseException) -> str:
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in detail:
            detail = f"TLS certificate not trusted ({detail}); set [asgard] ca_bundle for a private CA"
        text = f"request to {self.url} {what}: {detail}"
        return safe_text(scrub(text, self._key), 400)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _scrub_json(value: Any, key: ApiKey) -> Any:
    """A server echoing the key back must not get it into a status or a log."""
    if isinstance(value, str):
        return scrub(value, key)
    if isinstance(value, dict):
        return {scrub(str(k), key): _scrub_json(v, key) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(v, key) for v in value]
    return value
