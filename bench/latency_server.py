"""An HTTP/1.1 keep-alive server that waits a fixed delay before every response.

    python latency_server.py PORT DELAY_S BODY_BYTES

Serves the same body for every path.  asyncio, one process: enough for 10,000
open connections on loopback (it raises its own open-file limit).
"""

import asyncio
import resource
import sys


async def serve(port: int, delay: float, body: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                if not request:
                    break
                await asyncio.sleep(delay)
                writer.write(head + body)
                if b"connection: close" in request.lower():
                    await writer.drain()
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=16384)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    size = int(sys.argv[3])
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2]), (b"<p>latency</p>" * (size // 14 + 1))[:size]))
