"""The command line against a deployment: `predict`, `models` and `history export` with
--server, calling the real app (`streamlit run` on a free port) over its HTTP API.

Each command runs as a person types it, `python -m classifier ...` in its own process, with
CLASSIFIER_SERVER and CLASSIFIER_TOKEN only where a test sets them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from benchmarks import server as server_tools
from tests.conftest import ROOT
from tests.helpers import CAT_CLASSES

pytestmark = pytest.mark.server
LITE0 = "efficientnet_lite0"
ALICE, BOB = "https://issuer alice", "https://issuer bob"


def cli(*args: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess:
    """Run `python -m classifier ARGS` as tests/helpers.py's `cli` does, with these
    environment variables; a CLASSIFIER_SERVER or CLASSIFIER_TOKEN of the person running the
    tests never leaks in."""
    environ = {k: v for k, v in os.environ.items() if k not in ("CLASSIFIER_SERVER",
                                                                "CLASSIFIER_TOKEN")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "classifier", *args],
        input=stdin, capture_output=True, cwd=ROOT, env={**environ, **env}, timeout=600,
        check=False,
    )  # fmt: skip
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stderr
    assert "Traceback" not in done.stdout


@pytest.fixture(scope="module")
def shared(tmp_path_factory, lite0) -> str:
    """The app with a shared history; its address."""
    folder = tmp_path_factory.mktemp("shared")
    with server_tools.serve(folder, CLASSIFIER_HISTORY_MODE="shared") as running:
        yield running.url


@pytest.fixture
def untouched(tmp_path) -> dict[str, str]:
    """A local history database of the test's own, to show a remote command never opens it."""
    return {"CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 'local' / 'history.db'}"}


def labels_and_probabilities(entries: list[dict]) -> list[list[tuple[str, int]]]:
    return [[(c["label"], c["index"]) for c in entry["top_k"]] for entry in entries]


def test_remote_predict_prints_what_the_local_one_prints(shared, photo_files, untouched):
    photos = [str(photo_files["chelsea"]), str(photo_files["coffee"])]
    local = cli("predict", "--model", LITE0, "--json", "--top-k", "3", *photos)
    remote = cli("predict", "--server", shared, "--model", LITE0, "--json", "--top-k", "3",
                 *photos, **untouched)  # fmt: skip

    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    here, there = json.loads(local.stdout), json.loads(remote.stdout)
    assert [e["file"] for e in there] == [e["file"] for e in here] == photos
    assert [e["model"] for e in there] == [LITE0, LITE0]
    assert labels_and_probabilities(there) == labels_and_probabilities(here)
    for mine, theirs in zip(here, there, strict=True):
        assert [c["probability"] for c in theirs["top_k"]] == pytest.approx(
            [c["probability"] for c in mine["top_k"]], abs=1e-5
        )
        assert set(mine) <= set(theirs)  # the local keys, and what the API adds
        assert {"unsure", "inference_ms", "width", "height"} <= set(theirs)
    assert {c["label"] for c in there[0]["top_k"]} & CAT_CLASSES
    assert there[1]["top_k"][0]["label"] == "espresso"
    assert (there[1]["width"], there[1]["height"]) == (600, 400)
    assert not (Path(untouched["CLASSIFIER_DATABASE_URL"][10:])).parent.exists()

    local_text = cli("predict", "--model", LITE0, "--top-k", "3", *photos)
    remote_text = cli("predict", "--model", LITE0, "--top-k", "3", *photos,
                      CLASSIFIER_SERVER=shared)  # fmt: skip
    assert remote_text.returncode == 0, remote_text.stderr

    def timeless(text: str) -> str:
        return re.sub(r"\d+\.\d ms inference", "X ms inference", text)

    assert timeless(remote_text.stdout) == timeless(local_text.stdout)
    assert remote_text.stdout.startswith(f"{photos[0]}  (EfficientNet-Lite0, ")


