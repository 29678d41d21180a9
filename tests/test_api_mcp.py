"""The MCP endpoint against the real app, called with the `mcp` SDK's own client.

`streamlit run` on a free port (one server with a shared history and a queue of one, one
with a private history and sign-in configured); each test connects to /api/mcp as an MCP
client would (streamable HTTP, ClientSession) and reads what the tools answer.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.from_thread
import httpx
import numpy as np
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from benchmarks import server as server_tools
from classifier import history
from classifier.history import owners, tokens
from tests.test_api import same_answer  # the answer is the library's

pytestmark = pytest.mark.server
MCP = "/api/mcp"
MAX_BYTES = 1024 * 1024  # the servers' size limit here
ALICE, BOB = "https://issuer.test alice", "https://issuer.test bob"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


class Session:
    """A ClientSession on the app's MCP endpoint, for tests that are not async."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, session: ClientSession):
        self.portal = portal
        self.session = session

    def tools(self) -> dict:
        listed = self.portal.call(self.session.list_tools)
        return {tool.name: tool for tool in listed.tools}

    def call(self, tool: str, **arguments) -> CallToolResult:
        return self.portal.call(self.session.call_tool, tool, arguments)


@contextlib.asynccontextmanager
async def connected(
    url: str, token: str | None = None, *, modern: bool = False, path: str = MCP
) -> AsyncIterator[ClientSession]:
    """Connect to the server's MCP endpoint as an MCP client does."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url + path, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        # The handshake (initialize), or the 2026 protocol's server/discover.
        await (session.discover() if modern else session.initialize())
        yield session


@contextlib.contextmanager
def connect(url: str, token: str | None = None, **options) -> Iterator[Session]:
    """`connected`, for tests that are not async."""
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(connected(url, token, **options)) as session,
    ):
        yield Session(portal, session)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sentence(result: CallToolResult) -> str:
    """Return a tool error's text, without the SDK's "Error executing tool <name>: "."""
    assert result.is_error
    (content,) = result.content
    assert "Traceback" not in content.text and "\n" not in content.text
    return re.sub(r"^Error executing tool \w+: ", "", content.text)


def innermost(error: BaseException, kind: type[BaseException]) -> BaseException:
    """Return the one exception inside the exception groups of the SDK's task groups."""
    while isinstance(error, BaseExceptionGroup):
        (error,) = error.exceptions
    assert isinstance(error, kind)
    return error


# --- A shared history ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory, lite0):
    """The app with a shared history, a 1 MB size limit, and room for one call at a time."""
    folder = tmp_path_factory.mktemp("mcp-shared")
    env = {
        "CLASSIFIER_HISTORY_MODE": "shared",
        "CLASSIFIER_MAX_BYTES": str(MAX_BYTES),
        "CLASSIFIER_API_CONCURRENCY": "1",
        "CLASSIFIER_API_QUEUE": "1",
    }
    with server_tools.serve(folder, **env) as running:
        yield running


def test_both_tools_are_listed_and_neither_takes_a_url(shared):
    with connect(shared.url) as mcp:
        tools = mcp.tools()

    assert set(tools) == {"classify_image", "list_models"}
    schema = tools["classify_image"].input_schema
    assert set(schema["properties"]) == {"image_base64", "model", "top_k", "save", "file_name"}
    assert schema["required"] == ["image_base64"]
    assert schema["properties"]["top_k"]["maximum"] == 10_000
    assert tools["classify_image"].output_schema["required"] == [
        "file", "model", "top_k", "unsure", "inference_ms", "width", "height"]  # fmt: skip


@pytest.mark.parametrize("modern", [False, True], ids=["initialize", "discover"])
def test_list_models_answers_what_the_rest_api_lists(shared, modern):
    with connect(shared.url, modern=modern) as mcp:
        result = mcp.call("list_models")

    assert not result.is_error
    listed = result.structured_content
    assert listed == httpx.get(f"{shared.url}/api/v1/models").json()
    assert listed["default"] == "efficientnet_lite0"
    lite0 = next(m for m in listed["models"] if m["name"] == "efficientnet_lite0")
    assert lite0["available"] is True
    assert json.loads(result.content[0].text) == listed


