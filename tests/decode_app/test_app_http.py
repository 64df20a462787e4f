"""HTTP/1.x request parsing: request line, Host, User-Agent, bounds and hostile headers."""

from __future__ import annotations

import pytest

from heimdal_tui.common.text import ELLIPSIS, is_safe
from heimdal_tui.decode.app.errors import MalformedPayload
from heimdal_tui.decode.app.http import HTTP_METHOD_PREFIXES, HttpRequest, parse_http_request

UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def test_get_request() -> None:
    payload = f"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: {UA}\r\nAccept: */*\r\n\r\n"
    assert parse_http_request(payload.encode()) == HttpRequest("GET", "/index.html?q=1", "example.com", UA)


def test_all_methods_and_prefixes() -> None:
    methods = ("GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT")
    assert tuple(m.encode() + b" " for m in methods) == HTTP_METHOD_PREFIXES
    for method in methods:
        result = parse_http_request(f"{method} /x HTTP/1.0\r\n\r\n".encode())
        assert result == HttpRequest(method, "/x", None, None)
    connect = parse_http_request(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    assert connect == HttpRequest("CONNECT", "example.com:443", "example.com:443", None)


def test_not_a_request_is_none() -> None:
    for payload in (
        b"",
        b"get / HTTP/1.1\r\n",
        b"GET/ HTTP/1.1\r\n",
        b"HTTP/1.1 200 OK\r\n",
        b"\x16\x03\x01",
        b"PRI * HTTP/2.0",
    ):
        assert parse_http_request(payload) is None


def test_headers_case_insensitive_first_wins_lf_only() -> None:
    payload = b"POST /api HTTP/1.1\nhOsT:   a.example  \nUSER-AGENT:curl/8.5.0\nHost: b.example\n\n"
    assert parse_http_request(payload) == HttpRequest("POST", "/api", "a.example", "curl/8.5.0")


def test_headers_stop_at_blank_line() -> None:
    payload = b"GET / HTTP/1.1\r\nHost: h\r\n\r\nUser-Agent: in-body\r\n"
    assert parse_http_request(payload) == HttpRequest("GET", "/", "h", None)


def test_missing_version_is_malformed() -> None:
    for payload in (b"GET /\r\nHost: x\r\n\r\n", b"GET / HTTP/2\r\n\r\n", b"GET / HTTP/1.1"[:10]):
        with pytest.raises(MalformedPayload, match="HTTP/1"):
            parse_http_request(payload)


def test_hostile_headers() -> None:
    payload = (
        b"GET /\x1b[2J HTTP/1.1\r\nHost: \x1b]0;t\x07[red]x[/]\r\n"
        b"User-Agent: \xff\xfeSmartTV\xe2\x80\xae\r\n\r\n"
    )
    result = parse_http_request(payload)
    assert result == HttpRequest("GET", "/\\x1b[2J", "\\x1b]0;t\\x07[red]x[/]", "\\xff\\xfeSmartTV\\u202e")
    assert all(is_safe(s) for s in (result.uri, result.host or "", result.user_agent or ""))


def test_bounds() -> None:
    payload = (
        b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nUser-Agent: " + b"U" * 10_000 + b"\r\nHost: " + b"h" * 600
    )
    result = parse_http_request(payload + b"\r\n\r\n")
    assert result is not None
    assert len(result.uri) == 512 and result.uri.endswith(ELLIPSIS)
    assert result.user_agent is not None and len(result.user_agent) == 512
    # The Host header starts past the first 8 KiB, so it is not seen.
    assert result.host is None


def test_request_line_past_8k_is_malformed() -> None:
    with pytest.raises(MalformedPayload):
        parse_http_request(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")


def test_segment_cut_inside_headers() -> None:
    payload = b"GET / HTTP/1.1\r\nHost: cut.example\r\nUser-Agent: Mozil"
    assert parse_http_request(payload) == HttpRequest("GET", "/", "cut.example", "Mozil")


def test_every_truncation() -> None:
    payload = f"GET /p HTTP/1.1\r\nHost: example.com\r\nUser-Agent: {UA}\r\n\r\n".encode()
    for cut in range(len(payload)):
        try:
            result = parse_http_request(payload[:cut])
        except MalformedPayload:
            continue
        assert result is None or isinstance(result, HttpRequest)