def test_folders_stdin_and_more_pictures_than_one_request_takes(shared, photo_files, tmp_path):
    """19 pictures go in two requests (the API takes 16 at most); answers keep their order."""
    folder = tmp_path / "photos"
    (folder / "deeper").mkdir(parents=True)
    for number in range(9):
        (folder / f"{number:02}-coffee.jpg").write_bytes(photo_files["coffee"].read_bytes())
        (folder / "deeper" / f"{number:02}-cat.png").write_bytes(
            photo_files["chelsea"].read_bytes()
        )
    (folder / "05-notes.jpg").write_bytes(b"just some words, not a picture\n")
    missing = tmp_path / "missing.jpg"

    done = cli("predict", "--server", shared, "--json", "--top-k", "1", "-r", str(folder),
               str(missing), "-", stdin=photo_files["coffee"].read_bytes())  # fmt: skip

    assert done.returncode == 1  # two of them failed
    no_traceback(done)
    entries = json.loads(done.stdout)
    expected = sorted(p for p in folder.rglob("*") if p.is_file())
    assert [e["file"] for e in entries] == [*map(str, expected), str(missing), "-"]
    by_file = {e["file"]: e for e in entries}
    notes = by_file[str(folder / "05-notes.jpg")]
    assert notes["status"] == 415
    assert notes["error"].startswith("This file is not a picture we can read")
    assert by_file[str(missing)] == {
        "file": str(missing),
        "error": "cannot read the file (No such file or directory)",
    }
    for entry in entries:
        name = Path(entry["file"]).name
        if name.endswith("-coffee.jpg") or name == "-":
            assert entry["top_k"][0]["label"] == "espresso"
        elif name.endswith("-cat.png"):
            assert entry["top_k"][0]["label"] in CAT_CLASSES
    assert sum("top_k" in entry for entry in entries) == 19
    said = done.stderr.splitlines()
    assert f"{folder / '05-notes.jpg'}: This file is not a picture we can read" in done.stderr
    assert f"{missing}: cannot read the file (No such file or directory)" in said


def test_one_picture_the_server_refuses_is_a_line_like_a_local_one(shared, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"just some words, not a picture\n")

    local = cli("predict", "--model", LITE0, str(bad))
    remote = cli("predict", "--server", shared, str(bad))

    assert remote.returncode == local.returncode == 1
    no_traceback(remote)
    assert remote.stdout == local.stdout == ""
    assert remote.stderr == local.stderr
    assert remote.stderr.startswith(f"{bad}: This file is not a picture we can read")
    refused = json.loads(cli("predict", "--server", shared, "--json", str(bad)).stdout)
    assert [(e["file"], e["status"]) for e in refused] == [(str(bad), 415)]


def test_a_request_over_the_servers_limit_is_sent_again_a_picture_at_a_time(
    tmp_path, lite0, photo_files
):
    """Three 1 MB files and a photo, to a server taking 100 KB pictures (so 2.6 MB requests):
    the request is refused whole, then each picture gets its own answer."""
    coffee = photo_files["coffee"]
    padded = coffee.read_bytes() + b"\0" * 1_000_000
    big = [tmp_path / f"big-{number}.jpg" for number in range(3)]
    for path in big:
        path.write_bytes(padded)
    env = {"CLASSIFIER_HISTORY_MODE": "off", "CLASSIFIER_MAX_BYTES": "100000"}
    with server_tools.serve(tmp_path / "server", **env) as running:
        done = cli("predict", "--server", running.url, "--json", str(big[0]), str(coffee),
                   *map(str, big[1:]))  # fmt: skip

    assert done.returncode == 1
    no_traceback(done)
    first, photo, *rest = json.loads(done.stdout)
    assert photo["file"] == str(coffee)
    assert photo["top_k"][0]["label"] == "espresso"
    for entry, path in zip([first, *rest], big, strict=True):
        assert entry["file"] == str(path)
        assert entry["status"] == 413
        assert entry["error"].startswith("This file is 1.1 MB; the limit is")
    assert len(done.stderr.splitlines()) == 3


def export_rows(done: subprocess.CompletedProcess) -> list[dict[str, str]]:
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


