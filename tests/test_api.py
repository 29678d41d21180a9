"""The HTTP API against the real app: `streamlit run` on a free port, called with httpx.

One server per history mode (shared, private, off) and one with a tiny queue; each test
calls it as a program would and reads what it answers.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from benchmarks import server as server_tools
from classifier import history
from classifier.history import owners, tokens
from classifier.predict import classify
from tests.helpers import encode

pytestmark = pytest.mark.server
API = "/api/v1"
MAX_BYTES = 3_000_000  # the servers' size limit here: a 4 MB file is over it


@pytest.fixture(scope="module")
def shared(tmp_path_factory, lite0):
    """The app with a shared history, as on a laptop."""
    folder = tmp_path_factory.mktemp("shared")
    env = {"CLASSIFIER_HISTORY_MODE": "shared", "CLASSIFIER_MAX_BYTES": str(MAX_BYTES)}
    with server_tools.serve(folder, **env) as running, client(running.url) as http:
        yield http


def client(url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, timeout=120, headers=headers)


def predict(http: httpx.Client, *files: Path | tuple[str, bytes], **fields) -> httpx.Response:
    parts = [
        ("file", (item.name, item.read_bytes()) if isinstance(item, Path) else item)
        for item in files
    ]
    return http.post(f"{API}/predict", files=parts, data={k: str(v) for k, v in fields.items()})


def same_answer(answer: dict, photo: Path, top_k: int = 5) -> None:
    """Assert the API's answer is the library's, for the same picture and model."""
    expected = classify(photo.read_bytes(), "efficientnet_lite0").top(top_k)
    assert answer["model"] == "efficientnet_lite0"
    assert [c["label"] for c in answer["top_k"]] == [c.label for c in expected]
    assert [c["index"] for c in answer["top_k"]] == [c.index for c in expected]
    np.testing.assert_allclose(
        [c["probability"] for c in answer["top_k"]],
        [c.probability for c in expected],
        atol=1e-5,
    )


def test_predict_answers_as_the_library_does(shared, photo_files):
    response = predict(shared, photo_files["chelsea"], model="efficientnet_lite0")

    assert response.status_code == 200
    (answer,) = response.json()["predictions"]
    same_answer(answer, photo_files["chelsea"])
    assert answer["file"] == "chelsea.png"
    assert answer["unsure"] is (answer["top_k"][0]["probability"] < 0.25)
    assert answer["inference_ms"] > 0
    assert "id" not in answer  # not saved unless asked


def test_several_pictures_answer_in_order_and_a_bad_one_does_not_spoil_the_rest(
    shared, photo_files
):
    response = predict(
        shared,
        photo_files["coffee"],
        ("notes.txt", b"just some text, not a picture"),
        photo_files["chelsea"],
        top_k=3,
    )

    assert response.status_code == 200
    coffee, notes, chelsea = response.json()["predictions"]
    same_answer(coffee, photo_files["coffee"], top_k=3)
    same_answer(chelsea, photo_files["chelsea"], top_k=3)
    assert notes["status"] == 415
    assert notes["file"] == "notes.txt"
    assert notes["error"].startswith("This file is not a picture we can read")


def test_a_saved_prediction_is_an_ordinary_history_row(shared, photo_files):
    response = predict(shared, photo_files["coffee"], save="true", top_k=2)
    (answer,) = response.json()["predictions"]
    public_id = answer["id"]

    saved = shared.get(f"{API}/predictions/{public_id}").json()
    assert saved["source"] == "api"
    assert saved["file"] == "coffee.jpg"
    assert saved["top_k"] == answer["top_k"]
    listed = shared.get(f"{API}/predictions", params={"label": saved["top_k"][0]["label"]})
    assert public_id in [row["id"] for row in listed.json()["predictions"]]
    exported = shared.get(f"{API}/predictions/export", params={"format": "csv"}).text
    assert exported.splitlines()[0].endswith(",source")
    assert any(line.startswith(tuple("0123456789")) and line.endswith(",api") for line in
               exported.splitlines())  # fmt: skip

    own_answer = shared.put(  # the model's own answer is no correction
        f"{API}/predictions/{public_id}/feedback",
        json={"feedback": "wrong", "corrected_label": f" {saved['top_k'][0]['label'].upper()}"},
    )
    assert own_answer.status_code == 422
    assert "own top-1 label" in own_answer.json()["error"]
    assert shared.get(f"{API}/predictions/{public_id}").json()["feedback"] is None
    rated = shared.put(
        f"{API}/predictions/{public_id}/feedback",
        json={"feedback": "wrong", "corrected_label": "teapot"},
    )
    assert rated.status_code == 200
    assert (rated.json()["feedback"], rated.json()["corrected_label"]) == ("wrong", "teapot")
    huge = shared.put(f"{API}/predictions/{public_id}/feedback", content=b"[" * 100_000)
    assert huge.status_code == 413
    assert huge.json()["error"].endswith("; feedback is a small JSON object.")
    trailing = shared.get(f"{API}/predictions/{public_id}%0a")  # not its id: another shape
    assert (trailing.status_code, trailing.json()["error"]) == (
        404,
        "No prediction has this id in your history.",
    )
    assert shared.delete(f"{API}/predictions/{public_id}%0A").status_code == 404
    wrong = shared.get(f"{API}/predictions", params={"feedback": "wrong"}).json()
    assert [row["id"] for row in wrong["predictions"]] == [public_id]

    assert shared.delete(f"{API}/predictions/{public_id}").status_code == 204
    gone = shared.get(f"{API}/predictions/{public_id}")
    assert gone.status_code == 404
    assert gone.json() == {"error": "No prediction has this id in your history."}
    row_number = shared.get(f"{API}/predictions/1")  # an id of another shape: the same
    assert (row_number.status_code, row_number.json()) == (404, gone.json())


def test_control_characters_in_a_request_get_an_answer_not_a_database_error(shared, photo_files):
    """PostgreSQL refuses a NUL character in a query: such text never reaches it."""
    body = b"".join(  # a file name with a NUL byte in it, which httpx would percent-encode
        [
            b'--X\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.jpg"\r\n',
            b"Content-Type: image/jpeg\r\n\r\n",
            photo_files["coffee"].read_bytes(),
            b'\r\n--X\r\nContent-Disposition: form-data; name="save"\r\n\r\ntrue\r\n--X--\r\n',
        ]
    )
    form = {"Content-Type": "multipart/form-data; boundary=X"}
    named = shared.post(f"{API}/predict", content=body, headers=form)
    (answer,) = named.json()["predictions"]
    assert answer["file"] == "a\ufffdb.jpg"
    assert shared.get(f"{API}/predictions/{answer['id']}").json()["file"] == "a\ufffdb.jpg"
    unknown = predict(shared, photo_files["coffee"], model="x\x00")
    assert unknown.status_code == 404
    for address in ("predictions", "predictions/export"):
        listed = shared.get(f"{API}/{address}", params={"model": "\x00", "format": "json"})
        assert listed.status_code == 200
        assert "a\ufffdb.jpg" not in listed.text  # a model no prediction has: no rows


def test_history_pages_follow_the_filters(shared, photo_files):
    for _ in range(3):
        predict(shared, photo_files["chelsea"], save="1")
    first = shared.get(f"{API}/predictions", params={"limit": 2, "sort": "oldest"}).json()
    second = shared.get(
        f"{API}/predictions", params={"limit": 2, "offset": 2, "sort": "oldest"}
    ).json()

    assert first["total"] == second["total"] >= 3
    assert len(first["predictions"]) == 2
    assert not {r["id"] for r in first["predictions"]} & {r["id"] for r in second["predictions"]}
    assert shared.get(f"{API}/predictions", params={"model": "nothing-like-it"}).json() == {
        "total": 0, "limit": 50, "offset": 0, "predictions": []}  # fmt: skip


def big_noise_png(side: int) -> bytes:
    rng = np.random.default_rng(0)
    return encode(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), compress_level=0)


@pytest.mark.parametrize(
    ("parts", "fields", "status", "sentence"),
    [
        ([], {}, 422, "Send at least one picture in a form field named file."),
        ([("a.png", b"")], {}, 422, "a.png: The file is empty."),
        ([("a.gif", b"GIF89a\x01\x00")], {}, 422, "a.gif: This GIF file is incomplete or"),
        ([("a.txt", b"hello")], {}, 415, "a.txt: This file is not a picture we can read"),
        ("tiny", {}, 422, "tiny.png: This picture is 4 × 4 pixels, too small"),
        ("big", {}, 413, "big.png: This file is 4.4 MB; the limit is 3 MB."),
        ("photo", {"model": "no_such_model"}, 404, "There is no model called “no_such_model”"),
        ("photo", {"top_k": "0"}, 422, "Expected top_k to be a whole number from 1 to 10,000."),
        ("photo", {"top_k": "five"}, 422, "Expected top_k to be a whole number"),
        ("photo", {"threshold": "2"}, 422, "Expected threshold to be a number from 0 to 1."),
        ("photo", {"save": "perhaps"}, 422, "Expected save to be true or false."),
    ],
)
def test_each_bad_input_gets_its_status_and_one_sentence(
    shared, photo_files, parts, fields, status, sentence
):
    if parts == "tiny":
        parts = [("tiny.png", encode(np.zeros((4, 4, 3), np.uint8)))]
    elif parts == "big":
        data = big_noise_png(1200)
        assert MAX_BYTES < len(data) < MAX_BYTES + 1_500_000
        parts = [("big.png", data)]
    elif parts == "photo":
        parts = [photo_files["chelsea"]]
    response = predict(shared, *parts, **fields) if parts else shared.post(
        f"{API}/predict", files={"other": ("x", b"x")})  # fmt: skip

    assert response.status_code == status
    assert set(response.json()) <= {"error", "file"}  # a lone picture refused is named
    assert response.json()["error"].startswith(sentence)
    assert "Traceback" not in response.text


def test_a_body_that_is_not_a_form_or_is_too_large_is_refused(shared):
    not_a_form = shared.post(f"{API}/predict", content=b"{}", headers={"Content-Type": "a/b"})
    assert (not_a_form.status_code, not_a_form.json()["error"]) == (
        415, "Send the pictures as multipart/form-data, each in a field named file.")  # fmt: skip

    declared = raw_request(
        shared,
        b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n",
    )
    assert declared.startswith(b"HTTP/1.1 413 ")  # answered without waiting for the body

    # No Content-Length: the server counts what arrives and answers once past the limit
    # (16 pictures of 3 MB and 1 MB more), while this client is still sending.
    sent, answer = 0, b""
    with socket.create_connection((shared.base_url.host, shared.base_url.port), 30) as sock:
        sock.sendall(
            b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        )
        head = (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        chunk = b"x" * 64 * 1024
        while sent < 500 * 1024 * 1024 and not answer:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            except OSError:  # the server closed its side: its answer is waiting, or none
                answer = sock.recv(4096)
                break
            if select.select([sock], [], [], 0)[0]:
                answer = sock.recv(4096)
                break
        sock.settimeout(5)
        while answer and not answer.endswith(b"}"):  # the rest of its JSON body
            try:
                more = sock.recv(4096)
            except OSError:
                break
            if not more:
                break
            answer += more
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"This request is larger than" in answer
    assert sent < 100 * 1024 * 1024  # refused long before the 500 MB this client would send

    broken = shared.post(
        f"{API}/predict",
        content=b"--b\r\n" + b"x" * 20_000,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert (broken.status_code, broken.json()) == (
        422, {"error": "The form cannot be read: Invalid multipart data."})  # fmt: skip


def raw_request(http: httpx.Client, request: bytes) -> bytes:
    """Send bytes as they are (a Content-Length no client library would send); return the
    answer's first bytes."""
    with socket.create_connection((http.base_url.host, http.base_url.port), timeout=30) as sock:
        sock.sendall(request)
        return sock.recv(4096)


