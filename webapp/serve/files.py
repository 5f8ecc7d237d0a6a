"""Sending a stored file (a kept download, a clip) so that a client that stops reading holds no worker thread.

Waitress sends a ``wsgi.file_wrapper`` body from its own I/O loop, a
block whenever the socket takes one: the worker thread is free as soon as
the headers are made. Werkzeug's range support wraps the file in an
iterator instead, which a worker thread then pushes into the socket and
waits on while the client does not read, so 64 clients asking for
``bytes=0-`` of a large file held every thread. Here a range is served by
seeking the file to its start and giving waitress the wrapper with the
range's length as the response's ``Content-Length``, which is as far as
waitress reads.

A download still being made must be followed as it grows, which only a
thread can do: those are bounded, in all and per client address.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from flask import Response, request
from werkzeug.http import http_date, quote_etag

from camera.record.safeopen import open_nofollow

BLOCK = 256 * 1024


def file_response(path: Path, mimetype: str, *, length: int | None = None,
                  headers: dict[str, str] | None = None) -> Response:
    """``path`` with ranges (``length`` None: the whole file, as it is now) or its first ``length`` bytes
    (a file still being written, no ranges), sent by the server's own loop where it can."""
    file = open_nofollow(path)  # closed by the server once sent; a symlink planted in the storage is not followed
    try:
        info = os.fstat(file.fileno())
        size = info.st_size if length is None else min(length, info.st_size)
        etag = quote_etag(f"{info.st_mtime_ns:x}-{info.st_size:x}")
        answer = {"Accept-Ranges": "bytes" if length is None else "none", "ETag": etag,
                  "Last-Modified": http_date(info.st_mtime), **(headers or {})}
        status, start = 200, 0
        wanted = request.range if length is None and _if_range_holds(etag, info.st_mtime) else None
        if wanted is not None:
            span = wanted.range_for_length(size)
            if span is None:
                file.close()
                return Response(status=416, headers={**answer, "Content-Range": f"bytes */{size}"})
            start, stop = span
            status, size = 206, stop - start
            answer["Content-Range"] = f"bytes {start}-{stop - 1}/{info.st_size}"
        elif request.if_none_match.contains_weak(etag):
            file.close()
            return Response(status=304, headers=answer)
        file.seek(start)
        response = Response(_body(file, size), status=status, mimetype=mimetype, headers=answer,
                            direct_passthrough=True)
        response.content_length = size
        return response
    except BaseException:
        file.close()
        raise


def _if_range_holds(etag: str, mtime: float) -> bool:
    """A range is served unless ``If-Range`` names another version of the file."""
    condition = request.if_range
    if condition.etag is None and condition.date is None:
        return True
    if condition.etag is not None:
        return condition.etag == etag.strip('"')
    return condition.date is not None and condition.date.timestamp() >= int(mtime)


def _body(file: BinaryIO, size: int) -> object:
    """Waitress's file wrapper over ``file`` from where it stands (it sends ``Content-Length`` bytes and no
    more); under any other server, an iterator of exactly ``size`` bytes."""
    wrapper = request.environ.get("wsgi.file_wrapper")
    if wrapper is not None and wrapper.__module__.startswith("waitress"):
        return wrapper(file, BLOCK)
    return _limited(file, size)


def _limited(file: BinaryIO, size: int) -> Iterator[bytes]:
    with file:
        while size > 0:
            chunk = file.read(min(BLOCK, size))
            if not chunk:
                return
            size -= len(chunk)
            yield chunk


class Followers:
    """Turns for following a file as it is made (a worker thread each): ``limit`` in all, ``per_address`` for
    one client address, so no client can take every thread by asking and not reading."""

    def __init__(self, limit: int, per_address: int) -> None:
        self.limit = limit
        self.per_address = per_address
        self._lock = threading.Lock()
        self._by_address: Counter[str] = Counter()

    def take(self, address: str) -> Callable[[], None] | None:
        """A turn for ``address``, as the function that gives it back (once); None when none is free."""
        with self._lock:
            if sum(self._by_address.values()) >= self.limit or self._by_address[address] >= self.per_address:
                return None
            self._by_address[address] += 1
        held = [True]

        def give_back() -> None:
            with self._lock:
                if held.pop() if held else False:
                    self._by_address[address] -= 1
                    if self._by_address[address] <= 0:
                        del self._by_address[address]
        return give_back

    @property
    def taken(self) -> int:
        with self._lock:
            return sum(self._by_address.values())


def followed(body: Iterator[bytes], give_back: Callable[[], None]) -> Iterator[bytes]:
    """``body``, giving its turn back however it ends (sent, failed, or the client gone)."""
    try:
        yield from body
    finally:
        give_back()