def test_classify_image_answers_as_the_library_and_the_rest_api_do(shared, photo_files):
    with connect(shared.url) as mcp:
        answers = {
            name: mcp.call("classify_image", image_base64=b64(path.read_bytes()), top_k=3)
            for name, path in photo_files.items()
        }
        as_data_url = mcp.call(
            "classify_image",
            image_base64="data:image/png;base64," + b64(photo_files["chelsea"].read_bytes()),
            top_k=3,
        )

    for name, path in photo_files.items():
        result = answers[name]
        assert not result.is_error
        answer = result.structured_content
        same_answer(answer, path, top_k=3)
        assert json.loads(result.content[0].text) == answer
        with path.open("rb") as file:
            rest = httpx.post(
                f"{shared.url}/api/v1/predict", files={"file": file}, data={"top_k": "3"}
            ).json()["predictions"][0]
        assert answer["top_k"] == rest["top_k"]  # the same numbers, rounded alike
        assert set(answer) == set(rest)
        assert answer["file"] == "picture" and "id" not in answer  # not saved unless asked
    assert as_data_url.structured_content["top_k"] == answers["chelsea"].structured_content["top_k"]


def test_a_saved_prediction_is_an_ordinary_history_row(shared, photo_files):
    data = photo_files["coffee"].read_bytes()
    with connect(shared.url) as mcp:
        result = mcp.call(
            "classify_image", image_base64=b64(data), save=True, top_k=2, file_name="cup.jpg"
        )

    answer = result.structured_content
    saved = httpx.get(f"{shared.url}/api/v1/predictions/{answer['id']}").json()
    assert (saved["file"], saved["source"]) == ("cup.jpg", "api")
    assert saved["top_k"] == answer["top_k"]


def big_noise(size: int) -> bytes:
    return np.random.default_rng(0).bytes(size)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"image_base64": "not base64!"}, "The image is not valid base64: send the picture"),
        ({"image_base64": "data:text/plain,hello"}, "The image is not valid base64"),
        ("just over", r"picture: This file is 1.1 MB; the limit is 1 MB\.$"),
        ("just over, and not base64", r"picture: This file is 1.1 MB; the limit is 1 MB\.$"),
        ({"image_base64": b64(b"some text"), "file_name": "a.txt"},
         "a.txt: This file is not a picture we can read"),
        ({"image_base64": b64(b"")}, "picture: The file is empty."),
        ("photo", "There is no model called “no_such_model”"),
        ({"image_base64": "", "top_k": 0}, "Expected top_k to be a whole number from 1 to 10,000."),
    ],
)  # fmt: skip
def test_each_bad_input_is_a_tool_error_of_one_sentence(shared, photo_files, arguments, expected):
    if arguments == "just over":
        arguments = {"image_base64": b64(big_noise(MAX_BYTES + 1))}
    elif arguments == "just over, and not base64":  # told by its length, before decoding
        arguments = {"image_base64": "%" * len(b64(big_noise(MAX_BYTES + 1)))}
    elif arguments == "photo":
        arguments = {"image_base64": b64(photo_files["chelsea"].read_bytes()),
                     "model": "no_such_model"}  # fmt: skip
    with connect(shared.url) as mcp:
        result = mcp.call("classify_image", **arguments)

    assert re.match(expected, sentence(result))


def test_a_call_far_past_the_size_limit_is_refused_before_it_is_read(shared):
    with connect(shared.url) as mcp, pytest.raises(MCPError) as refused:
        mcp.call("classify_image", image_base64=b64(big_noise(2 * MAX_BYTES)))
    assert re.fullmatch(
        r"This request is larger than [\d.]+ MB; send one picture of at most 1 MB in base64\.",
        str(refused.value),
    )

    # Answered from the Content-Length alone, while the body has not been sent.
    port = int(shared.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            b"POST /api/mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 999999999\r\n\r\n{"
        )
        answer = b""
        while b'"}}' not in answer and (chunk := sock.recv(4096)):  # to the body's end
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'"message":"This request is larger than' in answer


def test_a_web_page_is_refused_but_any_host_name_is_served(shared):
    headers = {"Accept": "application/json, text/event-stream"}
    from_a_page = httpx.post(
        shared.url + MCP, json=INITIALIZE, headers={**headers, "Origin": "http://evil.example"}
    )
    assert from_a_page.status_code == 403
    assert from_a_page.json()["error"]["message"].startswith("This request came from a web page")

    for host in ("127.0.0.1:1", "classifier.example.org", "localhost"):
        answer = httpx.post(shared.url + MCP, json=INITIALIZE, headers={**headers, "Host": host})
        assert answer.status_code == 200, host
        assert answer.json()["result"]["serverInfo"]["name"] == "image-classifier"


