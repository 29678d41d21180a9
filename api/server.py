"""The API's routes and lifespan, as `streamlit_app.py` hands them to `st.App`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from api import endpoints, openapi
from classifier.config import SettingsError, get_settings

log = logging.getLogger(__name__)
PREFIX = "/api/v1"


async def openapi_json(request: Request) -> Response:
    """GET /api/v1/openapi.json: the OpenAPI document, with this server's address."""
    root = str(request.base_url).rstrip("/")
    return JSONResponse(openapi.document(root))


def routes() -> list[BaseRoute]:
    """Return the API's routes; with CLASSIFIER_API off (or a bad setting), one route that
    says so for every /api/ address."""
    try:
        enabled = get_settings().api_enabled
    except SettingsError as exc:  # the pages say which setting; the API answers 503
        message = f"The app is misconfigured: {exc}"

        async def misconfigured(request: Request) -> Response:
            return JSONResponse({"error": message}, 503)

        return [Route("/api/{rest:path}", misconfigured, methods=_ALL)]
    if not enabled:
        return [Route("/api/{rest:path}", endpoints.api_off, methods=_ALL)]
    from api import mcp

    return [
        Route(f"{PREFIX}/openapi.json", openapi_json, methods=["GET"]),
        Route(f"{PREFIX}/predict", endpoints.predict, methods=["POST"]),
        Route(f"{PREFIX}/models", endpoints.list_models, methods=["GET"]),
        Route(f"{PREFIX}/predictions", endpoints.list_predictions, methods=["GET"]),
        Route(f"{PREFIX}/predictions/export", endpoints.export_predictions, methods=["GET"]),
        Route(f"{PREFIX}/predictions/{{id}}", endpoints.get_prediction, methods=["GET"]),
        Route(f"{PREFIX}/predictions/{{id}}", endpoints.delete_prediction, methods=["DELETE"]),
        Route(f"{PREFIX}/predictions/{{id}}/feedback", endpoints.set_feedback, methods=["PUT"]),
        *mcp.routes(),
        Route("/api/{rest:path}", endpoints.not_an_endpoint, methods=_ALL),
    ]


_ALL = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


@contextlib.asynccontextmanager
async def lifespan(app) -> AsyncIterator[None]:
    """Run what the API needs for as long as the server runs (the MCP session manager)."""
    try:
        enabled = get_settings().api_enabled
    except SettingsError:
        enabled = False
    if not enabled:
        yield
        return
    from api import mcp

    async with mcp.running():
        yield