def test_unknown_addresses_and_bad_tokens_say_so(shared):
    assert shared.get("/api/v1/nothing").status_code == 404
    assert shared.get("/api/v1/nothing").json()["error"].startswith("There is no such API address")
    bad = shared.get(f"{API}/models", headers={"Authorization": "Bearer cls_" + "x" * 43})
    assert (bad.status_code, bad.json()["error"]) == (401, "This API token is not valid: it is "
                                                      "mistyped, or it was revoked.")  # fmt: skip
    basic = shared.get(f"{API}/models", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    assert shared.get("/_stcore/health").text == "ok"  # Streamlit's own routes still answer


def test_the_openapi_document_names_this_server(shared):
    document = shared.get(f"{API}/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": str(shared.base_url).rstrip("/")}]
    assert {"/api/v1/predict", "/api/v1/models", "/api/v1/predictions"} <= set(document["paths"])


# --- A full queue answers 503 instead of piling up -----------------------------------------


def test_a_burst_beyond_the_queue_is_answered_503_with_retry_after(tmp_path, lite0, photo_files):
    env = {"CLASSIFIER_HISTORY_MODE": "off", "CLASSIFIER_API_CONCURRENCY": "1",
           "CLASSIFIER_API_QUEUE": "1"}  # fmt: skip
    photo = photo_files["chelsea"].read_bytes()
    with server_tools.serve(tmp_path, **env) as running:
        start = threading.Barrier(12)

        def call(_):
            with client(running.url) as http:
                start.wait()
                return predict(http, ("chelsea.png", photo), top_k=1000)

        with ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(call, range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 503}
    busy = next(r for r in responses if r.status_code == 503)
    assert int(busy.headers["Retry-After"]) >= 1
    assert busy.json()["error"] == (
        "The server is busy classifying other requests; try again in a moment.")  # fmt: skip


