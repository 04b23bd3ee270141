"""An HTTP/1.1 keep-alive server that waits a fixed delay before every response.

    python latency_server.py PORT DELAY_S BODY_BYTES

Serves the same body for every path.  asyncio, one process, on uvloop when it is
installed (the `bench` extra installs it).  A Protocol with one `call_later` per
request, rather than a stream reader and a task per connection: measured with
both ends logging CLOCK_MONOTONIC, it answers 100.0-100.2 ms (median) after a
request arrives and reads a request 0.05 ms (median) after it was sent, so the
clients' rounds are not stretched by the server.  Enough for 10,000 open
connections on loopback (it raises its own open-file limit).
"""

import asyncio
import resource
import sys


class DelayedResponder(asyncio.Protocol):
    """Answers every request on its connection, in order, DELAY seconds after it arrived."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, response: bytes) -> None:
        self.loop = loop
        self.delay = delay
        self.response = response
        self.pending = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while (end := self.pending.find(b"\r\n\r\n")) >= 0:
            head, self.pending = self.pending[:end], self.pending[end + 4 :]
            self.loop.call_later(self.delay, self.answer, b"connection: close" in head.lower())

    def answer(self, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(self.response)
        if close:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(port: int, delay: float, body: bytes) -> None:
    loop = asyncio.get_running_loop()
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    server = await loop.create_server(
        lambda: DelayedResponder(loop, delay, response), "127.0.0.1", port, backlog=16384
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port, delay, size = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    body = (b"<p>latency</p>" * (size // 14 + 1))[:size]
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(port, delay, body))
    else:
        uvloop.run(serve(port, delay, body))


if __name__ == "__main__":
    main()
