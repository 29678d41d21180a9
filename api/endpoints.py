"""The API's endpoints: parse a request, call the library off the event loop, answer JSON.

Every endpoint is wrapped by `endpoint`: an `ApiError` becomes its status and sentence, a
database that fails a 503 with a sentence safe to show, and anything else a logged 500.
Predictions are named by their public id (the one in the app's links); only the export,
the History page's download as it is, also holds each row's number.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import limits
from api.callers import Caller, identify
from api.errors import ApiError
from classifier import history, images, labels, models
from classifier.config import get_settings
from classifier.history import records
from classifier.predict import MAX_TOP_K, UNSURE_BELOW, Prediction, classify

log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
DEFAULT_TOP_K = 5
DEFAULT_PAGE = 50
MAX_PAGE = 500
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
READ_ONLY = "The history database is read-only on this server: nothing can be saved or changed."
MAX_EXPORT_ROWS = 50_000  # predictions in one export, which is built in memory


def refusal(exc: Exception, request: Request) -> ApiError:
    """Return the status and sentence the API answers a failure with; a failure that is not
    the caller's doing is logged (the caller gets no traceback)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, history.HistoryReadOnlyError):  # its sentence names the file
        return ApiError(503, READ_ONLY)
    if isinstance(exc, history.HistoryError | SQLAlchemyError):
        log.error(
            "The history database failed during %s %s",
            request.method,
            request.url.path,
            exc_info=exc,
        )
        return ApiError(503, history.public_message(exc))
    log.error("The API failed on %s %s", request.method, request.url.path, exc_info=exc)
    return ApiError(500, "Something went wrong on the server; it has been logged.")


def endpoint(handler: Handler) -> Handler:
    """Answer every failure with a status and one sentence (`refusal`), never a traceback."""

    @functools.wraps(handler)
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return refusal(exc, request).response()

    return answer


# --- Reading parameters -----------------------------------------------------------------