# --- Whose rows and models: private mode with tokens ---------------------------------------

ALICE, BOB, CAROL = ("https://issuer.test alice", "https://issuer.test bob",
                     "https://issuer.test carol")  # fmt: skip


@pytest.fixture(scope="module")
def private(tmp_path_factory, lite0):
    """The app with sign-in configured (a private history) and tokens for three people;
    Carol is an admin by her verified email."""
    from tests.oidc_issuer import Issuer, auth_secrets

    folder = tmp_path_factory.mktemp("private")
    with Issuer() as issuer:
        secrets = folder / "secrets.toml"
        secrets.write_text(auth_secrets(issuer))
        env = {"STREAMLIT_SECRETS_FILES": str(secrets), "CLASSIFIER_ADMINS": "carol@example.com"}
        with server_tools.serve(folder, **env) as running:
            store = history.HistoryStore(f"sqlite:///{folder / 'history.db'}")
            made = {}
            for owner, email in ((ALICE, None), (BOB, None), (CAROL, "carol@example.com")):
                _, made[owner] = tokens.create(store.scoped(owners.Scope.own(owner)), "t", email)
            yield running.url, made, store
            store.dispose()


def test_a_private_history_needs_a_token(private):
    url, _, _ = private
    with client(url) as anonymous:
        response = anonymous.get(f"{API}/models")
        assert response.status_code == 401
        assert "Authorization: Bearer" in response.json()["error"]
        assert anonymous.get(f"{API}/openapi.json").status_code == 200  # the description is open


