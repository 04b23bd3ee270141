"""The feeder's two hot Lua calls (SETTLE, READ), packed in one C call and sent on a pooled connection.

redis-py's ``Script.__call__`` goes through ``execute_command``: a Python conversion of
each argument before hiredis packs them, the retry wrapper, the response callbacks and
the observability hooks.  For SETTLE's ~3,000 arguments a call that was 60 % of the
feeder thread's samples holding the GIL (py-spy ``--gil``, 30,000 pages), the GIL the
loop needs.  Here the command is ``hiredis.pack_command`` of the arguments as they are
(bytes and ints), written with the connection's ``send_packed_command`` and read
with its hiredis parser: redis-py's own connection, so connecting, AUTH, SELECT, TLS
and the errors (``ConnectionError``, ``TimeoutError``, ``ResponseError``) are the same
as every other call of the feeder's, and its outage handling applies unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from crawlsel.redisjob import load_redis


class FastScript:
    """EVALSHA of one script with ARGV only; a Redis that lost its script cache gets EVAL."""

    def __init__(self, client: Any, script: str) -> None:
        self._pool = client.connection_pool
        self._text = script.encode()
        self._sha = hashlib.sha1(self._text).hexdigest().encode()
        redis = load_redis()
        self._pack: Callable[[tuple[Any, ...]], bytes] | None
        try:
            from hiredis import pack_command  # installed with redis-py by the redis extra

            self._pack = pack_command
        except ImportError:  # redis-py alone: its own (slower) packer
            self._pack = None
        self._no_script = redis.exceptions.NoScriptError
        self._reply_error = redis.ResponseError

    def __call__(self, args: list[Any]) -> Any:
        try:
            return self._call((b"EVALSHA", self._sha, 0, *args))
        except self._no_script:  # Redis restarted (or SCRIPT FLUSH): EVAL caches it again
            return self._call((b"EVAL", self._text, 0, *args))

    def _call(self, command: tuple[Any, ...]) -> Any:
        pool = self._pool
        conn = pool.get_connection()
        try:
            packed = [self._pack(command)] if self._pack is not None else conn.pack_command(*command)
            conn.send_packed_command(packed, check_health=False)
            return conn.read_response()
        except BaseException as exc:
            if not isinstance(exc, self._reply_error):
                conn.disconnect()  # a reply may be half read: never reuse the connection
            raise
        finally:
            pool.release(conn)