def test_save_then_export_from_the_server(shared, photo_files, tmp_path, untouched):
    before = export_rows(cli("history", "export", "--server", shared))
    photos = [str(photo_files["chelsea"]), str(photo_files["coffee"])]

    saved = cli("predict", "--server", shared, "--save", "--json", *photos, **untouched)

    assert saved.returncode == 0, saved.stderr
    assert f"saved 2 prediction(s) to the history at {shared}" in saved.stderr
    ids = [entry["id"] for entry in json.loads(saved.stdout)]
    assert len(ids) == 2 and all(ids)
    assert not (Path(untouched["CLASSIFIER_DATABASE_URL"][10:])).parent.exists()

    after = export_rows(cli("history", "export", "--server", shared, **untouched))
    new = [row for row in after if row["id"] not in {r["id"] for r in before}]
    assert sorted((r["file_name"], r["model"], r["source"]) for r in new) == [
        ("chelsea.png", LITE0, "api"),
        ("coffee.jpg", LITE0, "api"),
    ]
    assert {r["top1_label"] for r in new if r["file_name"] == "coffee.jpg"} == {"espresso"}

    target = tmp_path / "mine.json"
    written = cli("history", "export", "--format", "json", "--output", str(target),
                  CLASSIFIER_SERVER=shared)  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert len(json.loads(target.read_text(encoding="utf-8"))) == len(after)


def test_export_from_a_server_takes_no_owner(shared):
    for whose in (["--all"], ["--owner", "alice@example.com"]):
        done = cli("history", "export", "--server", shared, *whose)
        assert done.returncode == 2
        assert done.stderr == (
            "error: with a server, the API token decides whose predictions are exported: "
            "leave out --owner and --all\n"
        )
    local = cli("history", "export")  # without a server, the rule stays
    assert local.returncode == 2
    assert "one of the arguments --owner --all is required" in local.stderr


def test_explain_stays_on_this_computer(shared, photo_files, tmp_path):
    done = cli("predict", "--explain", str(tmp_path / "maps"), str(photo_files["coffee"]),
               CLASSIFIER_SERVER=shared)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: --explain draws its maps on this computer")
    assert len(done.stderr.splitlines()) == 1
    assert not (tmp_path / "maps").exists()


def test_models_from_the_server(shared):
    for args in (["models"], ["models", "list"]):
        done = cli(*args, "--server", shared)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        at = lines.index(f"{LITE0}  EfficientNet-Lite0  (default)")
        assert lines[at + 1 : at + 5] == [
            "  kind       builtin",
            "  classes    1,000",
            "  input      224x224",
            "  available  yes",
        ]
        assert "mobilenet_v2  MobileNetV2" in lines
    by_variable = cli("models", CLASSIFIER_SERVER=shared)
    assert by_variable.stdout == done.stdout
    assert "engine" not in by_variable.stdout  # the server's list, not this computer's


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "PHOTO"],
        ["models"],
        ["history", "export", "--format", "json"],
    ],
)
def test_a_server_that_is_not_there_is_one_line(args, photo_files):
    url = f"http://127.0.0.1:{free_port()}"
    args = [str(photo_files["coffee"]) if a == "PHOTO" else a for a in args]

    done = cli(*args, "--server", url)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"error: cannot reach {url} (Connection refused)\n"


# --- A private history: a token from CLASSIFIER_TOKEN ------------------------------------


@pytest.fixture(scope="module")
def private(tmp_path_factory, lite0) -> Iterator[tuple[str, dict[str, str]]]:
    """The app with sign-in configured and a private history; tokens for Alice and Bob."""
    from classifier.history import HistoryStore, owners, tokens
    from tests.oidc_issuer import Issuer, auth_secrets

    folder = tmp_path_factory.mktemp("private")
    with Issuer() as issuer:
        secrets = folder / "secrets.toml"
        secrets.write_text(auth_secrets(issuer))
        env = {"CLASSIFIER_HISTORY_MODE": "private", "STREAMLIT_SECRETS_FILES": str(secrets)}
        with server_tools.serve(folder, **env) as running:
            store = HistoryStore(f"sqlite:///{folder / 'history.db'}")
            made = {
                owner: tokens.create(store.scoped(owners.Scope.own(owner)), "cli")[1]
                for owner in (ALICE, BOB)
            }
            store.dispose()
            yield running.url, made


def test_a_private_server_without_a_token_says_so(private, photo_files):
    url, _ = private
    for args in (["models"], ["predict", str(photo_files["coffee"])], ["history", "export"]):
        done = cli(*args, CLASSIFIER_SERVER=url)
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.splitlines() == [
            "error: This server keeps each person's history private: send an API token as "
            "“Authorization: Bearer <token>”. Sign in to the app and make one on its API page.",
            "hint: set CLASSIFIER_TOKEN to an API token (cls_...), made on the app's API page",
        ]


