"""TLS ClientHello parsing: SNI/ALPN/versions, record splitting, truncation, hostile names, captures."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.tls.extensions import (
    ProtocolName,
    ServerName,
    TLS_Ext_ALPN,
    TLS_Ext_ServerName,
    TLS_Ext_SupportedVersion_CH,
)
from scapy.layers.tls.handshake import TLSClientHello
from scapy.layers.tls.record import TLS

from heimdal_tui.common.text import ELLIPSIS, is_safe
from heimdal_tui.decode.app.errors import MalformedPayload
from heimdal_tui.decode.app.tls import TlsClientHello, parse_client_hello

PCAPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(data)) + data


def sni_ext(name: bytes, name_type: int = 0) -> bytes:
    entry = struct.pack("!BH", name_type, len(name)) + name
    return _ext(0, struct.pack("!H", len(entry)) + entry)


def alpn_ext(*protocols: bytes) -> bytes:
    body = b"".join(bytes([len(p)]) + p for p in protocols)
    return _ext(16, struct.pack("!H", len(body)) + body)


def versions_ext(*versions: int) -> bytes:
    return _ext(43, bytes([2 * len(versions)]) + b"".join(struct.pack("!H", v) for v in versions))


def hello_body(*extensions: bytes, legacy: int = 0x0303, with_ext_block: bool = True) -> bytes:
    body = struct.pack("!H", legacy) + b"\x42" * 32 + b"\x20" + b"\x07" * 32
    body += struct.pack("!H", 6) + b"\x13\x01\x13\x02\xc0\x2f" + b"\x01\x00"
    if with_ext_block:
        exts = b"".join(extensions)
        body += struct.pack("!H", len(exts)) + exts
    return body


def handshake(body: bytes, msg_type: int = 1) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def record(fragment: bytes, version: int = 0x0301, content: int = 0x16) -> bytes:
    return struct.pack("!BHH", content, version, len(fragment)) + fragment


def client_hello(*extensions: bytes, legacy: int = 0x0303, with_ext_block: bool = True) -> bytes:
    return record(handshake(hello_body(*extensions, legacy=legacy, with_ext_block=with_ext_block)))


def test_scapy_built_hello() -> None:
    hello = TLSClientHello(
        version=0x0303,
        ciphers=[0x1301, 0xC02F],
        ext=[
            TLS_Ext_SupportedVersion_CH(versions=[0x0304, 0x0303]),
            TLS_Ext_ServerName(servernames=[ServerName(servername=b"www.example.org")]),
            TLS_Ext_ALPN(protocols=[ProtocolName(protocol=b"h2"), ProtocolName(protocol=b"http/1.1")]),
        ],
    )
    payload = bytes(TLS(type=22, version=0x0301, msg=[hello]))
    assert parse_client_hello(payload) == TlsClientHello(
        sni="www.example.org", version=0x0303, alpn=("h2", "http/1.1"), supported_versions=(0x0304, 0x0303)
    )


def test_raw_hello_fields() -> None:
    payload = client_hello(
        versions_ext(0x0A0A, 0x0304, 0x0303),
        _ext(0x000A, b"\x00\x02\x00\x1d"),
        sni_ext(b"api.Example.com"),
        alpn_ext(b"h2"),
        legacy=0x0301,
    )
    assert parse_client_hello(payload) == TlsClientHello(
        "api.Example.com", 0x0301, ("h2",), (0x0A0A, 0x0304, 0x0303)
    )


def test_hello_without_sni_or_extensions() -> None:
    assert parse_client_hello(client_hello(alpn_ext(b"http/1.1"))) == TlsClientHello(
        None, 0x0303, ("http/1.1",), ()
    )
    assert parse_client_hello(client_hello(with_ext_block=False)) == TlsClientHello(None, 0x0303, (), ())
    assert parse_client_hello(client_hello()) == TlsClientHello(None, 0x0303, (), ())


def test_non_hostname_server_name_entries_skipped() -> None:
    entries = struct.pack("!BH", 7, 3) + b"abc" + struct.pack("!BH", 0, 4) + b"host"
    ext = _ext(0, struct.pack("!H", len(entries)) + entries)
    result = parse_client_hello(client_hello(ext))
    assert result is not None and result.sni == "host"


def test_not_a_client_hello_is_none() -> None:
    assert parse_client_hello(b"") is None
    assert parse_client_hello(b"\x17\x03\x03\x00\x10" + b"\x00" * 16) is None  # application data
    server_hello = record(handshake(b"\x03\x03" + b"\x00" * 40, msg_type=2))
    assert parse_client_hello(server_hello) is None
    assert parse_client_hello(b"\x16\x00\x01\x00\x05\x01") is None  # 0x16 but no TLS version
    assert parse_client_hello(b"\x16\x03\x09\x00\x05\x01") is None
    assert parse_client_hello(b"\x16\x07") is None
    assert parse_client_hello(b"GET / HTTP/1.1\r\n\r\n") is None


def test_short_headers_are_malformed() -> None:
    for payload in (b"\x16", b"\x16\x03", b"\x16\x03\x01\x00\x05"):
        with pytest.raises(MalformedPayload, match="record header truncated"):
            parse_client_hello(payload)
    with pytest.raises(MalformedPayload, match="record length 0"):
        parse_client_hello(b"\x16\x03\x01\x00\x00\x01")
    with pytest.raises(MalformedPayload, match="handshake header truncated"):
        parse_client_hello(b"\x16\x03\x01\x00\x02\x01\x00")


def test_hostile_sni_and_alpn() -> None:
    payload = client_hello(sni_ext(b"\x1b]8;;http://evil\x07[bold]x[/]\xff.com"), alpn_ext(b"h2\x00\x9b"))
    result = parse_client_hello(payload)
    assert result is not None
    assert result.sni == "\\x1b]8;;http://evil\\x07[bold]x[/]\\xff.com"
    assert result.alpn == ("h2\\x00\\x9b",)
    assert is_safe(result.sni) and all(is_safe(p) for p in result.alpn)


def test_huge_sni_is_bounded() -> None:
    result = parse_client_hello(client_hello(sni_ext(b"a" * 10_000)))
    assert result is not None and result.sni is not None
    assert len(result.sni) == 255 and result.sni.endswith(ELLIPSIS)


def test_hello_split_over_two_records() -> None:
    message = handshake(hello_body(sni_ext(b"split.example"), alpn_ext(b"h2")))
    payload = record(message[:50]) + record(message[50:])
    assert parse_client_hello(payload) == TlsClientHello("split.example", 0x0303, ("h2",), ())


def test_fragment_shorter_than_hello_after_sni() -> None:
    # The record (and the segment) hold the start of the hello, up to just past the SNI extension.
    message = handshake(hello_body(sni_ext(b"first.example"), alpn_ext(b"h2"), versions_ext(0x0304)))
    cut_at = message.index(b"first.example") + len(b"first.example") + 2
    assert parse_client_hello(record(message[:cut_at])) == TlsClientHello("first.example", 0x0303, (), ())
    # The record header may also claim the whole hello while the segment ends early (snap length).
    whole = record(message)
    assert parse_client_hello(whole[: 5 + cut_at]) == TlsClientHello("first.example", 0x0303, (), ())


def test_truncated_before_sni_is_malformed() -> None:
    message = handshake(hello_body(alpn_ext(b"h2"), sni_ext(b"late.example")))
    sni_at = message.index(b"late.example")
    for cut in (10, 40, 75, 80, sni_at - 9, sni_at - 4, sni_at + 3):
        with pytest.raises(MalformedPayload, match="truncated"):
            parse_client_hello(record(message)[: 5 + cut])
    # Cut exactly between the ALPN and the SNI extension: the SNI may follow, so this is malformed too.
    with pytest.raises(MalformedPayload, match="extensions truncated"):
        parse_client_hello(record(message)[: 5 + sni_at - 9])


def test_inconsistent_lengths() -> None:
    body = hello_body(sni_ext(b"x.example"))
    # Extensions block claims more than the hello holds.
    bad = bytearray(body)
    ext_len_at = 2 + 32 + 1 + 32 + 2 + 6 + 2
    struct.pack_into("!H", bad, ext_len_at, 5000)
    with pytest.raises(MalformedPayload, match="overruns the hello"):
        parse_client_hello(record(handshake(bytes(bad))))
    # Odd cipher suites length.
    odd = bytearray(body)
    struct.pack_into("!H", odd, 2 + 32 + 1 + 32, 5)
    with pytest.raises(MalformedPayload, match="odd"):
        parse_client_hello(record(handshake(bytes(odd))))
    # Session id longer than 32.
    long_sid = bytearray(body)
    long_sid[34] = 33
    with pytest.raises(MalformedPayload, match="session id length 33"):
        parse_client_hello(record(handshake(bytes(long_sid))))
    # An extension overruns the block after the SNI was read: what was read is kept.
    after = hello_body(sni_ext(b"kept.example"), _ext(16, b"\x00\x03\x02h2"))
    broken = bytearray(after)
    struct.pack_into("!H", broken, len(after) - 7, 200)
    assert parse_client_hello(record(handshake(bytes(broken)))) == TlsClientHello(
        "kept.example", 0x0303, (), ()
    )


def test_every_truncation() -> None:
    payload = client_hello(versions_ext(0x0304), alpn_ext(b"h2", b"http/1.1"), sni_ext(b"t.example"))
    expected = TlsClientHello("t.example", 0x0303, ("h2", "http/1.1"), (0x0304,))
    assert parse_client_hello(payload) == expected
    sni_end = payload.index(b"t.example") + len(b"t.example")
    for cut in range(len(payload)):
        try:
            result = parse_client_hello(payload[:cut])
        except MalformedPayload:
            assert cut < sni_end
            continue
        if cut == 0:
            assert result is None
        else:
            assert result is not None and result.sni == "t.example" and cut >= sni_end


def test_result_is_hashable() -> None:
    result = parse_client_hello(client_hello(sni_ext(b"h.example"), alpn_ext(b"h2")))
    assert result is not None and hash(result) == hash(TlsClientHello("h.example", 0x0303, ("h2",), ()))


@pytest.mark.shared
def test_capture_sni() -> None:
    path = PCAPS / "zeek/testing/btest/Traces/tls/tls-conn-with-extensions.pcap"
    if not path.exists():
        pytest.skip(f"capture {path} is not present")
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    hellos = []
    for pkt in rdpcap(str(path)):
        if TCP in pkt:
            result = parse_client_hello(bytes(pkt[TCP].payload))
            if result is not None:
                hellos.append(result)
    assert [h.sni for h in hellos] == ["ssl.gstatic.com"]
    assert hellos[0].version == 0x0301
