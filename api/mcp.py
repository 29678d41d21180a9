"""The MCP endpoint: the classifier as tools for AI assistants, on the app's own port.

An MCP client connects to `http://<host>:<port>/api/mcp` (streamable HTTP) and finds two
tools:

- `classify_image`: one picture, sent in the call as base64 (the file's own bytes; the
  base64 part of a `data:` URL works too). The server never fetches a URL. It answers
  what POST /api/v1/predict answers for one picture, with the same numbers, and saves it
  to the history when asked.
- `list_models`: the models the caller may use, as GET /api/v1/models lists them.

The rules are the REST API's: the same token (`Authorization: Bearer cls_...`), the same
history modes, the same size limit and the same queue. A request refused before any tool
runs (no token in private mode, a bad token, secrets that cannot be trusted, a web page's
Origin, a body past the limit) gets its HTTP status and a JSON-RPC error holding the
sentence; a tool that cannot do what it was asked answers a tool error: the REST API's
sentence, after the SDK's "Error executing tool <name>: ".
Each call stands alone (stateless, answered with JSON): nothing is kept between calls.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import logging
import math
from collections.abc import AsyncIterator
from typing import Annotated, Any, NotRequired

import streamlit as st
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import INTERNAL_ERROR, INVALID_REQUEST
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send
from typing_extensions import TypedDict  # pydantic reads typing's only from Python 3.12

from api import endpoints, limits
from api.callers import Caller, identify
from api.errors import ApiError
from classifier import images
from classifier.config import get_settings
from classifier.predict import MAX_TOP_K, UNSURE_BELOW

PATH = "/api/mcp"
ENVELOPE = 64 * 1024  # a call's JSON around the picture's base64: the other arguments
CALLER = "classifier.caller"  # where a request's Caller is kept, in its ASGI scope
NOT_BASE64 = (
    "The image is not valid base64: send the picture file's bytes encoded as standard "
    "base64 (RFC 4648), not a URL or a path."
)
MAX_FILE_NAME = 255
# Ranges shown in the tools' schemas, and checked in the tool to answer with a sentence.
TOP_K = {"minimum": 1, "maximum": MAX_TOP_K}
FILE_NAME = {"minLength": 1, "maxLength": MAX_FILE_NAME}
FROM_A_PAGE = (
    "This request came from a web page (it sent an Origin header) whose origin is not in "
    "the server's server.corsAllowedOrigins; call the MCP endpoint from a program."
)


# --- What the tools answer (their output schemas) --------------------------------------


class Ranked(TypedDict):
    label: str
    index: int
    probability: float


class Classified(TypedDict):
    """One classified picture, as POST /api/v1/predict answers it."""

    file: str
    model: str
    top_k: list[Ranked]
    unsure: bool  # the top class's probability is below 0.25
    inference_ms: float
    width: int
    height: int
    requested_model: NotRequired[str]  # with `notice`: another model answered, and why
    notice: NotRequired[str]
    id: NotRequired[str]  # the saved prediction's public id, when `save` was asked


class Model(TypedDict):
    name: str
    title: str
    kind: str
    classes: int
    input_size: int
    available: bool


class Models(TypedDict):
    default: str
    models: list[Model]


# --- The tools ----------------------------------------------------------------------------


def _server() -> MCPServer:
    """Return the MCP server the tools belong to, leaving the app's logging as it is.

    MCPServer() calls logging.basicConfig(level=INFO) when the root logger has no handler,
    which would turn on INFO logging for every library (SQL statements included).
    """
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        return MCPServer(
            "image-classifier",
            instructions="Classify pictures with this server's ImageNet models (or the "
            "caller's own): call list_models to see them, classify_image with a picture "
            "file's bytes in base64 to classify one.",
        )
    finally:
        root.removeHandler(placeholder)


server = _server()


@server.tool()
async def classify_image(
    image_base64: Annotated[
        str,
        Field(
            description="The picture file's bytes, base64-encoded "
            f"({', '.join(images.ACCEPTED_FORMATS)}); never a URL."
        ),
    ],
    ctx: Context,
    model: Annotated[
        str | None, Field(description="A model's name from list_models; none: the default.")
    ] = None,
    top_k: Annotated[
        int,
        Field(description="How many of the likeliest classes to list.", json_schema_extra=TOP_K),
    ] = endpoints.DEFAULT_TOP_K,
    save: Annotated[bool, Field(description="Save the prediction to the history.")] = False,
    file_name: Annotated[
        str, Field(description="The name the history shows.", json_schema_extra=FILE_NAME)
    ] = "picture",
) -> Classified:
    """Say what is in a picture: its likeliest classes with their probabilities."""
    async with _as_tool_error(ctx):
        caller = _caller(ctx)
        if not 1 <= top_k <= MAX_TOP_K:
            raise ApiError(422, f"Expected top_k to be a whole number from 1 to {MAX_TOP_K:,}.")
        if not file_name.strip() or len(file_name) > MAX_FILE_NAME:
            raise ApiError(422, f"Expected file_name to be 1 to {MAX_FILE_NAME} characters.")
        encoded = _base64_text(image_base64)
        max_bytes = get_settings().max_bytes
        size = len(encoded) * 3 // 4 - encoded.endswith("=") - encoded.endswith("==")
        if size > max_bytes:  # told by its length, before it is decoded
            raise ApiError(
                413,
                f"{file_name}: This file is {images.size_text(size, round_up=True)}; "
                f"the limit is {images.size_text(max_bytes)}.",
            )
        if save and not caller.can_save:
            raise ApiError(403, caller.why_not_saved())
        model_name = model or get_settings().default_model
        queue = limits.queue()
        async with queue.turn():
            (answer,) = await queue.run(
                _classify, caller, encoded, file_name, model_name, top_k, save
            )
        if "error" in answer:
            raise ApiError(answer["status"], f"{answer['file']}: {answer['error']}")
        return answer


@server.tool()
async def list_models(ctx: Context) -> Models:
    """List the models classify_image can use here: the built-in ones, then your own."""
    async with _as_tool_error(ctx):
        listed = await run_in_threadpool(endpoints.models_of, _caller(ctx))
        return {"default": get_settings().default_model, "models": listed}


def _classify(
    caller: Caller, encoded: str, file_name: str, model_name: str, top_k: int, save: bool
) -> list[dict[str, Any]]:
    """Decode the picture and classify it as POST /api/v1/predict does (in a worker thread)."""
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ApiError(422, NOT_BASE64) from None
    picture = (file_name, io.BytesIO(data), len(data))
    return endpoints.classify_all(caller, model_name, [picture], top_k, UNSURE_BELOW, save)


def _base64_text(value: str) -> str:
    """Return the base64 in a tool's argument: without whitespace or a `data:` URL's head."""
    if value.startswith("data:"):
        head, comma, rest = value.partition(",")
        if not comma or not head.endswith(";base64"):
            raise ApiError(422, NOT_BASE64)
        value = rest
    return "".join(value.split())


def _caller(ctx: Context) -> Caller:
    """Return who the call acts as: the endpoint identified them before the SDK got the call."""
    request = ctx.request_context.request
    if not isinstance(request, Request) or CALLER not in request.scope:
        raise RuntimeError("An MCP call reached a tool without passing the endpoint's checks.")
    return request.scope[CALLER]


@contextlib.asynccontextmanager
async def _as_tool_error(ctx: Context) -> AsyncIterator[None]:
    """Turn any failure into a tool error of one sentence, as the REST API would say it."""
    try:
        yield
    except Exception as exc:
        refused = endpoints.refusal(exc, ctx.request_context.request)
        raise ToolError(refused.message) from None


# --- The endpoint ---------------------------------------------------------------------


def body_limit() -> int:
    """Return the largest call the endpoint reads: a picture at the size limit, in base64."""
    return 4 * math.ceil(get_settings().max_bytes / 3) + ENVELOPE


class Endpoint:
    """The ASGI app at /api/mcp: the REST API's checks, then the SDK's streamable HTTP.

    Who calls is settled here, once per HTTP request, and kept in the request's scope,
    which the SDK hands the tools as `ctx.request_context.request`.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            # MCP clients are programs and send no Origin; a browser sends one with every
            # POST. Refusing web pages (bar origins listed in server.corsAllowedOrigins, as
            # Streamlit's own agent API does) is what stops DNS rebinding: a page whose
            # name was pointed at this server sends its own name as Host, but also its own
            # Origin. The Host is not checked (the SDK's check is off, in `running`): the
            # app is reached under names not known in advance, 127.0.0.1:<any port> or a
            # deployment's own, as the rest of the API is.
            if "origin" in request.headers and request.headers["origin"] not in st.get_option(
                "server.corsAllowedOrigins"
            ):
                raise ApiError(403, FROM_A_PAGE)
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > body_limit():
                raise ApiError(
                    413,
                    f"This request is larger than {images.size_text(body_limit())}; send "
                    f"one picture of at most {images.size_text(get_settings().max_bytes)} "
                    "in base64.",
                )
            scope[CALLER] = await run_in_threadpool(identify, request)  # a database query
        except Exception as exc:
            await _rpc_error(endpoints.refusal(exc, request))(scope, receive, send)
            return
        if _manager is None:
            error = ApiError(503, "The MCP endpoint is starting or stopping; try again.")
            await _rpc_error(error)(scope, receive, send)
            return
        await _manager.handle_request(scope, receive, send)


def _rpc_error(error: ApiError) -> JSONResponse:
    """Answer a refused request with its status and a JSON-RPC error holding the sentence
    (what an MCP client shows; a plain `{"error": ...}` would reach it as "an error")."""
    code = INVALID_REQUEST if error.status < 500 else INTERNAL_ERROR
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": error.message}}
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, error.status, headers=headers)


def routes() -> list[BaseRoute]:
    """Return the endpoint's routes: /api/mcp, with or without a trailing slash."""
    endpoint = Endpoint()
    return [Route(path, endpoint, methods=["POST"]) for path in (PATH, f"{PATH}/")]


_manager: StreamableHTTPSessionManager | None = None


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[None]:
    """Serve MCP calls for as long as the server runs (each run with a manager of its own:
    the SDK runs one only once)."""
    global _manager
    server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        max_request_body_size=body_limit(),
        # Off: it would allow only the Host names listed here, and the names a deployment
        # is reached by are not known in advance. `Endpoint` checks the Origin instead.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager
    async with manager.run():
        _manager = manager
        try:
            yield
        finally:
            _manager = None