def test_one_persons_token_never_reaches_anothers_rows(private, photo_files):
    url, made, _ = private
    with client(url, made[ALICE]) as alice, client(url, made[BOB]) as bob:
        (answer,) = predict(alice, photo_files["chelsea"], save="true").json()["predictions"]
        public_id = answer["id"]
        assert alice.get(f"{API}/predictions/{public_id}").status_code == 200

        unknown = bob.get(f"{API}/predictions/{'A' * 22}")
        for response in (
            bob.get(f"{API}/predictions/{public_id}"),
            bob.put(f"{API}/predictions/{public_id}/feedback", json={"feedback": "correct"}),
            bob.delete(f"{API}/predictions/{public_id}"),
        ):
            assert (response.status_code, response.json()) == (404, unknown.json())
        assert public_id not in bob.get(f"{API}/predictions/export", params={"format": "json"}).text
        assert bob.get(f"{API}/predictions").json()["total"] == 0

        kept = alice.get(f"{API}/predictions/{public_id}").json()
        assert kept["feedback"] is None  # Bob's rating did not land
        assert kept["source"] == "api"


def test_one_persons_token_never_uses_anothers_model(private, photo_files, lite0_tflite):
    from classifier import models
    from classifier.config import reset_settings
    from classifier.models import own

    url, made, store = private
    candidate = models.read_model(lite0_tflite, b"\n".join(f"c{i}".encode() for i in range(1000)))
    with pytest.MonkeyPatch.context() as patch:  # kept in the server's database, as Alice
        patch.setenv("CLASSIFIER_DATABASE_URL", f"sqlite:///{store.sqlite_path}")
        reset_settings()
        try:
            models.save("alices-model", candidate, "minus_one_to_one", owners.Scope.own(ALICE))
        finally:
            own.close_stores()
            reset_settings()
    with client(url, made[ALICE]) as alice, client(url, made[BOB]) as bob:
        assert "alices-model" in [m["name"] for m in alice.get(f"{API}/models").json()["models"]]
        assert "alices-model" not in [m["name"] for m in bob.get(f"{API}/models").json()["models"]]
        assert predict(alice, photo_files["chelsea"], model="alices-model").status_code == 200
        refused = predict(bob, photo_files["chelsea"], model="alices-model")
        assert refused.status_code == 404
        assert refused.json()["error"].startswith("There is no model called “alices-model”")