def test_only_post_is_answered(shared):
    response = httpx.get(shared.url + MCP)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    with connect(shared.url, path=f"{MCP}/") as mcp:
        assert "list_models" in mcp.tools()  # /api/mcp/ answers too


def test_a_burst_beyond_the_queue_is_told_to_try_again(shared, photo_files):
    data = b64(photo_files["chelsea"].read_bytes())
    callers = 12
    results: list[CallToolResult] = []

    async def burst() -> None:
        connected_now, go = anyio.Semaphore(0), anyio.Event()

        async def one() -> None:
            async with connected(shared.url) as session:
                connected_now.release()
                await go.wait()  # all at once, once all are connected
                arguments = {"image_base64": data, "top_k": 1000}
                results.append(await session.call_tool("classify_image", arguments))

        async with anyio.create_task_group() as group:
            for _ in range(callers):
                group.start_soon(one)
            for _ in range(callers):
                await connected_now.acquire()
            go.set()

    with anyio.from_thread.start_blocking_portal() as portal:
        portal.call(burst)
    refused = [result for result in results if result.is_error]
    assert len(results) == callers and 0 < len(refused) < callers
    assert {sentence(result) for result in refused} == {
        "The server is busy classifying other requests; try again in a moment."}  # fmt: skip


def test_the_app_logging_is_left_as_it_was(shared):
    with connect(shared.url) as mcp:
        mcp.call("list_models")
    log = shared.log.read_text()
    # The SDK's INFO lines ("StreamableHTTP session manager started", ...) stay off.
    assert "StreamableHTTP" not in log and "Terminating session" not in log


# --- A private history: a token is needed ----------------------------------------------------


@pytest.fixture(scope="module")
def private(tmp_path_factory, lite0):
    """The app with sign-in configured, a private history, and tokens for two people."""
    from tests.oidc_issuer import Issuer, auth_secrets

    folder = tmp_path_factory.mktemp("mcp-private")
    with Issuer() as issuer:
        secrets = folder / "secrets.toml"
        secrets.write_text(auth_secrets(issuer))
        env = {"CLASSIFIER_HISTORY_MODE": "private", "STREAMLIT_SECRETS_FILES": str(secrets)}
        with server_tools.serve(folder, **env) as running:
            store = history.HistoryStore(f"sqlite:///{folder / 'history.db'}")
            made = {
                owner: tokens.create(store.scoped(owners.Scope.own(owner)), "mcp")[1]
                for owner in (ALICE, BOB)
            }
            yield running.url, made
            store.dispose()


@pytest.mark.parametrize("token", [None, "cls_" + "x" * 43], ids=["none", "unknown"])
def test_a_private_history_needs_a_valid_token(private, token):
    url, _ = private
    with pytest.raises(BaseExceptionGroup) as caught, connect(url, token):
        pass
    said = str(innermost(caught.value, MCPError))

    headers = {"Accept": "application/json, text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    answer = httpx.post(url + MCP, json=INITIALIZE, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    message = answer.json()["error"]["message"]
    assert message == said  # what the SDK's client raises
    if token is None:
        assert "send an API token as “Authorization: Bearer <token>”" in message
    else:
        assert message == "This API token is not valid: it is mistyped, or it was revoked."


def test_a_token_classifies_and_saves_as_its_owner(private, photo_files):
    url, made = private
    with connect(url, made[ALICE]) as mcp:
        assert "efficientnet_lite0" in [
            m["name"] for m in mcp.call("list_models").structured_content["models"]
        ]
        result = mcp.call(
            "classify_image", image_base64=b64(photo_files["chelsea"].read_bytes()), save=True
        )
    assert not result.is_error
    same_answer(result.structured_content, photo_files["chelsea"])
    public_id = result.structured_content["id"]

    def get(owner: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {made[owner]}"}
        return httpx.get(f"{url}/api/v1/predictions/{public_id}", headers=headers)

    assert get(ALICE).status_code == 200
    assert get(BOB).status_code == 404  # Alice's row, not Bob's
