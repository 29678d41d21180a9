"""The API's evaluations: a labelled set as a zip in, one or more models run on it, each
one's numbers out (the command line's `classifier evaluate`, as batch jobs).

    POST   /api/v1/evaluations?model=A&model=B&name=set.zip   body: the zip -> 202, the run
    GET    /api/v1/evaluations                 the caller's runs, newest first (summaries)
    GET    /api/v1/evaluations/{run}           a run: progress, then each model's evaluation
    DELETE /api/v1/evaluations/{run}           cancel it

The zip holds a folder per class (`cat/001.jpg`; one folder around them all is looked
through), or the pictures and a `labels.csv` of file,label at its top (or at the top of
its one folder). It is streamed to disk and checked as a batch job's zip is; then each
model gets a batch job of the pictures whose label is one of its classes, and the run's
numbers are worked out as each job ends (`classifier.evaluation.jobs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import jobs as jobs_api
from api import limits
from api.callers import Caller, identify
from api.endpoints import endpoint, one_line
from api.errors import ApiError
from api.jobs import ZIP_TYPES
from classifier import evaluation, history, jobs, models
from classifier.config import get_settings
from classifier.evaluation import jobs as evaluating
from classifier.evaluation import kept, labelled
from classifier.jobs import inputs, queue

NOT_FOUND = "No evaluation has this id among yours."
DEFAULT_NAME = "upload.zip"
MAX_MODELS = 8  # models in one run: each is a batch job over the set
MAX_NAME_LENGTH = 200
LIST_LIMIT = 200  # evaluations listed (summaries: without their reports and answers)
RUN_STATUSES = ("running", "failed", "cancelled")  # a run's: the first any model has, else done


NO_HISTORY = (
    "History is off on this server: an evaluation runs as batch jobs and is kept in the "
    "history, so none can run here."
)


def _store(caller: Caller) -> history.HistoryStore:
    """The caller's history, where evaluations are kept (they need one)."""
    return jobs_api.history_store(caller, NO_HISTORY)


def _unknown(model: str) -> ApiError:
    return ApiError(404, f"There is no model called “{model}” here; GET /api/v1/models names them.")


def _model_names(request: Request) -> list[str]:
    names = [name for name in request.query_params.getlist("model") if name]
    if not names:
        return [get_settings().default_model]
    if len(set(names)) != len(names):
        raise ApiError(422, "Name each model once.")
    if len(names) > MAX_MODELS:
        raise ApiError(422, f"Evaluate at most {MAX_MODELS} models at once.")
    return names


def _set_name(request: Request) -> str:
    name = request.query_params.get("name", "").strip() or DEFAULT_NAME
    if len(name) > MAX_NAME_LENGTH:
        raise ApiError(422, f"Expected name to be at most {MAX_NAME_LENGTH} characters.")
    return one_line(name, "name")


# --- The run as JSON ----------------------------------------------------------------------


def run_status(found: list[kept.Evaluation]) -> str:
    """A run's status: running while any model's job runs; else failed if any failed,
    cancelled if any was cancelled, and done when every model is."""
    statuses = {e.status for e in found}
    return next((status for status in RUN_STATUSES if status in statuses), "done")


def _links(request: Request, run_id: str) -> dict[str, str]:
    root = str(request.base_url).rstrip("/")
    return {"self": f"{root}/api/v1/evaluations/{run_id}"}


def _progress(job: queue.Job | None) -> dict[str, Any] | None:
    if job is None:  # its job was deleted
        return None
    whole = job.as_dict()
    keys = ("status", "total", "done", "failed", "photos_per_second", "seconds_left")
    return {key: whole[key] for key in keys}


def _run_json(request: Request, store: history.HistoryStore, run_id: str) -> dict[str, Any] | None:
    """The run as GET answers it (None: no such run among the caller's); completes any
    evaluation whose job ended meanwhile."""
    found = evaluating.refresh(store, run_id)
    if not found:
        return None
    status = run_status(found)
    entries = []
    for each in found:
        job = None if each.job_id is None else queue.by_id(store, each.job_id)
        entries.append({**each.as_dict(whole=each.status != "running"), "progress": _progress(job)})
    value: dict[str, Any] = {
        "id": run_id,
        "set": found[0].title,
        "status": status,
        "created_at": min(e.created_at for e in found).isoformat(),
        "finished_at": None,
        "models": entries,
    }
    if status != "running":
        ends = [e.finished_at for e in found if e.finished_at is not None]
        value["finished_at"] = max(ends).isoformat() if ends else None
    if len(found) > 1:  # as `classifier evaluate --json`: the first model against each other
        first = found[0]
        value["comparisons"] = []
        if status == "done":
            value["comparisons"] = [
                {"first": first.model, "second": other.model,
                 **evaluation.mcnemar(first.answers, other.answers)}
                for other in found[1:]
            ]  # fmt: skip
    value["links"] = _links(request, run_id)
    return value