def test_an_admins_token_sees_everyones_rows(private, photo_files):
    url, made, _ = private
    with client(url, made[ALICE]) as alice, client(url, made[CAROL]) as carol:
        (answer,) = predict(alice, photo_files["coffee"], save="true").json()["predictions"]
        assert carol.get(f"{API}/predictions/{answer['id']}").status_code == 200


def test_an_admins_correction_is_checked_against_the_classes_of_the_model_that_answered(
    private, photo_files, lite0_tflite
):
    """Carol (an admin) classifies with Bob's model, whose classes hold "Egyptian Mau" and
    "egyptian mau": the second is another class, so a correction. Once Bob's model is gone
    and Alice's takes its name, the prediction's own classes are what a correction is
    checked against, and "egyptian mau" names its answer."""
    from classifier import labels, models
    from classifier.config import reset_settings
    from classifier.models import own

    url, made, store = private
    names = ["egyptian mau", *labels.labels()[1:]]  # "tench" (never in the top 5 here) renamed
    candidate = models.read_model(lite0_tflite, "\n".join(names).encode())

    def keep(scope: owners.Scope, remove: str | None = None) -> None:
        with pytest.MonkeyPatch.context() as patch:  # kept in the server's database
            patch.setenv("CLASSIFIER_DATABASE_URL", f"sqlite:///{store.sqlite_path}")
            reset_settings()
            try:
                if remove is not None:
                    assert own.remove("bobs-cats", owners.Scope.own(remove))
                models.save("bobs-cats", candidate, "minus_one_to_one", scope)
            finally:
                own.close_stores()
                reset_settings()

    correction = {"feedback": "wrong", "corrected_label": "egyptian mau"}
    keep(owners.Scope.own(BOB))
    with client(url, made[CAROL]) as carol:
        answers = []
        for _ in range(2):
            sent = predict(carol, photo_files["chelsea"], model="bobs-cats", save="true")
            (answer,) = sent.json()["predictions"]
            assert answer["top_k"][0]["label"] == "Egyptian Mau"
            answers.append(answer["id"])
        rated = carol.put(f"{API}/predictions/{answers[0]}/feedback", json=correction)
        assert rated.status_code == 200, rated.text
        assert rated.json()["corrected_label"] == "egyptian mau"

        keep(owners.Scope.own(ALICE), remove=BOB)  # Alice's "bobs-cats", the same classes
        refused = carol.put(f"{API}/predictions/{answers[1]}/feedback", json=correction)
        assert refused.status_code == 422
        assert "is the prediction's own top-1 label" in refused.json()["error"]


def test_a_revoked_token_stops_working(private):
    url, _, store = private
    dave = store.scoped(owners.Scope.own("https://issuer.test dave"))
    token, secret = tokens.create(dave, "soon gone")
    with client(url, secret) as http:
        assert http.get(f"{API}/models").status_code == 200
        assert tokens.revoke(dave, token.id)
        assert http.get(f"{API}/models").status_code == 401


# --- History off, and the API off --------------------------------------------------------------


def test_with_history_off_the_api_classifies_and_saves_nothing(tmp_path, lite0, photo_files):
    with server_tools.serve(tmp_path, CLASSIFIER_HISTORY_MODE="off") as running:
        http = client(running.url)
        assert predict(http, photo_files["chelsea"]).status_code == 200
        refused = predict(http, photo_files["chelsea"], save="true")
        listed = http.get(f"{API}/predictions")
    sentence = "History is off on this server: nothing is saved, and there is none to read."
    assert (refused.status_code, refused.json()["error"]) == (403, sentence)
    assert (listed.status_code, listed.json()["error"]) == (403, sentence)


def test_the_api_can_be_turned_off_and_the_pages_stay(tmp_path):
    with server_tools.serve(tmp_path, CLASSIFIER_API="off") as running:
        http = client(running.url)
        response = http.get(f"{API}/models")
        page = http.get("/")
        health = http.get("/_stcore/health")
    assert (response.status_code, response.json()["error"]) == (
        404, "The API is turned off on this server (CLASSIFIER_API=off).")  # fmt: skip
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert health.text == "ok"


