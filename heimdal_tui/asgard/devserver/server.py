"""The reference server itself: stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive, optional TLS."""

from __future__ import annotations

import hmac
import json
import logging
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from heimdal_tui.asgard import contract
from heimdal_tui.asgard.devserver.faults import FaultPlan
from heimdal_tui.asgard.devserver.records import Records

log = logging.getLogger(__name__)

MAX_BODY = 8 << 20
STATS_PATH = "/dev/stats"
_KIND_FOR_PATH = {path: kind for kind, path in contract.PATH_FOR_KIND.items()}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            log.info("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        app = self.server
        url = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        if url.path == STATS_PATH and method == "GET":
            self._reply(200, app.stats())
            return
        app.count(url.path)
        _, fault = app.faults.next_request()
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "fail":
            headers = {}
            if app.faults.retry_after is not None:
                headers["Retry-After"] = f"{app.faults.retry_after:g}"
            self._reply(
                app.faults.fail_status, {"error": f"injected fault ({app.faults.fail_status})"}, headers
            )
            return
        if not self._authorized():
            self._reply(401, {"error": "missing or invalid API key"}, {"WWW-Authenticate": "Bearer"})
            return
        status, answer = self._route(method, url.path, url.query, body)
        if status == 200 and url.path in _KIND_FOR_PATH:
            if app.faults.lose_this_response():
                self.close_connection = True
                return
            delay = app.faults.batch_delay()
            if delay:
                time.sleep(delay)
        self._reply(status, answer)

    def _route(self, method: str, path: str, query: str, body: bytes) -> tuple[int, dict[str, Any]]:
        app = self.server
        if path == contract.INTELLIGENCE_PATH and method == "GET":
            since_text = (parse_qs(query).get("since") or ["0"])[0]
            try:
                since = int(since_text)
            except ValueError:
                return 400, {"error": f"since must be an integer, got {since_text!r}"}
            try:
                return 200, app.records.intelligence(since)
            except (OSError, ValueError) as exc:
                return 500, {"error": f"intelligence unavailable: {exc}"}
        if method != "POST" or (path != contract.REGISTER_PATH and path not in _KIND_FOR_PATH):
            return 404, {"error": f"no endpoint {method} {path}"}
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return 400, {"error": "the body is not JSON"}
        if not isinstance(document, dict):
            return 400, {"error": "the body must be a JSON object"}
        sensor_id = document.get("sensor_id")
        if not isinstance(sensor_id, str) or not sensor_id:
            return 400, {"error": "sensor_id is missing"}
        if document.get("contract") != contract.CONTRACT_VERSION:
            return 400, {"error": f"unsupported contract {document.get('contract')!r} (this server speaks 1)"}
        if path == contract.REGISTER_PATH:
            app.records.register(sensor_id, document)
            intelligence = (
                app.records.intelligence(0) if (app.records.data_dir / "intelligence.json").exists() else {}
            )
            return 200, {
                "sensor_id": sensor_id,
                "contract": contract.CONTRACT_VERSION,
                "intelligence_version": int(intelligence.get("version", 0)),
                "limits": {
                    "max_batch_items": contract.MAX_BATCH_ITEMS,
                    "max_body_bytes": contract.MAX_BODY_BYTES,
                },
            }
        items = document.get("items")
        if not isinstance(items, list):
            return 400, {"error": "items must be a list"}
        if len(items) > contract.MAX_BATCH_ITEMS:
            return 413, {"error": f"at most {contract.MAX_BATCH_ITEMS} items per batch"}
        return 200, app.records.accept(_KIND_FOR_PATH[path], sensor_id, items)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(token.strip().encode(), self.server.api_key.encode())

    def _read_body(self) -> bytes | None:
        length_text = self.headers.get("Content-Length") or "0"
        try:
            length = int(length_text)
        except ValueError:
            self._reply(400, {"error": "bad Content-Length"})
            return None
        if length > MAX_BODY:
            self.close_connection = True
            self._reply(413, {"error": f"bodies are limited to {MAX_BODY} bytes"})
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header(contract.CONTRACT_HEADER, str(contract.CONTRACT_VERSION))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], api_key: str, records: Records, faults: FaultPlan, quiet: bool
    ) -> None:
        super().__init__(address, _Handler)
        self.api_key = api_key
        self.records = records
        self.faults = faults
        self.quiet = quiet
        self._counts_lock = threading.Lock()
        self.requests: dict[str, int] = {}

    def count(self, path: str) -> None:
        with self._counts_lock:
            self.requests[path] = self.requests.get(path, 0) + 1

    def stats(self) -> dict[str, Any]:
        with self._counts_lock:
            requests = dict(self.requests)
        return {
            "requests": requests,
            "accepted": self.records.accepted,
            "duplicates": self.records.duplicates,
            "rejected": self.records.rejected,
        }


class AsgardDevServer:
    """``AsgardDevServer(data_dir, api_key).start()`` serves on a thread; :meth:`serve_forever`
    in the calling thread (the CLI). ``port`` 0 picks a free one (see :attr:`url`)."""

    def __init__(
        self,
        data_dir: Path,
        api_key: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        quiet: bool = True,
    ) -> None:
        if not api_key:
            raise ValueError("the reference server needs an API key to check")
        self.records = Records(Path(data_dir))
        self.faults = faults or FaultPlan()
        self._server = _Server((host, port), api_key, self.records, self.faults, quiet)
        self.tls = tls_cert is not None
        if tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{shown}:{self.port}"

    def stats(self) -> dict[str, Any]:
        return self._server.stats()

    def start(self) -> AsgardDevServer:
        # A short poll interval: stop() returns quickly (the default would cost half a second).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="asgard-dev", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