def _summaries(request: Request, store: history.HistoryStore) -> list[dict[str, Any]]:
    """The caller's runs, newest first, each with its models' summaries."""
    limit = LIST_LIMIT
    found = kept.newest(store, limit=limit)
    runs: dict[str, list[kept.Evaluation]] = {}
    for each in found:
        runs.setdefault(each.run_id, []).append(each)
    if len(found) == limit and runs:  # the oldest run may be cut off at the limit: all of it
        last = next(reversed(runs))
        runs[last] = kept.run(store, last)
    listed = []
    for run_id, members in runs.items():
        if any(e.status == "running" for e in members):
            members = evaluating.refresh(store, run_id) or members
        members = sorted(members, key=lambda e: e.id)  # model order, as in the run
        listed.append(
            {
                "id": run_id,
                "set": members[0].title,
                "status": run_status(members),
                "created_at": min(e.created_at for e in members).isoformat(),
                "models": [e.as_dict(whole=False) for e in members],
                "links": _links(request, run_id),
            }
        )
    return listed


# --- Endpoints ----------------------------------------------------------------------------


@endpoint
async def create(request: Request) -> Response:
    """POST /api/v1/evaluations: evaluate models on a labelled set sent as a zip."""
    caller = await run_in_threadpool(identify, request)  # a token is a database query
    store = await run_in_threadpool(_store, caller)
    names = _model_names(request)
    title = _set_name(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ZIP_TYPES:
        raise ApiError(415, "Send the set as one zip, with Content-Type: application/zip.")
    for name in names:
        try:
            await run_in_threadpool(models.choose, name, caller.models)
        except models.UnknownModel:
            raise _unknown(name) from None
        except models.ModelError as exc:
            raise ApiError(503, str(exc)) from None
    limit = get_settings().batch_max_bytes
    spool = get_settings().data_dir / "jobs"
    try:
        await run_in_threadpool(spool.mkdir, parents=True, exist_ok=True)
        async with limits.body_on_disk(request, limit, spool) as path:
            run_id = await run_in_threadpool(_unpack_and_start, store, path, title, names)
    except limits.BodyTooLarge:
        raise ApiError(413, limits.zip_too_large(limit)) from None
    except limits.BodyTooSlow:
        raise limits.too_slow() from None
    except OSError as exc:
        raise ApiError(507, f"The server cannot keep this zip ({exc.strerror or exc}).") from None
    value = await run_in_threadpool(_run_json, request, store, run_id)
    headers = {"Location": f"/api/v1/evaluations/{run_id}"}
    return JSONResponse(value, status_code=202, headers=headers)


def _unpack_and_start(store: history.HistoryStore, path: Path, title: str, names: list[str]) -> str:
    new = jobs.NewJob()
    try:
        new.unpack_zip(path)
        data = inputs.labels_csv(path, [picture.name for picture in new.pictures])
        csv_text = None if data is None else labelled.read_csv_bytes(data)
        the_set = labelled.from_names([p.name for p in new.pictures], title, csv_text)
        return evaluating.start(store, new, the_set, names, source="api")
    except (jobs.BatchInputError, evaluation.SetError) as exc:
        raise ApiError(422, str(exc)) from None
    except models.UnknownModel as exc:  # removed since it was looked up
        raise ApiError(404, str(exc)) from None
    except models.ModelError as exc:
        raise ApiError(503, str(exc)) from None
    finally:
        new.discard()  # the jobs' folders hold their own links to the pictures


async def _found(request: Request) -> tuple[history.HistoryStore, str]:
    caller = await run_in_threadpool(identify, request)
    store = await run_in_threadpool(_store, caller)
    return store, request.path_params["run"]


@endpoint
async def list_evaluations(request: Request) -> Response:
    """GET /api/v1/evaluations: the caller's runs, newest first."""
    caller = await run_in_threadpool(identify, request)
    store = await run_in_threadpool(_store, caller)
    listed = await run_in_threadpool(_summaries, request, store)
    return JSONResponse({"runs": listed})


@endpoint
async def get_run(request: Request) -> Response:
    """GET /api/v1/evaluations/{run}: a run's progress, then its numbers."""
    store, run_id = await _found(request)
    value = await run_in_threadpool(_run_json, request, store, run_id)
    if value is None:
        raise ApiError(404, NOT_FOUND)
    return JSONResponse(value)


@endpoint
async def cancel(request: Request) -> Response:
    """DELETE /api/v1/evaluations/{run}: stop a run's jobs (what was answered is kept)."""
    store, run_id = await _found(request)
    if not await run_in_threadpool(kept.run, store, run_id):
        raise ApiError(404, NOT_FOUND)
    await run_in_threadpool(evaluating.cancel, store, run_id)
    value = await run_in_threadpool(_run_json, request, store, run_id)
    if value is None:
        raise ApiError(404, NOT_FOUND)
    return JSONResponse(value)