def _integer(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ApiError(422, f"Expected {name} to be a whole number from {low} to {high:,}.")
    return int(value)


def _number(value: str | None, name: str, default: float | None) -> float | None:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise ApiError(422, f"Expected {name} to be a number from 0 to 1.")
    return number


def _flag(value: str | None, name: str) -> bool:
    if value is None:
        return False
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ApiError(422, f"Expected {name} to be true or false.")


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z" too
    except ValueError:
        raise ApiError(
            422, f"Expected {name} as an ISO 8601 date or time, such as 2026-12-01."
        ) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ApiError(422, f"Expected {name} between the years 1 and 9999, in UTC.") from None


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(422, f"Expected {name} to be text.")
    return value


def one_line(value: str, name: str) -> str:
    """Return a text parameter (a job's title, an evaluation's name) that holds no control
    characters; else refuse it (422)."""
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ApiError(422, f"Expected {name} on one line, without control characters.")
    return value


def _file_name(sent: str | None) -> str:
    """Return a picture's file name as the answer gives it and the history keeps it: a NUL
    character, which no file name holds and PostgreSQL refuses, becomes U+FFFD."""
    return (sent or "picture").replace("\x00", "\ufffd")


def filters_of(request: Request) -> tuple[history.Filters, str]:
    """Return the History page's filters and sort, read from the query string."""
    query = request.query_params
    feedback = query.get("feedback", "any")
    if feedback not in history.FEEDBACK_FILTERS:
        raise ApiError(
            422, f"Expected feedback to be one of {', '.join(history.FEEDBACK_FILTERS)}."
        )
    sort = query.get("sort", "newest")
    if sort not in history.SORTS:
        raise ApiError(422, f"Expected sort to be one of {', '.join(history.SORTS)}.")
    label = query.get("label", "")
    if len(label) > history.MAX_LABEL_LENGTH:
        raise ApiError(422, f"Expected a label of at most {history.MAX_LABEL_LENGTH} characters.")
    filters = history.Filters(
        label=label,
        models=tuple(name for name in query.getlist("model") if name),
        min_confidence=_number(query.get("min_confidence"), "min_confidence", None),
        max_confidence=_number(query.get("max_confidence"), "max_confidence", None),
        start=_time(query.get("since"), "since"),
        end=_time(query.get("until"), "until"),
        feedback=feedback,
    )
    return filters, sort


# --- What is answered -------------------------------------------------------------------


def top_k_json(classes) -> list[dict[str, Any]]:
    return [
        {"label": c.label, "index": c.index, "probability": round(float(c.probability), 6)}
        for c in classes
    ]


def prediction_json(
    file_name: str, prediction: Prediction, top_k: int, threshold: float
) -> dict[str, Any]:
    """Return what the API says about one classified picture (as the CLI's --json, and more)."""
    ranked = prediction.top(top_k)
    entry: dict[str, Any] = {
        "file": file_name,
        "model": prediction.model,
        "top_k": top_k_json(ranked),
        "unsure": bool(ranked[0].probability < threshold),
        "inference_ms": round(prediction.timings.inference_ms, 3),
        "width": prediction.width,
        "height": prediction.height,
    }
    if prediction.notice:
        entry["requested_model"] = prediction.requested_model
        entry["notice"] = prediction.notice
    return entry


def record_json(record: history.Record) -> dict[str, Any]:
    """Return a saved prediction as the API shows it: named by its public id."""
    return {
        "id": record.public_id,
        "created_at": record.created_at.isoformat(),
        "file": record.file_name,
        "sha256": record.sha256,
        "width": record.width,
        "height": record.height,
        "image_format": record.image_format,
        "model": record.model,
        "top_k": top_k_json(record.top_k),
        "inference_ms": record.inference_ms,
        "feedback": record.feedback,
        "corrected_label": record.corrected_label,
        "source": record.source or "app",
    }


def image_status(exc: images.ImageError) -> int:
    """Return the HTTP status of a picture that cannot be classified."""
    if isinstance(exc, images.TooLarge):
        return 413
    if isinstance(exc, images.NotAPicture):
        return 415
    return 422


# --- Endpoints --------------------------------------------------------------------------


@endpoint
async def list_models(request: Request) -> Response:
    """GET /api/v1/models: the built-in models, then the caller's own (added or taught)."""
    caller = await run_in_threadpool(identify, request)  # a token is a database query
    listed = await run_in_threadpool(models_of, caller)
    return JSONResponse({"default": get_settings().default_model, "models": listed})


def models_of(caller: Caller) -> list[dict[str, Any]]:
    listed = [
        {
            "name": spec.name,
            "title": spec.title,
            "kind": "builtin",
            "classes": 1000,
            "input_size": spec.input_size,
            "available": models.weights_status(spec.name).available,
        }
        for spec in models.MODELS.values()
    ]
    for model in models.all_models(caller.models):
        try:
            classes, size, usable = len(model.class_names), model.input_size, True
        except models.ModelError:  # a row lacking what running it needs
            classes, size, usable = 0, 0, False
        listed.append(
            {
                "name": model.name,
                "title": model.name,
                "kind": str(model.kind),
                "classes": classes,
                "input_size": size,
                "available": usable,
            }
        )
    return listed


@endpoint
async def predict(request: Request) -> Response:
    """POST /api/v1/predict: classify one or several pictures (multipart `file`)."""
    caller = await run_in_threadpool(identify, request)  # a token is a database query
    queue = limits.queue()
    queue.check()  # already full: 503 before the body is read
    limit = limits.body_limit()
    body = limits.capped(request, limit)
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(415, "Send the pictures as multipart/form-data, each in a field named file.")
    try:
        form = await body.form(
            max_files=limits.MAX_FILES,
            max_fields=limits.MAX_FIELDS,
            max_part_size=limits.MAX_FIELD_BYTES,
        )
    except limits.BodyTooLarge:
        raise limits.too_large(limit) from None
    except limits.BodyTooSlow:
        raise limits.too_slow() from None
    except (MultiPartException, HTTPException) as exc:  # the parser's 400s, as sentences
        reason = getattr(exc, "message", None) or getattr(exc, "detail", "")
        raise ApiError(422, f"The form cannot be read: {reason}") from None
    try:
        uploads = [value for value in form.getlist("file") if isinstance(value, UploadFile)]
        if not uploads:
            raise ApiError(422, "Send at least one picture in a form field named file.")
        top_k = _integer(_text(form.get("top_k"), "top_k"), "top_k", DEFAULT_TOP_K, 1, MAX_TOP_K)
        threshold = _number(_text(form.get("threshold"), "threshold"), "threshold", UNSURE_BELOW)
        save = _flag(_text(form.get("save"), "save"), "save")
        sent_photo = _text(form.get("photo"), "photo")
        photo = None if sent_photo is None else _flag(sent_photo, "photo")  # None: the setting
        model_name = _text(form.get("model"), "model") or get_settings().default_model
        if save and not caller.can_save:
            raise ApiError(403, caller.why_not_saved())
        pictures = [(_file_name(upload.filename), upload.file, upload.size) for upload in uploads]
        async with queue.turn():  # only classifying waits in the queue, not uploading
            answers = await queue.run(
                classify_all, caller, model_name, pictures, top_k, threshold, save, photo
            )
    finally:
        await form.close()
    if len(answers) == 1 and "error" in answers[0]:
        only = answers[0]
        raise ApiError(only["status"], f"{only['file']}: {only['error']}", file=only["file"])
    return JSONResponse({"predictions": answers})


def classify_all(
    caller: Caller,
    model_name: str,
    pictures: list[tuple[str, BinaryIO, int | None]],
    top_k: int,
    threshold: float,
    save: bool,
    photo: bool | None = None,
) -> list[dict[str, Any]]:
    """Classify each picture in turn (one read into memory at a time); save if asked, with
    a reduced copy of each picture to teach from if `photo` (None: CLASSIFIER_KEEP_PHOTOS)."""
    try:
        choice = models.choose(model_name, caller.models)
    except models.UnknownModel:
        raise ApiError(
            404,
            f"There is no model called “{model_name}” here; the list of models "
            "(GET /api/v1/models, or the MCP tool list_models) names them.",
        ) from None
    try:
        loaded = models.load(choice, in_child=True)
    except models.ModelError as exc:
        raise ApiError(503, str(exc)) from None
    store = caller.store() if save else None
    if store is not None and store.read_only:
        raise ApiError(503, READ_ONLY)
    max_bytes = get_settings().max_bytes
    if photo is None:
        photo = get_settings().keep_photos
    side = images.photo_side(loaded.spec.input_size, loaded.spec.crop_fraction)
    answers: list[dict[str, Any]] = []
    saving: list[tuple[dict[str, Any], history.NewRecord]] = []
    for name, handle, size in pictures:
        try:
            if size is not None and size > max_bytes:
                raise images.TooLarge(
                    f"This file is {images.size_text(size, round_up=True)}; "
                    f"the limit is {images.size_text(max_bytes)}."
                )
            data = handle.read(max_bytes + 1)
            prediction = classify(data, loaded)
        except images.ImageError as exc:
            answers.append({"file": name, "error": str(exc), "status": image_status(exc)})
            continue
        except models.ModelError as exc:  # an added model that fails on this picture
            answers.append({"file": name, "error": str(exc), "status": 422})
            continue
        answer = prediction_json(name, prediction, top_k, threshold)
        answers.append(answer)
        if save:
            record = history.NewRecord.from_prediction(
                prediction, name, images.content_digest(data), top_k, source="api"
            )
            if photo:
                record = dataclasses.replace(record, photo=_photo(data, prediction, side))
            saving.append((answer, record))
        del data, prediction
    if saving and store is not None:
        ids = store.add_many(record for _, record in saving)
        public = store.public_ids(ids)
        for (answer, _), row_id in zip(saving, ids, strict=True):
            answer["id"] = public[row_id]
    return answers


def _photo(data: bytes, prediction: Prediction, side: int) -> bytes | None:
    """Return the reduced copy of a picture to keep to teach from; None (the thumbnail alone,
    and a log line) if it cannot be made."""
    try:
        return images.photo_copy(
            data, prediction.image, (prediction.width, prediction.height), side
        )
    except images.ImageError:
        log.exception("Keeping a copy of a picture sent to the API failed")
        return None


@endpoint
async def list_predictions(request: Request) -> Response:
    """GET /api/v1/predictions: the caller's history, filtered and paged."""
    caller = await run_in_threadpool(identify, request)  # a token is a database query
    filters, sort = filters_of(request)
    query = request.query_params
    limit = _integer(query.get("limit"), "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = _integer(query.get("offset"), "offset", 0, 0, 10**9)
    store = await run_in_threadpool(caller.store)  # opening a database may wait

    def read() -> dict[str, Any]:
        found = store.find(filters, sort, limit, offset, with_thumbnails=False)
        return {
            "total": store.count(filters),
            "limit": limit,
            "offset": offset,
            "predictions": [record_json(record) for record in found],
        }

    return JSONResponse(await run_in_threadpool(read))


@endpoint
async def export_predictions(request: Request) -> Response:
    """GET /api/v1/predictions/export: every matching prediction as CSV or JSON."""
    caller = await run_in_threadpool(identify, request)  # a token is a database query
    filters, sort = filters_of(request)
    kind = request.query_params.get("format", "csv")
    if kind not in ("csv", "json"):
        raise ApiError(422, "Expected format to be csv or json.")
    store = await run_in_threadpool(caller.store)
    media = "text/csv; charset=utf-8" if kind == "csv" else "application/json"

    def build() -> bytes:
        total = store.count(filters)
        if total > MAX_EXPORT_ROWS:
            raise ApiError(
                422,
                f"This export would hold {total:,} predictions; one holds at most "
                f"{MAX_EXPORT_ROWS:,}. Narrow it, for instance with since and until.",
            )
        if kind == "csv":
            return store.export_csv(filters, sort, model_title=models.title_of)
        return store.export_json(filters, sort)

    data = await limits.one_export_at_a_time(build)
    headers = {"Content-Disposition": f'attachment; filename="predictions.{kind}"'}
    return Response(data, media_type=media, headers=headers)


NOT_FOUND = "No prediction has this id in your history."


def _found(store: history.HistoryStore, public_id: str) -> history.Record:
    record = store.get_public(public_id)
    if record is None:
        raise ApiError(404, NOT_FOUND)
    return record


@endpoint
async def get_prediction(request: Request) -> Response:
    """GET /api/v1/predictions/{id}."""
    caller = await run_in_threadpool(identify, request)  # a token is a database query
    store, public_id = await run_in_threadpool(caller.store), request.path_params["id"]
    record = await run_in_threadpool(_found, store, public_id)
    return JSONResponse(record_json(record))


@endpoint
async def set_feedback(request: Request) -> Response:
    """PUT /api/v1/predictions/{id}/feedback: right or wrong, and what it really is."""
    caller = await run_in_threadpool(identify, request)  # a token is a database query
    store, public_id = await run_in_threadpool(caller.store), request.path_params["id"]
    advice = "feedback is a small JSON object"
    body = limits.capped(request, limits.MAX_FIELD_BYTES, advice)
    try:
        sent = json.loads(await body.body())
    except limits.BodyTooLarge:
        raise limits.too_large(limits.MAX_FIELD_BYTES, advice) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(422, "Send the feedback as a JSON object.") from None
    if not isinstance(sent, dict) or set(sent) - {"feedback", "corrected_label"}:
        raise ApiError(
            422,
            "Send a JSON object with feedback (correct, wrong, unusable or null) and "
            "corrected_label.",
        )
    feedback = sent.get("feedback")
    if feedback not in (*history.FEEDBACK_VALUES, None):
        raise ApiError(422, "Expected feedback to be correct, wrong, unusable or null.")
    corrected = _text(sent.get("corrected_label"), "corrected_label")
    if corrected and feedback != "wrong":
        raise ApiError(422, "A corrected_label goes only with feedback wrong.")
    if corrected and len(corrected.strip()) > history.MAX_LABEL_LENGTH:
        raise ApiError(
            422, f"Expected a corrected_label of at most {history.MAX_LABEL_LENGTH} characters."
        )
    if corrected and records.search_text(corrected) != corrected.strip():
        raise ApiError(422, "A corrected_label cannot hold line breaks or control characters.")

    def rate() -> history.Record:
        record = _found(store, public_id)
        if corrected and labels.names_the_answer(corrected, record.top1_label, classes(record)):
            raise ApiError(
                422,
                "The corrected_label is the prediction's own top-1 label; send feedback "
                "correct if it was right.",
            )
        if not store.set_feedback(record.id, feedback, corrected):
            raise ApiError(404, NOT_FOUND)  # deleted meanwhile
        return _found(store, public_id)

    def classes(record: history.Record) -> tuple[str, ...]:
        """The model's classes (two may differ by case alone), or, were it removed (its name
        maybe taken since by another person's model), those the prediction names."""
        named = tuple(entry.label for entry in record.top_k)
        if record.model in models.MODELS:
            return models.choose(record.model).spec.class_names
        try:
            found = models.find(record.model, caller.models)
        except models.ModelError:
            return named
        return found.class_names if models.could_have_made(found, record) else named

    return JSONResponse(record_json(await run_in_threadpool(rate)))


@endpoint
async def delete_prediction(request: Request) -> Response:
    """DELETE /api/v1/predictions/{id}."""
    caller = await run_in_threadpool(identify, request)  # a token is a database query
    store, public_id = await run_in_threadpool(caller.store), request.path_params["id"]

    def remove() -> None:
        record = _found(store, public_id)
        if not store.delete([record.id]):
            raise ApiError(404, NOT_FOUND)

    await run_in_threadpool(remove)
    return Response(status_code=204)


API_OFF = "The API is turned off on this server (CLASSIFIER_API=off)."


async def api_off(request: Request) -> Response:
    """Every /api/ address while CLASSIFIER_API is off."""
    return ApiError(404, API_OFF).response()


async def not_an_endpoint(request: Request) -> Response:
    """An /api/ address that names nothing."""
    return ApiError(
        404, "There is no such API address; GET /api/v1/openapi.json lists them."
    ).response()
