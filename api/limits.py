"""The API's limits: the size of a request's body, and how much work waits at once.

A body is counted as it arrives and refused (413) once it passes its limit, before it
is all read, or given up on (408) when it stops arriving; uploaded files are spooled to
disk by the multipart parser, not held in memory. Classifying runs in worker threads, at
most `api_concurrency` requests at once per process; up to `api_queue` more wait for a
turn, and beyond that a request is answered 503 with Retry-After at once instead of
piling up memory. Uploading does not take a turn: a slow upload holds no place another
request could use. Exports are built one at a time.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request

from api.errors import ApiError
from classifier import images
from classifier.config import get_settings

T = TypeVar("T")
MAX_FILES = 16  # pictures in one request
MAX_FIELDS = 16  # other form fields
MAX_FIELD_BYTES = 64 * 1024  # one form field that is not a file
FORM_OVERHEAD = 1024 * 1024  # headers and fields around the files


def body_limit() -> int:
    """Return the largest body a request may send: MAX_FILES pictures at the size limit."""
    return MAX_FILES * get_settings().max_bytes + FORM_OVERHEAD


SECONDS_PER_CHUNK = 30  # a body that sends nothing for this long is given up on


class BodyTooLarge(Exception):
    """The body passed its limit while it was being read."""


class BodyTooSlow(Exception):
    """The body stopped arriving (nothing for SECONDS_PER_CHUNK)."""


def too_slow() -> ApiError:
    return ApiError(
        408, f"The request stopped arriving (nothing for {SECONDS_PER_CHUNK} s); send it again."
    )


def too_large(limit: int, advice: str | None = None) -> ApiError:
    """The 413 of a request past `limit` bytes; `advice`: what to send instead (by default,
    what a prediction request may hold)."""
    if advice is None:
        most = images.size_text(get_settings().max_bytes)
        advice = f"send at most {MAX_FILES} pictures of at most {most} each"
    return ApiError(413, f"This request is larger than {images.size_text(limit)}; {advice}.")


def capped(request: Request, limit: int, advice: str | None = None) -> Request:
    """Return the request with a body that stops being read past `limit` bytes.

    Raises:
        ApiError: 413 at once when its Content-Length says it is larger (`too_large`).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit, advice)
    received = 0

    async def receive() -> Any:
        nonlocal received
        with anyio.move_on_after(SECONDS_PER_CHUNK) as waited:
            message = await request.receive()
        if waited.cancelled_caught:
            raise BodyTooSlow
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge
        return message

    return Request(request.scope, receive)


def zip_too_large(limit: int) -> str:
    return (
        f"This zip is larger than {images.size_text(limit)}, the most one batch job takes; "
        "split it."
    )


@asynccontextmanager
async def body_on_disk(request: Request, limit: int, folder: Path) -> AsyncIterator[Path]:
    """Write a request's body, as it arrives, to a temporary file in `folder` (deleted
    afterwards), never holding it in memory.

    Raises:
        BodyTooLarge: past `limit` bytes. BodyTooSlow: it stopped arriving.
        OSError: the file cannot be written (a full disk).
    """
    body = capped(request, limit)
    descriptor, name = tempfile.mkstemp(suffix=".partial", prefix=".upload.", dir=folder)
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as out:
            async for chunk in body.stream():
                out.write(chunk)
        yield path
    finally:
        path.unlink(missing_ok=True)


class Queue:
    """At most `concurrency` calls run at once; `waiting` more may wait; others get 503."""

    def __init__(self, concurrency: int, waiting: int) -> None:
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.capacity = concurrency + waiting
        self.admitted = 0  # running and waiting; changed on the event loop only

    def check(self) -> None:
        """Answer 503 at once if the queue is full (before a request's body is read)."""
        if self.admitted >= self.capacity:
            # Each waiting request takes about a tenth of a second: ask for a retry then.
            retry = max(1, math.ceil(self.admitted / max(1, self.limiter.total_tokens) / 10))
            raise ApiError(
                503,
                "The server is busy classifying other requests; try again in a moment.",
                {"Retry-After": str(retry)},
            )

    @asynccontextmanager
    async def turn(self):
        """Hold a place in the queue for one request (503 when it is full)."""
        self.check()
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run a function in a worker thread when one of the `concurrency` turns is free."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)


_queue: Queue | None = None
_exports: anyio.CapacityLimiter | None = None


async def one_export_at_a_time(build: Callable[[], T]) -> T:
    """Build an export in a worker thread, one at a time per process (each is in memory)."""
    global _exports
    if _exports is None:
        _exports = anyio.CapacityLimiter(1)
    return await anyio.to_thread.run_sync(build, limiter=_exports)


def queue() -> Queue:
    """Return this process's queue, sized by the settings on first use."""
    global _queue
    if _queue is None:
        settings = get_settings()
        _queue = Queue(settings.api_concurrency, settings.api_queue)
    return _queue