def test_a_picture_the_page_would_refuse_is_refused_alike(shared):
    """A picture with more pixels than the limit is refused from its header, unread."""
    huge = Image.new("1", (10_000, 10_000))
    data = encode(np.asarray(huge, dtype=np.uint8) * 255, "PNG", optimize=True)
    response = predict(shared, ("huge.png", data))
    assert response.status_code == 422
    assert response.json()["error"].startswith(
        "huge.png: This picture is 10,000 × 10,000 pixels (100 MP); the limit is 40 MP."
    )


def test_odd_but_harmless_requests_get_sentences_not_failures(shared, photo_files):
    deep = shared.put(f"{API}/predictions/{'A' * 22}/feedback", content=b"[" * 60_000)
    assert (deep.status_code, deep.json()) == (
        422,
        {"error": "Send the feedback as a JSON object."},
    )
    for moment in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        far = shared.get(f"{API}/predictions", params={"since": moment})
        assert (far.status_code, far.json()["error"]) == (
            422, "Expected since between the years 1 and 9999, in UTC.")  # fmt: skip
    shouted = shared.post(
        f"{API}/predict",
        files={"file": ("chelsea.png", photo_files["chelsea"].read_bytes())},
        headers={"Content-Type": "Multipart/Form-Data; boundary=x"},
    )
    assert shouted.status_code != 415  # media types ignore case


def test_a_form_posted_from_another_site_is_refused(shared, photo_files):
    photo = ("chelsea.png", photo_files["chelsea"].read_bytes())
    elsewhere = shared.post(
        f"{API}/predict", files={"file": photo}, data={"save": "1"},
        headers={"Origin": "http://evil.example"},
    )  # fmt: skip
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (
        403, "Requests sent by another site's web page are refused here.")  # fmt: skip
    own = shared.post(
        f"{API}/predict", files={"file": photo}, headers={"Origin": str(shared.base_url)}
    )
    assert own.status_code == 200


def test_slow_uploads_hold_no_place_in_the_queue(tmp_path, lite0, photo_files):
    env = {"CLASSIFIER_HISTORY_MODE": "off", "CLASSIFIER_API_CONCURRENCY": "1",
           "CLASSIFIER_API_QUEUE": "1"}  # fmt: skip
    with server_tools.serve(tmp_path, **env) as running, client(running.url) as http:
        stalled = []
        for _ in range(4):  # more uploads under way than the queue has places
            sock = socket.create_connection((http.base_url.host, http.base_url.port), 30)
            sock.sendall(
                b"POST /api/v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                b"Content-Type: multipart/form-data; boundary=X\r\n\r\n--X\r\n"
            )
            stalled.append(sock)
        try:
            assert predict(http, photo_files["chelsea"]).status_code == 200
        finally:
            for sock in stalled:
                sock.close()


def test_a_private_server_whose_secrets_lose_sign_in_closes_instead_of_opening(tmp_path, lite0):
    from tests.oidc_issuer import Issuer, auth_secrets

    with Issuer() as issuer:
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(auth_secrets(issuer))
        env = {"STREAMLIT_SECRETS_FILES": str(secrets)}
        with server_tools.serve(tmp_path, **env) as running, client(running.url) as http:
            assert http.get(f"{API}/predictions").status_code == 401
            secrets.write_text("")  # emptied (or half written) while the server runs
            deadline = time.monotonic() + 30
            answer = http.get(f"{API}/predictions")
            while answer.status_code == 401 and time.monotonic() < deadline:
                time.sleep(0.5)
                answer = http.get(f"{API}/predictions")
            assert answer.status_code == 503
            assert answer.json()["error"].startswith(
                "The app's secrets no longer configure sign-in, as they did when it started"
            )
            secrets.unlink()
            time.sleep(3)
            assert http.get(f"{API}/predictions").status_code == 503


def test_with_history_off_a_token_sent_must_still_be_one(tmp_path, lite0):
    with server_tools.serve(tmp_path, CLASSIFIER_HISTORY_MODE="off") as running:
        bad = client(running.url, "cls_" + "y" * 43).get(f"{API}/models")
    assert bad.status_code == 401
