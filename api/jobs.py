"""The API's batch jobs: a zip of pictures in, progress and results out.

    POST   /api/v1/jobs?model=NAME&top_k=5     body: the zip (application/zip) -> 202, the job
    GET    /api/v1/jobs                         the caller's jobs, newest first
    GET    /api/v1/jobs/{id}                    one job's progress
    GET    /api/v1/jobs/{id}/results?format=csv|json
    DELETE /api/v1/jobs/{id}                    cancel it

The zip is streamed to disk as it arrives (never held in memory), checked whole, then
unpacked into the job's folder; the server's runner classifies it in the background and
saves every answer in the caller's history, as the Batch page does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import limits
from api.callers import Caller, identify
from api.endpoints import DEFAULT_TOP_K, READ_ONLY, _flag, _integer, endpoint, one_line
from api.errors import ApiError
from classifier import history, jobs, models
from classifier.config import get_settings
from classifier.predict import MAX_TOP_K

NOT_FOUND = "No batch job has this id among yours."
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")


NO_HISTORY = (
    "History is off on this server: a batch job keeps its answers in the history, so none "
    "can run here. POST /api/v1/predict classifies pictures without saving."
)


def history_store(caller: Caller, refusal: str = NO_HISTORY) -> history.HistoryStore:
    """The caller's history, where jobs and what they find are kept (they need one); with
    history off, a 403 that says `refusal`."""
    if not caller.can_save:
        raise ApiError(403, refusal)
    store = caller.store()
    if store.read_only:
        raise ApiError(503, READ_ONLY)
    return store


def job_json(request: Request, job: jobs.Job) -> dict[str, Any]:
    root = str(request.base_url).rstrip("/")
    return {
        **job.as_dict(),
        "links": {
            "self": f"{root}/api/v1/jobs/{job.public_id}",
            "results_csv": f"{root}/api/v1/jobs/{job.public_id}/results?format=csv",
            "results_json": f"{root}/api/v1/jobs/{job.public_id}/results?format=json",
        },
    }


@endpoint
async def create(request: Request) -> Response:
    """POST /api/v1/jobs: classify every picture in a zip, in the background."""
    caller = await run_in_threadpool(identify, request)  # a token is a database query
    store = await run_in_threadpool(history_store, caller)
    query = request.query_params
    model = query.get("model") or get_settings().default_model
    top_k = _integer(query.get("top_k"), "top_k", DEFAULT_TOP_K, 1, MAX_TOP_K)
    sent = query.get("thumbnails")
    thumbnails = True if sent is None else _flag(sent, "thumbnails")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ZIP_TYPES:
        raise ApiError(415, "Send the pictures as one zip, with Content-Type: application/zip.")
    try:
        await run_in_threadpool(models.choose, model, caller.models)
    except models.UnknownModel:
        raise ApiError(
            404,
            f"There is no model called “{model}” here; GET /api/v1/models names them.",
        ) from None
    except models.ModelError as exc:
        raise ApiError(503, str(exc)) from None
    limit = get_settings().batch_max_bytes
    spool = get_settings().data_dir / "jobs"
    title = one_line(query.get("title") or "zip sent to the API", "title")
    try:
        await run_in_threadpool(spool.mkdir, parents=True, exist_ok=True)
        async with limits.body_on_disk(request, limit, spool) as path:
            job = await run_in_threadpool(
                _unpack_and_submit, store, path, title, model, top_k, thumbnails
            )
    except limits.BodyTooLarge:
        raise ApiError(413, limits.zip_too_large(limit)) from None
    except limits.BodyTooSlow:
        raise limits.too_slow() from None
    except OSError as exc:
        raise ApiError(507, f"The server cannot keep this zip ({exc.strerror or exc}).") from None
    headers = {"Location": f"/api/v1/jobs/{job.public_id}"}
    return JSONResponse(job_json(request, job), status_code=202, headers=headers)


def _unpack_and_submit(
    store: history.HistoryStore, path: Path, title: str, model: str, top_k: int, thumbnails: bool
) -> jobs.Job:
    new = jobs.NewJob()
    try:
        new.unpack_zip(path)
        return new.submit(
            store, title=title, model=model, top_k=top_k, thumbnails=thumbnails, source="api"
        )
    except jobs.BatchInputError as exc:
        new.discard()
        raise ApiError(422, str(exc)) from None
    except BaseException:
        new.discard()
        raise


async def _found(request: Request) -> tuple[history.HistoryStore, jobs.Job]:
    caller = await run_in_threadpool(identify, request)
    store = await run_in_threadpool(history_store, caller)
    job = await run_in_threadpool(jobs.get, store, request.path_params["id"])
    if job is None:
        raise ApiError(404, NOT_FOUND)
    return store, job


@endpoint
async def list_jobs(request: Request) -> Response:
    """GET /api/v1/jobs: the caller's jobs, newest first."""
    caller = await run_in_threadpool(identify, request)
    store = await run_in_threadpool(history_store, caller)
    found = await run_in_threadpool(jobs.newest, store)
    return JSONResponse({"jobs": [job_json(request, job) for job in found]})


@endpoint
async def get_job(request: Request) -> Response:
    """GET /api/v1/jobs/{id}: a job's progress."""
    _, job = await _found(request)
    return JSONResponse(job_json(request, job))


@endpoint
async def results(request: Request) -> Response:
    """GET /api/v1/jobs/{id}/results: one row per picture, as CSV or JSON."""
    kind = request.query_params.get("format", "csv")
    if kind not in ("csv", "json"):
        raise ApiError(422, "Expected format to be csv or json.")
    store, job = await _found(request)
    data = await limits.one_export_at_a_time(lambda: jobs.export(store, job, kind))
    media = "text/csv; charset=utf-8" if kind == "csv" else "application/json"
    headers = {"Content-Disposition": f'attachment; filename="job-{job.public_id}.{kind}"'}
    return Response(data, media_type=media, headers=headers)


@endpoint
async def cancel(request: Request) -> Response:
    """DELETE /api/v1/jobs/{id}: stop a job (what it saved is kept)."""
    store, job = await _found(request)
    job = await run_in_threadpool(jobs.cancel, store, job.public_id)
    if job is None:
        raise ApiError(404, NOT_FOUND)
    return JSONResponse(job_json(request, job))
