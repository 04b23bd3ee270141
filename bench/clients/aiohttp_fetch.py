"""The asyncio baseline: one ClientSession, a semaphore, bodies streamed to files.

python aiohttp_fetch.py PAIRS_FILE CONCURRENCY     (PAIRS_FILE: "url<TAB>output" lines)
"""

import asyncio
import os
import sys

import aiohttp


async def main(pairs_file: str, concurrency: int) -> int:
    with open(pairs_file) as f:
        pairs = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    limit = asyncio.Semaphore(concurrency)
    failures = 0
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:

        async def one(url: str, path: str) -> None:
            nonlocal failures
            async with limit:
                try:
                    async with session.get(url) as response:
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        with open(path, "wb") as out:
                            async for chunk in response.content.iter_chunked(256 * 1024):
                                out.write(chunk)
                except aiohttp.ClientError:
                    failures += 1

        await asyncio.gather(*(one(url, path) for url, path in pairs))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
