"""The API's routes and lifespan, as `streamlit_app.py` hands them to `st.App`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from api import endpoints, evaluations, jobs, openapi, uploads
from api.errors import ApiError
from classifier.config import SettingsError, get_settings
from classifier.history.tables import PUBLIC_ID_PATTERN

log = logging.getLogger(__name__)
PREFIX = "/api/v1"


class PublicId(Convertor):
    """A prediction's public id in a path: nothing else (such as `export`) is taken for one."""

    # Not followed by a line break: a route's pattern ends in `$`, which also matches just
    # before a final "\n", so ".../<id>%0a" would name the prediction <id>.
    regex = PUBLIC_ID_PATTERN + "(?!\n)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class Anything(Convertor):
    """The rest of a path, whatever it holds (line breaks too, which `path` does not match)."""

    regex = "[\\s\\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("public_id", PublicId())
register_url_convertor("anything", Anything())


async def openapi_json(request: Request) -> Response:
    """GET /api/v1/openapi.json: the OpenAPI document, with this server's address."""
    root = str(request.base_url).rstrip("/")
    return JSONResponse(openapi.document(root))


def routes() -> list[BaseRoute]:
    """Return the API's routes; with CLASSIFIER_API off (or a bad setting), one route that
    says so for every /api/ address."""
    page = [Route("/upload/{ticket}", uploads.receive, methods=["PUT"])]  # the Batch page's
    try:
        enabled = get_settings().api_enabled
    except SettingsError as exc:  # the pages say which setting; the API answers 503
        message = f"The app is misconfigured: {exc}"

        async def misconfigured(request: Request) -> Response:
            return JSONResponse({"error": message}, 503)

        return [Route("/api/{rest:anything}", misconfigured, methods=_ALL)]
    if not enabled:
        return [*page, Route("/api/{rest:anything}", endpoints.api_off, methods=_ALL)]
    from api import mcp

    api = [
        Route(f"{PREFIX}/openapi.json", openapi_json, methods=["GET"]),
        Route(f"{PREFIX}/predict", endpoints.predict, methods=["POST"]),
        Route(f"{PREFIX}/models", endpoints.list_models, methods=["GET"]),
        Route(f"{PREFIX}/predictions", endpoints.list_predictions, methods=["GET"]),
        Route(f"{PREFIX}/predictions/export", endpoints.export_predictions, methods=["GET"]),
        Route(f"{PREFIX}/predictions/{{id:public_id}}", endpoints.get_prediction, methods=["GET"]),
        Route(
            f"{PREFIX}/predictions/{{id:public_id}}",
            endpoints.delete_prediction,
            methods=["DELETE"],
        ),
        Route(
            f"{PREFIX}/predictions/{{id:public_id}}/feedback",
            endpoints.set_feedback,
            methods=["PUT"],
        ),
        Route(f"{PREFIX}/jobs", jobs.create, methods=["POST"]),
        Route(f"{PREFIX}/jobs", jobs.list_jobs, methods=["GET"]),
        Route(f"{PREFIX}/jobs/{{id:public_id}}", jobs.get_job, methods=["GET"]),
        Route(f"{PREFIX}/jobs/{{id:public_id}}", jobs.cancel, methods=["DELETE"]),
        Route(f"{PREFIX}/jobs/{{id:public_id}}/results", jobs.results, methods=["GET"]),
        Route(f"{PREFIX}/evaluations", evaluations.create, methods=["POST"]),
        Route(f"{PREFIX}/evaluations", evaluations.list_evaluations, methods=["GET"]),
        Route(f"{PREFIX}/evaluations/{{run:public_id}}", evaluations.get_run, methods=["GET"]),
        Route(f"{PREFIX}/evaluations/{{run:public_id}}", evaluations.cancel, methods=["DELETE"]),
        *mcp.routes(),
    ]

    async def elsewhere(request: Request) -> Response:
        """Any other /api/ address: 405 for a known one asked with another method, else 404."""
        first = next(
            (route for route in api if route.matches(request.scope)[0] is Match.PARTIAL), None
        )
        allowed = sorted(
            {method for route in api if first is not None and route.path == first.path
             for method in route.methods or ()}
        )  # fmt: skip
        if not allowed and request.url.path.startswith(f"{PREFIX}/predictions/"):
            return ApiError(404, endpoints.NOT_FOUND).response()  # an id of another shape
        if not allowed and request.url.path.startswith(f"{PREFIX}/jobs/"):
            return ApiError(404, jobs.NOT_FOUND).response()
        if not allowed and request.url.path.startswith(f"{PREFIX}/evaluations/"):
            return ApiError(404, evaluations.NOT_FOUND).response()
        if allowed:
            return ApiError(
                405,
                f"This address answers {', '.join(allowed)}, not {request.method}.",
                {"Allow": ", ".join(allowed)},
            ).response()
        return await endpoints.not_an_endpoint(request)

    return [*page, *api, Route("/api/{rest:anything}", elsewhere, methods=_ALL)]


_ALL = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _start_batch_jobs() -> None:
    """Start the runner of batch jobs, which takes up any a previous run left unfinished."""
    from classifier import jobs as batch

    try:
        batch.start_runner()
    except SettingsError:  # secrets that cannot name the history: the pages say why
        log.warning("No batch jobs run: the history database cannot be named")


@contextlib.asynccontextmanager
async def lifespan(app) -> AsyncIterator[None]:
    """Run what the server needs for as long as it runs: the batch jobs' runner, the
    warm start of the pages (`ui.warm_start`) and the API's MCP session manager."""
    try:
        enabled = get_settings().api_enabled
    except SettingsError:
        enabled = False
    _start_batch_jobs()
    from ui import warm_start

    warm_start.begin()
    if not enabled:
        yield
        return
    from api import mcp

    async with mcp.running():
        yield
