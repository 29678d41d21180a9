"""PUT /upload/{ticket}: the Batch page's pictures, one per request, written to disk as they
arrive (`classifier.jobs.uploads`). Not part of the API for programs: only a page that
opened the upload knows its ticket."""

from __future__ import annotations

import tempfile

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import limits
from api.callers import refuse_other_sites
from api.endpoints import endpoint
from api.errors import ApiError
from classifier.config import get_settings
from classifier.jobs import uploads

SPOOL_IN_MEMORY = 1024 * 1024  # of one picture; the rest of it goes to a temporary file


@endpoint
async def receive(request: Request) -> Response:
    """One picture (`kind=picture`, the default) or the whole zip (`kind=zip`)."""
    refuse_other_sites(request)
    upload = uploads.find(request.path_params["ticket"])
    if upload is None:
        raise ApiError(404, "This upload is over; pick the folder again.")
    if upload.error is not None:
        raise ApiError(422, upload.error)
    name = request.query_params.get("name", "").strip() or "picture"
    settings = get_settings()
    try:
        await run_in_threadpool(upload.job.folder.parent.mkdir, parents=True, exist_ok=True)
        if request.query_params.get("kind") == "zip":
            await _receive_zip(request, upload, name, settings.batch_max_bytes)
        else:
            await _receive_picture(request, upload, name, settings.max_bytes)
    except limits.BodyTooSlow:
        raise limits.too_slow() from None
    except OSError as exc:  # a full disk; the upload given up on meanwhile
        raise ApiError(507, f"The server cannot keep this file ({exc.strerror or exc}).") from None
    if upload.error is not None:
        raise ApiError(422, upload.error)
    return JSONResponse({"received": len(upload.pictures)})


async def _receive_picture(
    request: Request, upload: uploads.Upload, name: str, max_bytes: int
) -> None:
    # One byte past the limit is enough to tell the picture is too large: the rest is not read.
    limit = max_bytes + 1
    body = limits.capped(request, 2**62)  # no size limit here, but the stall timeout
    with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY, dir=upload.job.folder.parent) as spooled:
        received = 0
        async for chunk in body.stream():
            chunk = chunk[: max(0, limit - received)]
            received += len(chunk)
            spooled.write(chunk)
            if received >= limit:
                break
        spooled.seek(0)
        await run_in_threadpool(upload.add, name, spooled)


async def _receive_zip(request: Request, upload: uploads.Upload, name: str, limit: int) -> None:
    try:
        async with limits.body_on_disk(request, limit, upload.job.folder.parent) as path:
            await run_in_threadpool(upload.unpack, path, name)
    except limits.BodyTooLarge:
        upload.refuse(limits.zip_too_large(limit))
