"""Evaluations through the HTTP API of the real app: a labelled set as a zip (class
folders, or a labels.csv), evaluated by one or two models as batch jobs, polled until
done; refusals with one sentence; cancelling; and a private history's runs kept apart."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from benchmarks import server as server_tools
from classifier.history import owners
from tests.conftest import jpeg, variations
from tests.test_api import API, client
from tests.test_api_jobs import zipped

pytestmark = [pytest.mark.server, pytest.mark.filterwarnings("ignore:Duplicate name")]
EXAMPLES = Path(__file__).parents[1] / "assets" / "examples"
PER_CLASS = 12


def _varied(name: str, count: int, seed: int) -> list[bytes]:
    made = []
    for picture in variations(Image.open(EXAMPLES / name), count, seed):
        picture.thumbnail((200, 200))
        made.append(jpeg(picture, 80))
    return made


@pytest.fixture(scope="module")
def photos() -> dict[str, list[bytes]]:
    """Photos of each class, by the folder (label) they go in."""
    return {
        "Egyptian cat": _varied("cat.jpg", PER_CLASS, 1),
        "espresso": _varied("coffee.jpg", PER_CLASS, 2),
        "Holiday": _varied("rocket.jpg", 3, 3),  # a label no ImageNet class has
    }


def in_folders(photos: dict[str, list[bytes]], around: str = "") -> list[tuple[str, bytes]]:
    return [
        (f"{around}{label}/{n:03d}.jpg", data)
        for label, pictures in photos.items()
        for n, data in enumerate(pictures)
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory, lite0):
    folder = tmp_path_factory.mktemp("evaluations")
    env = {"CLASSIFIER_HISTORY_MODE": "shared", "CLASSIFIER_DATA_DIR": str(folder / "data")}
    with server_tools.serve(folder, **env) as running, client(running.url) as http:
        yield http, folder


def send(http: httpx.Client, data: bytes, **params) -> httpx.Response:
    params = {"model": "efficientnet_lite0", **params}
    headers = {"Content-Type": "application/zip"}
    return http.post(f"{API}/evaluations", content=data, params=params, headers=headers)


def until_ended(http: httpx.Client, run_id: str, seconds: float = 300) -> dict:
    deadline = time.monotonic() + seconds
    seen = []
    while True:
        run = http.get(f"{API}/evaluations/{run_id}").json()
        seen.append([(m["status"], m["progress"]["done"]) for m in run["models"]])
        if run["status"] != "running":
            return {**run, "seen": seen}
        assert time.monotonic() < deadline, run
        time.sleep(0.2)


def test_a_zip_of_class_folders_is_evaluated_with_progress_then_its_numbers(server, photos):
    http, _ = server
    members = [*in_folders(photos, "pets/"), ("pets/espresso/broken.jpg", b"not a JPEG")]
    response = send(http, zipped([*members, ("pets/notes.txt", b"hello")]), name="pets.zip")

    assert response.status_code == 202, response.text
    run = response.json()
    assert response.headers["location"] == f"/api/v1/evaluations/{run['id']}"
    assert run["links"]["self"].endswith(f"/api/v1/evaluations/{run['id']}")
    assert (run["set"], [m["model"] for m in run["models"]]) == ("pets.zip", ["efficientnet_lite0"])
    assert "comparisons" not in run  # one model
    (started,) = run["models"]
    assert started["progress"]["total"] == 2 * PER_CLASS + 1  # the Holiday photos are not asked

    ended = until_ended(http, run["id"])
    assert ended["status"] == "done" and ended["finished_at"] is not None
    (done,) = ended["models"]
    assert done["status"] == "done" and done["progress"]["status"] == "done"
    assert (done["progress"]["done"], done["progress"]["failed"]) == (2 * PER_CLASS, 1)
    assert done["photos"] == 2 * PER_CLASS  # read: the broken one is not
    right = sum(answer["correct"] for answer in done["answers"])
    assert len(done["answers"]) == done["photos"]
    assert done["accuracy"] == pytest.approx(right / done["photos"])
    assert done["accuracy"] > 0.5  # cats are "Egyptian Mau" (its synonym: Egyptian cat)
    confusion = done["confusion"]
    assert confusion["classes"] == ["Egyptian cat", "espresso"]
    assert sum(map(sum, confusion["matrix"])) == done["photos"]
    assert [sum(row) for row in confusion["matrix"]] == [PER_CLASS, PER_CLASS]
    assert {row["class"]: row["support"] for row in done["per_class"]} == {
        "Egyptian cat": PER_CLASS,
        "espresso": PER_CLASS,
    }
    assert done["unmatched"] == [
        {"label": "Holiday", "why": "matches none of the model's classes", "pictures": 3}
    ]
    assert [u["file"] for u in done["unreadable"]] == ["pets/espresso/broken.jpg"]
    assert done["calibration"]["bins"] and 0 <= done["calibration"]["ece"] <= 1

    listed = http.get(f"{API}/evaluations").json()["runs"]
    mine = next(entry for entry in listed if entry["id"] == run["id"])
    assert mine["status"] == "done" and mine["set"] == "pets.zip"
    (summary,) = mine["models"]
    assert summary["accuracy"] == done["accuracy"] and "answers" not in summary
    # An evaluation's jobs are its own: not among the batch jobs, nor opened as one.
    assert http.get(f"{API}/jobs").json()["jobs"] == []


@pytest.mark.parametrize("around", ["", "set/"])
def test_a_zip_with_a_labels_csv_is_evaluated(server, photos, around):
    http, _ = server
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["file", "label"])
    members = []
    for label in ("Egyptian cat", "espresso"):
        for n, data in enumerate(photos[label][:4]):
            name = f"{label.split()[-1]}-{n}.jpg"
            members.append((f"{around}{name}", data))
            writer.writerow([name, label])
    members.append((f"{around}unlisted.jpg", photos["espresso"][5]))  # in no row: left out
    members.append((f"{around}labels.csv", rows.getvalue().encode()))

    response = send(http, zipped(members))
    assert response.status_code == 202, response.text
    assert response.json()["set"] == "upload.zip"
    (done,) = until_ended(http, response.json()["id"])["models"]
    assert done["status"] == "done" and done["photos"] == 8
    assert {row["class"]: row["support"] for row in done["per_class"]} == {
        "Egyptian cat": 4,
        "espresso": 4,
    }
    assert done["left_out"] == [{"file": f"{around}unlisted.jpg", "why": "not in labels.csv"}]


def test_two_models_are_compared(server, photos, lite0_tflite):
    """A second model (Lite0's own file, added with ImageNet's class names) is evaluated
    with the first, and the run compares them as `classifier evaluate` does."""
    from classifier import labels, models
    from classifier.config import reset_settings
    from classifier.models import own

    http, folder = server
    candidate = models.read_model(lite0_tflite, "\n".join(labels.labels()).encode())
    with pytest.MonkeyPatch.context() as patch:  # kept in the server's database
        patch.setenv("CLASSIFIER_DATABASE_URL", f"sqlite:///{folder / 'history.db'}")
        reset_settings()
        try:
            models.save("lite0-again", candidate, "minus_one_to_one", owners.EVERYONE)
        finally:
            own.close_stores()
            reset_settings()
    members = in_folders({label: photos[label][:6] for label in ("Egyptian cat", "espresso")})
    response = send(http, zipped(members), model=["efficientnet_lite0", "lite0-again"])
    assert response.status_code == 202, response.text
    assert response.json()["comparisons"] == []  # until both are done

    ended = until_ended(http, response.json()["id"])
    assert ended["status"] == "done"
    first, second = ended["models"]
    assert (first["model"], second["model"]) == ("efficientnet_lite0", "lite0-again")
    assert first["photos"] == second["photos"] == 12
    (comparison,) = ended["comparisons"]
    assert (comparison["first"], comparison["second"], comparison["photos"]) == (
        "efficientnet_lite0",
        "lite0-again",
        12,
    )
    right = {m["model"]: {a["file"] for a in m["answers"] if a["correct"]} for m in ended["models"]}
    assert comparison["only_first_right"] == sorted(
        right["efficientnet_lite0"] - right["lite0-again"]
    )
    assert comparison["only_second_right"] == sorted(
        right["lite0-again"] - right["efficientnet_lite0"]
    )
    assert 0 <= comparison["p_value"] <= 1
    assert send(http, zipped(members), model=["lite0-again", "lite0-again"]).status_code == 422


def test_a_run_is_cancelled(server, photos):
    http, _ = server
    members = in_folders({label: photos[label] * 25 for label in ("Egyptian cat", "espresso")})
    run = send(http, zipped(members)).json()  # 600 photos: still running when cancelled
    cancelled = http.delete(f"{API}/evaluations/{run['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    ended = until_ended(http, run["id"])
    (model,) = ended["models"]
    assert ended["status"] == model["status"] == "cancelled"
    assert model["progress"]["status"] == "cancelled" and model["progress"]["done"] < 600


@pytest.mark.parametrize(
    ("members", "sentence"),
    [
        ([("Holiday/a.jpg", b"x"), ("Garden/b.jpg", b"y")], "None of the set's labels (Garden, "),
        ([("a.jpg", b"x")], "No labelled pictures were found"),
        ([("espresso/a.jpg", b"x"), ("labels.csv", b"only a file name\n")], "file,label"),
        ([("espresso/a.jpg", b"x"), ("labels.csv", b"\xff\xfe bad")], "not UTF-8"),
        ([("notes.txt", b"x")], "no pictures"),
        ([("../up.jpg", b"x")], ".."),
    ],
)
def test_a_set_that_cannot_be_evaluated_is_refused_with_one_sentence(server, members, sentence):
    http, _ = server
    response = send(http, zipped(members))
    assert response.status_code == 422
    assert sentence in response.json()["error"]


def test_an_unknown_model_or_run_is_not_found(server, photos):
    http, _ = server
    data = zipped(in_folders({"espresso": photos["espresso"][:1]}))
    unknown = send(http, data, model=["efficientnet_lite0", "no such model"])
    assert unknown.status_code == 404 and "no such model" in unknown.json()["error"]
    assert http.post(f"{API}/evaluations", content=data).status_code == 415
    assert send(http, b"just text").status_code == 422
    assert send(http, data, name="two\nlines").status_code == 422
    missing = "A" * 22
    for response in (
        http.get(f"{API}/evaluations/{missing}"),
        http.delete(f"{API}/evaluations/{missing}"),
        http.get(f"{API}/evaluations/not-an-id"),
    ):
        assert response.status_code == 404
        assert response.json()["error"] == "No evaluation has this id among yours."


def test_with_history_off_there_are_no_evaluations(tmp_path, lite0, photos):
    with (
        server_tools.serve(tmp_path, CLASSIFIER_HISTORY_MODE="off") as running,
        client(running.url) as http,
    ):
        refused = send(http, zipped(in_folders({"espresso": photos["espresso"][:1]})))
        assert refused.status_code == 403 and "History is off" in refused.json()["error"]
        assert http.get(f"{API}/evaluations").status_code == 403


# --- A private history: each person sees only their own runs -------------------------------

ALICE, BOB = "https://issuer.test alice", "https://issuer.test bob"


@pytest.fixture(scope="module")
def private(tmp_path_factory, lite0):
    """The app with sign-in configured (a private history) and a token each for two people."""
    from classifier import history
    from classifier.history import tokens
    from tests.oidc_issuer import Issuer, auth_secrets

    folder = tmp_path_factory.mktemp("private-evaluations")
    with Issuer() as issuer:
        secrets = folder / "secrets.toml"
        secrets.write_text(auth_secrets(issuer))
        with server_tools.serve(folder, STREAMLIT_SECRETS_FILES=str(secrets)) as running:
            store = history.HistoryStore(f"sqlite:///{folder / 'history.db'}")
            try:
                made = {
                    owner: tokens.create(store.scoped(owners.Scope.own(owner)), "t")[1]
                    for owner in (ALICE, BOB)
                }
                yield running.url, made
            finally:
                store.dispose()


def test_one_persons_runs_are_not_anothers(private, photos):
    url, made = private
    with client(url, made[ALICE]) as alice, client(url, made[BOB]) as bob:
        data = zipped(in_folders({"espresso": photos["espresso"][:3]}))
        run = send(alice, data).json()
        assert alice.get(f"{API}/evaluations/{run['id']}").status_code == 200

        unknown = bob.get(f"{API}/evaluations/{'A' * 22}")
        for response in (
            bob.get(f"{API}/evaluations/{run['id']}"),
            bob.delete(f"{API}/evaluations/{run['id']}"),
        ):
            assert (response.status_code, response.json()) == (404, unknown.json())
        assert bob.get(f"{API}/evaluations").json()["runs"] == []

        ended = until_ended(alice, run["id"])
        assert ended["status"] == "done"  # Bob's cancel did not land
        assert [r["id"] for r in alice.get(f"{API}/evaluations").json()["runs"]] == [run["id"]]
