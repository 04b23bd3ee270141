"""The threads baseline: requests in a ThreadPoolExecutor, one Session per thread.

python threads_fetch.py PAIRS_FILE CONCURRENCY     (PAIRS_FILE: "url<TAB>output" lines)
"""

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

_local = threading.local()


def fetch(pair: list[str]) -> bool:
    url, path = pair
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    try:
        with session.get(url, stream=True, timeout=60) as response:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                for chunk in response.raw.stream(256 * 1024, decode_content=False):
                    out.write(chunk)
        return True
    except requests.RequestException:
        return False


def main(pairs_file: str, concurrency: int) -> int:
    with open(pairs_file) as f:
        pairs = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    with ThreadPoolExecutor(concurrency) as pool:
        ok = all(pool.map(fetch, pairs))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