def test_a_token_in_the_environment_works_and_stays_unsaid(private, photo_files):
    url, made = private
    alice = {"CLASSIFIER_SERVER": url, "CLASSIFIER_TOKEN": made[ALICE]}
    bob = {"CLASSIFIER_SERVER": url, "CLASSIFIER_TOKEN": made[BOB]}

    saved = cli("predict", "--save", str(photo_files["coffee"]), **alice)
    listed = cli("models", **alice)
    mine = export_rows(cli("history", "export", **alice))
    theirs = export_rows(cli("history", "export", **bob))

    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.splitlines()[1].endswith("espresso")
    assert "saved 1 prediction(s)" in saved.stderr
    assert listed.returncode == 0 and f"{LITE0}  EfficientNet-Lite0  (default)" in listed.stdout
    assert [(r["file_name"], r["source"]) for r in mine] == [("coffee.jpg", "api")]
    assert theirs == []  # the token decides whose rows
    for done in (saved, listed):
        assert made[ALICE] not in done.stdout + done.stderr

    typed = cli("models", "--server", url, "--token", made[BOB])
    assert typed.returncode == 0, typed.stderr


def test_a_wrong_token_is_refused_without_being_printed(private):
    url, made = private
    wrong = made[ALICE][:-4] + ("AAAA" if not made[ALICE].endswith("AAAA") else "BBBB")

    done = cli("models", CLASSIFIER_SERVER=url, CLASSIFIER_TOKEN=wrong)

    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: This API token is not valid: it is mistyped, or it was revoked.",
        "hint: the token from --token or CLASSIFIER_TOKEN was refused; make a new one on the "
        "app's API page",
    ]
    assert wrong not in done.stdout + done.stderr


# --- A busy server: 503 with Retry-After -------------------------------------------------


class Busy(BaseHTTPRequestHandler):
    """Answers 503 with Retry-After until `busy` requests were refused, then the API's
    model list; notes each request's Authorization header."""

    busy: ClassVar[int] = 0
    seen: ClassVar[list[str | None]] = []  # set anew per server below

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        if len(self.seen) <= self.busy:
            body = {"error": "The server is busy classifying other requests; try again."}
            self.answer(503, body, {"Retry-After": "1"})
            return
        model = {"name": LITE0, "title": "EfficientNet-Lite0", "kind": "builtin",
                 "classes": 1000, "input_size": 224, "available": True}  # fmt: skip
        self.answer(200, {"default": LITE0, "models": [model]})

    def answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def busy_server() -> Iterator[tuple[str, type[Busy]]]:
    handler = type("BusyHere", (Busy,), {"busy": 0, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_a_busy_server_is_asked_again_after_its_retry_after(busy_server):
    url, handler = busy_server
    handler.busy = 2

    done = cli("models", CLASSIFIER_SERVER=url, CLASSIFIER_TOKEN="cls_" + "x" * 43)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{LITE0}  EfficientNet-Lite0  (default)\n")
    assert handler.seen == ["Bearer cls_" + "x" * 43] * 3
    assert done.stderr.splitlines() == [f"note: {url} is busy; asking again in 1 s"] * 2


def test_a_server_busy_for_too_long_fails_with_its_sentence(busy_server):
    url, handler = busy_server
    handler.busy = 100

    done = cli("models", "--server", url)

    assert done.returncode == 1
    no_traceback(done)
    assert done.stderr.splitlines()[-1] == (
        "error: The server is busy classifying other requests; try again."
    )
    assert 2 <= len(handler.seen) < 10  # asked a few times, then gave up
    assert handler.seen[0] is None  # no token, no Authorization header


# --- What a plain local run keeps to ------------------------------------------------------


def test_a_local_predict_never_imports_httpx(lite0, photo_files):
    code = (
        "import sys\n"
        "from classifier import cli\n"
        f"status = cli.main(['predict', '--model', '{LITE0}', sys.argv[1]])\n"
        "print('httpx' in sys.modules, status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(photo_files["coffee"])],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "CLASSIFIER_SERVER"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False 0"


def test_a_request_holds_no_more_pictures_than_the_api_takes():
    from api import limits
    from classifier import remote

    assert remote.REMOTE_BATCH == limits.MAX_FILES
