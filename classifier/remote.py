"""The command line against a deployment: `--server URL` (or CLASSIFIER_SERVER) sends
`predict`, `models` and `history export` to the app's HTTP API, with the API token from
`--token` or CLASSIFIER_TOKEN, and prints what they print on this computer.

httpx is imported only when a command calls a server.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from classifier import models
from classifier.terminal import STDIN, answer_text, find_pictures, write_export

if TYPE_CHECKING:
    import httpx

REMOTE_BATCH = 16  # pictures per request: the most the API takes in one
REMOTE_TIMEOUT = 300.0  # seconds to wait for an answer: a model's first load takes a while
CONNECT_TIMEOUT = 15.0  # seconds to wait for a connection
BUSY_RETRIES = 4  # answers "busy" (503 with Retry-After) waited out before giving up
MAX_BUSY_WAIT = 30  # seconds waited at most before asking again
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, as a header value must be


class Usage(Exception):
    """Options that do not go together; said in one sentence, exit status 2."""


class _Failed(Exception):
    """A deployment that cannot be reached, or that refused a call; said in one sentence."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass(frozen=True)
class Deployment:
    """The app a command calls over HTTP, and the API token it sends (if any)."""

    url: str  # scheme, host, port and any path; no trailing slash
    token: str | None = dataclasses.field(repr=False)  # never shown

    @property
    def shown(self) -> str:
        """The address as messages say it: without a user name or password in it."""
        parts = urlsplit(self.url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _command(args: argparse.Namespace) -> str:
    """Name the command as typed: `history clear`, `models remove`, `teach`."""
    action = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {action}" if action else args.command


def deployment(args: argparse.Namespace) -> Deployment | None:
    """Return the deployment this command calls (--server, else CLASSIFIER_SERVER), or None
    to work on this computer; check the options that depend on which.

    Raises:
        Usage: options that do not go together, or an address or token that cannot be one.
    """
    typed_server, typed_token = getattr(args, "server", None), getattr(args, "token", None)
    can_call = (
        args.command == "predict"
        or (args.command == "models" and args.models_command in (None, "list"))
        or (args.command == "history" and args.history_command == "export")
    )
    if not can_call:
        if typed_server is not None or typed_token is not None:
            raise Usage(
                f"--server and --token go with predict, models list and history export; "
                f"`{_command(args)}` acts on this computer"
            )
        if os.environ.get("CLASSIFIER_SERVER", "").strip():  # meant for a deployment?
            raise Usage(
                f"CLASSIFIER_SERVER is set, but `{_command(args)}` acts only on this "
                "computer; unset CLASSIFIER_SERVER to run it here"
            )
        return None
    url = typed_server if typed_server is not None else os.environ.get("CLASSIFIER_SERVER", "")
    url = url.strip()
    if not url:
        if typed_token is not None:
            raise Usage("--token goes with --server URL (or CLASSIFIER_SERVER)")
        if args.command == "history" and args.owner is None and not args.all:
            args.usage_error("one of the arguments --owner --all is required")  # exits 2
        return None
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # such as an unclosed [ or a port out of range
        parts, port_ok = urlsplit(""), False
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        raise Usage(
            "expected the server as an address such as https://YOUR-APP.streamlit.app "
            f"(http:// or https://, a host and any port); received {url!r}"
        )
    if args.command == "predict" and args.explain is not None:
        raise Usage(
            "--explain draws its maps on this computer, so it does not go with a server "
            "(--server or CLASSIFIER_SERVER)"
        )
    if args.command == "history" and (args.owner is not None or args.all):
        raise Usage(
            "with a server, the API token decides whose predictions are exported: "
            "leave out --owner and --all"
        )
    token = typed_token if typed_token is not None else os.environ.get("CLASSIFIER_TOKEN", "")
    token = token.strip()
    if token and not _TOKEN.fullmatch(token):
        raise Usage(
            "the API token (--token or CLASSIFIER_TOKEN) holds spaces or characters no token "
            "has; copy it again from the app's API page"
        )
    path = parts.path.rstrip("/").removesuffix("/api/v1")  # the app's address, not the API's
    return Deployment(urlunsplit((parts.scheme, parts.netloc, path, "", "")), token or None)


class _Api:
    """Calls to a deployment's API (httpx, imported here: a local command never loads it)."""

    def __init__(self, deployment: Deployment) -> None:
        try:
            import httpx
        except ImportError:
            raise _Failed("--server needs the httpx package: pip install httpx") from None
        self.httpx = httpx
        self.deployment = deployment
        headers = {"Authorization": f"Bearer {deployment.token}"} if deployment.token else {}
        try:
            self.client = httpx.Client(
                base_url=deployment.url + "/",
                headers=headers,
                timeout=httpx.Timeout(REMOTE_TIMEOUT, connect=CONNECT_TIMEOUT),
            )
        except httpx.InvalidURL as exc:
            raise Usage(f"{deployment.shown!r} is not a server's address ({exc})") from None

    def __enter__(self) -> _Api:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.close()

    def call(self, method: str, path: str, **request) -> httpx.Response:
        """Return the deployment's 200 answer, once any "busy" answers are waited out.

        Raises:
            _Failed: it cannot be reached, or it answered another status (`status` set).
        """
        httpx = self.httpx
        shown = self.deployment.shown
        for attempt in range(BUSY_RETRIES + 1):
            try:
                response = self.client.request(method, path, **request)
            except httpx.ConnectTimeout:
                raise _Failed(
                    f"cannot reach {shown} (no connection within {CONNECT_TIMEOUT:.0f} s)"
                ) from None
            except httpx.ReadTimeout:
                raise _Failed(
                    f"cannot reach {shown} (no answer within {REMOTE_TIMEOUT:.0f} s)"
                ) from None
            except httpx.HTTPError as exc:
                raise _Failed(f"cannot reach {shown} ({_reason(exc)})") from None
            except (httpx.InvalidURL, UnicodeError):  # a host name that cannot be one
                raise _Failed(f"cannot reach {shown} (not a host name)") from None
            if response.status_code == 200:
                return response
            wait = _retry_after(response)
            if response.status_code == 503 and wait is not None and attempt < BUSY_RETRIES:
                print(f"note: {shown} is busy; asking again in {wait} s", file=sys.stderr)
                time.sleep(wait)
                continue
            raise _Failed(self.sentence(response), response.status_code)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def sentence(self, response: httpx.Response) -> str:
        """Return the API's one-sentence error, or say that something else answered."""
        try:
            said = response.json().get("error")
        except (ValueError, AttributeError):
            said = None
        if isinstance(said, str) and said.strip():
            return said.strip()
        return (
            f"{self.deployment.shown} answered {response.status_code} "
            f"{response.reason_phrase}, not as this app's API does (is it the app's address, "
            "and is the app awake?)"
        )

    def unexpected(self) -> _Failed:
        return _Failed(
            f"{self.deployment.shown} did not answer as this app's API does "
            "(is it the app's address?)"
        )

    def json(self, response: httpx.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            raise self.unexpected() from None
        if not isinstance(body, dict):
            raise self.unexpected()
        return body

    def predict(self, sent: list[tuple[str, BinaryIO]], fields: dict[str, str]) -> list[dict]:
        """Classify pictures (name, open file) in one request; return an answer for each,
        in order: the API's, or {file, error, status} for a picture it refused."""
        parts = [("file", (name, handle)) for name, handle in sent]
        try:
            response = self.call("POST", "api/v1/predict", files=parts, data=fields)
        except _Failed as exc:
            if exc.status == 413 and len(sent) > 1:  # together over its limit: one at a time
                return [answer for one in sent for answer in self.predict([one], fields)]
            if exc.status in (413, 415, 422) and len(sent) == 1:  # a lone picture refused
                name = sent[0][0]
                message = exc.message.removeprefix(f"{name}: ")
                return [{"file": name, "error": message, "status": exc.status}]
            raise
        answers = self.json(response).get("predictions")
        if not isinstance(answers, list) or len(answers) != len(sent):
            raise self.unexpected()
        for answer in answers:
            if not _well_formed(answer):
                raise self.unexpected()
        return answers


def _well_formed(answer: object) -> bool:
    """Tell whether one picture's answer has what is printed of it."""
    if not isinstance(answer, dict):
        return False
    if "error" in answer:
        return isinstance(answer["error"], str)
    ranked = answer.get("top_k")
    return (
        isinstance(answer.get("model"), str)
        and isinstance(answer.get("inference_ms"), int | float)
        and isinstance(ranked, list)
        and all(
            isinstance(c, dict)
            and isinstance(c.get("label"), str)
            and isinstance(c.get("probability"), int | float)
            for c in ranked
        )
    )


def _reason(exc: Exception) -> str:
    """Say why a connection failed, without the errno's number."""
    text = re.sub(r"^\[Errno -?\d+\] ", "", str(exc).strip())
    return text or type(exc).__name__


def _retry_after(response: httpx.Response) -> int | None:
    """Return the seconds a busy server asks to wait (at most MAX_BUSY_WAIT), or None."""
    value = response.headers.get("retry-after", "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    return max(1, min(int(value), MAX_BUSY_WAIT))


def _said(failure: _Failed, deployment: Deployment) -> int:
    """Print a failed call on stderr (and how to send a token, for a 401); return 1."""
    message = failure.message
    if deployment.token:  # whatever a message holds, never the token itself
        message = message.replace(deployment.token, "cls_...")
    print(f"error: {message}", file=sys.stderr)
    if failure.status == 401:
        if deployment.token:
            hint = "the token from --token or CLASSIFIER_TOKEN was refused; make a new one"
        else:
            hint = "set CLASSIFIER_TOKEN to an API token (cls_...), made"
        print(f"hint: {hint} on the app's API page", file=sys.stderr)
    return 1


def _upload_name(file: Path) -> str:
    """The name a picture is sent (and saved) under: as a local --save names it."""
    return "standard input" if file == STDIN else file.name


def _classify_remotely(
    api: _Api, batch: list[Path], fields: dict[str, str]
) -> list[tuple[Path, dict]]:
    """Send a batch of pictures in one request; return each file with its answer, in order
    (a file that cannot be read here answered {file, error})."""
    opened: list[tuple[Path, BinaryIO]] = []
    unread: dict[int, dict] = {}
    try:
        for position, file in enumerate(batch):
            try:
                handle = io.BytesIO(sys.stdin.buffer.read()) if file == STDIN else file.open("rb")
            except OSError as exc:
                error = f"cannot read the file ({exc.strerror or exc})"
                unread[position] = {"file": str(file), "error": error}
                continue
            opened.append((file, handle))
        sent = [(_upload_name(file), handle) for file, handle in opened]
        answers = iter(api.predict(sent, fields) if sent else [])
        return [(file, unread.get(n) or next(answers)) for n, file in enumerate(batch)]
    finally:
        for _, handle in opened:
            handle.close()


def run_predict(args: argparse.Namespace, deployment: Deployment) -> int:
    """Classify the pictures on a deployment, a batch per request; print the answers as a
    local `predict` does."""
    pictures, failed = find_pictures(args.files, args.recursive)
    fields = {"top_k": str(args.top_k)}
    if args.model:
        fields["model"] = args.model
    if args.save:
        fields["save"] = "true"
    entries: list[dict] = []
    notices: set[str] = set()
    saved, status = 0, 0
    try:
        with _Api(deployment) as api:
            for start in range(0, len(pictures), REMOTE_BATCH):
                batch = pictures[start : start + REMOTE_BATCH]
                for file, answer in _classify_remotely(api, batch, fields):
                    entry = {**answer, "file": str(file)}  # the path as typed, as here
                    if "error" in answer:
                        failed += 1
                        print(f"{file}: {answer['error']}", file=sys.stderr)
                    else:
                        saved += "id" in answer
                        notice = answer.get("notice")
                        if isinstance(notice, str) and notice not in notices:
                            notices.add(notice)
                            print(f"note: {notice}", file=sys.stderr)
                    if args.json:
                        entries.append(entry)
                    elif "error" not in answer:
                        print(_remote_text(entry), end="\n\n", flush=True)
    except _Failed as exc:
        status = _said(exc, deployment)
    finally:  # also on Ctrl-C: what the server saved is said
        if saved:
            print(
                f"saved {saved} prediction(s) to the history at {deployment.shown}",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(entries, indent=2))
    return status or (1 if failed else 0)


def _remote_text(entry: dict) -> str:
    ranked = [(float(c["probability"]), c["label"]) for c in entry["top_k"]]
    title = models.title_of(entry["model"])
    return answer_text(entry["file"], title, float(entry["inference_ms"]), ranked)


def run_models(deployment: Deployment) -> int:
    """Print the models a deployment offers this token: built-in, then the person's own."""
    try:
        with _Api(deployment) as api:
            body = api.json(api.call("GET", "api/v1/models"))
            try:
                lines = _model_lines(body)
            except (KeyError, TypeError, ValueError, AttributeError):
                raise api.unexpected() from None
    except _Failed as exc:
        return _said(exc, deployment)
    print("\n".join(lines))
    return 0


def _model_lines(body: dict) -> list[str]:
    lines = []
    for model in body["models"]:
        name, title = str(model["name"]), str(model["title"])
        heading = name if title == name else f"{name}  {title}"
        size = int(model["input_size"])
        lines += [
            heading + ("  (default)" if name == body.get("default") else ""),
            f"  kind       {model['kind']}",
            f"  classes    {int(model['classes']):,}",
            f"  input      {size}x{size}",
            f"  available  {'yes' if model['available'] else 'no'}",
        ]
    return lines


def run_export(args: argparse.Namespace, deployment: Deployment) -> int:
    """Write the predictions a deployment keeps for this token, as CSV or JSON."""
    expected = "text/csv" if args.format == "csv" else "application/json"
    try:
        with _Api(deployment) as api:
            response = api.call("GET", "api/v1/predictions/export", params={"format": args.format})
            if not response.headers.get("content-type", "").startswith(expected):
                raise api.unexpected()
            data = response.content
    except _Failed as exc:
        return _said(exc, deployment)
    return write_export(data, args.output)
