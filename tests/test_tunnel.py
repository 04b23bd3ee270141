"""The tunnel handshakes as byte tables: what each sends, and answers fed split at every byte."""

from __future__ import annotations

import socket

import pytest

from crawlsel.errors import ProxyError
from crawlsel.proxy import Proxy
from crawlsel.tunnel import Handshake, HTTPConnect, Socks4, Socks5


def drive(handshake: Handshake, answers: list[bytes], split: int | None = None) -> list[bytes]:
    """Feed each answer after taking what the handshake wanted to send; what it sent, in order."""
    sent = []
    for i, answer in enumerate(answers):
        sent.append(handshake.outgoing)
        handshake.sent(len(handshake.outgoing))
        parts = [answer[:split], answer[split:]] if split is not None else [answer]
        done = False
        for part in parts:
            if part:
                done = handshake.feed(part)
        assert done == (i == len(answers) - 1)
    return sent


SOCKS5_OK = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x1f\x90"


@pytest.mark.parametrize("split", [None, 1, 2, 3, 5, 7, 9])
def test_socks5h_sends_the_name_and_accepts_a_reply_in_pieces(split: int | None) -> None:
    handshake = Socks5(Proxy("socks5h", "p", 1080), "example.org", 443, None)
    sent = drive(handshake, [b"\x05\x00", SOCKS5_OK], split)
    assert sent == [b"\x05\x01\x00", b"\x05\x01\x00\x03\x0bexample.org\x01\xbb"]


def test_socks5_with_credentials_and_an_address() -> None:
    proxy = Proxy("socks5", "p", 1080, "bob", "pw")
    handshake = Socks5(proxy, "example.org", 80, (socket.AF_INET6, ("::1", 80, 0, 0)))
    sent = drive(handshake, [b"\x05\x02", b"\x01\x00", SOCKS5_OK])
    assert sent == [
        b"\x05\x02\x00\x02",
        b"\x01\x03bob\x02pw",
        b"\x05\x01\x00\x04" + b"\x00" * 15 + b"\x01\x00\x50",
    ]


@pytest.mark.parametrize(
    ("answers", "said"),
    [
        ([b"\x05\xff"], "requires authentication"),
        ([b"\x04\x00"], "is not a SOCKS5 server"),
        (
            [b"\x05\x00", b"\x05\x05\x00\x01" + b"\x00" * 6],
            "could not reach example.org:443: connection refused",
        ),
        ([b"\x05\x00", b"\x05\x00\x00\x09" + b"\x00" * 6], "unknown SOCKS5 address type"),
    ],
)
def test_socks5_refusals(answers: list[bytes], said: str) -> None:
    handshake = Socks5(Proxy("socks5h", "p", 1080), "example.org", 443, None)
    with pytest.raises(ProxyError, match=said) as caught:
        for answer in answers:
            handshake.sent(len(handshake.outgoing))
            handshake.feed(answer)
    assert str(caught.value).startswith("proxy socks5h://p:1080: ")


def test_socks4a_sends_the_name_and_socks4_the_address() -> None:
    four_a = Socks4(Proxy("socks4a", "p", 1080, "me"), "example.org", 80, None)
    assert drive(four_a, [b"\x00\x5a" + b"\x00" * 6], 3) == [
        b"\x04\x01\x00\x50\x00\x00\x00\x01me\x00example.org\x00"
    ]
    four = Socks4(Proxy("socks4", "p", 1080), "example.org", 80, (socket.AF_INET, ("10.1.2.3", 80)))
    assert four.outgoing == b"\x04\x01\x00\x50\x0a\x01\x02\x03\x00"
    with pytest.raises(ProxyError, match="request rejected or failed"):
        four.feed(b"\x00\x5b" + b"\x00" * 6)


@pytest.mark.parametrize("split", range(1, 40, 3))
def test_connect_answer_in_pieces(split: int) -> None:
    proxy = Proxy("http", "p", 3128, "alice", "pw")
    handshake = HTTPConnect(proxy, "::1", 8443, "ua/1")
    (sent,) = drive(handshake, [b"HTTP/1.1 200 Connection established\r\n\r\n"], split)
    assert sent == (
        b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nUser-Agent: ua/1\r\n"
        b"Proxy-Authorization: Basic YWxpY2U6cHc=\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "refused the credentials"),
        (
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad",
            "answered CONNECT h:443 with 502 Bad Gateway",
        ),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "something that is not HTTP"),
        (b"HTTP/1.1 200 OK\r\n\r\n\x16\x03", "sent bytes after its CONNECT answer"),
    ],
)
def test_connect_refusals(answer: bytes, said: str) -> None:
    handshake = HTTPConnect(Proxy("http", "p", 3128, "u", "pw"), "h", 443, "ua")
    with pytest.raises(ProxyError, match=said):
        handshake.feed(answer)
