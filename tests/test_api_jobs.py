"""Batch jobs through the HTTP API of the real app: a zip in, progress, results, cancel; and
a server killed with SIGKILL mid-job that, restarted, finishes it with every photo once."""

from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile

import httpx
import pytest
from PIL import Image

from benchmarks import server as server_tools
from classifier import history
from classifier.history import Filters
from tests.conftest import jpeg, variations
from tests.test_api import API, client

# The zips of the larger jobs repeat their photos under the same names, as zip allows.
pytestmark = [pytest.mark.server, pytest.mark.filterwarnings("ignore:Duplicate name")]


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, bytes]]:
    from skimage import data

    cat, coffee = Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())
    made = []
    for number, picture in enumerate(variations(cat, 150, 5) + variations(coffee, 150, 6)):
        picture.thumbnail((200, 200))
        made.append((f"box/{number:03d}.jpg", jpeg(picture, 80)))
    return made


def zipped(pictures: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in pictures:
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory, lite0):
    folder = tmp_path_factory.mktemp("jobs")
    env = {"CLASSIFIER_HISTORY_MODE": "shared", "CLASSIFIER_DATA_DIR": str(folder / "data")}
    with server_tools.serve(folder, **env) as running, client(running.url) as http:
        yield http, folder


def send(http: httpx.Client, data: bytes, **params) -> httpx.Response:
    params = {"model": "efficientnet_lite0", **params}
    headers = {"Content-Type": "application/zip"}
    return http.post(f"{API}/jobs", content=data, params=params, headers=headers)


def until_ended(http: httpx.Client, public_id: str, seconds: float = 300) -> dict:
    deadline = time.monotonic() + seconds
    seen = []
    while True:
        job = http.get(f"{API}/jobs/{public_id}").json()
        seen.append(job["done"] + job["failed"])
        if job["status"] in ("done", "cancelled", "failed"):
            return {**job, "seen": seen}
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def test_a_zip_runs_as_a_job_with_progress_and_results(server, photos):
    http, _ = server
    response = send(http, zipped([*photos, ("box/readme.txt", b"not a photo")]), top_k=3)

    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["total"], job["model"]) == (300, "efficientnet_lite0")
    ended = until_ended(http, job["id"])
    assert (ended["status"], ended["done"], ended["failed"]) == ("done", 300, 0)
    assert any(0 < seen < 300 for seen in ended["seen"])  # progress was visible on the way
    assert ended["photos_per_second"] > 0 and ended["seconds_left"] == 0

    rows = http.get(f"{API}/jobs/{job['id']}/results", params={"format": "csv"}).text.splitlines()
    assert rows[0] == "position,file_name,status,label,probability,error,public_id"
    assert len(rows) == 301 and rows[1].startswith("0,box/000.jpg,done,")
    results = http.get(f"{API}/jobs/{job['id']}/results", params={"format": "json"}).json()
    assert results["job"]["id"] == job["id"]
    first = results["results"][0]
    assert len(first["top_k"]) == 3
    saved = http.get(f"{API}/predictions/{first['public_id']}").json()  # an ordinary row
    assert saved["top_k"] == first["top_k"] and saved["file"] == "box/000.jpg"
    assert job["id"] in [listed["id"] for listed in http.get(f"{API}/jobs").json()["jobs"]]


def test_a_job_is_cancelled(server, photos):
    http, _ = server
    job = send(http, zipped(photos * 4)).json()  # 1,200 photos: still running when cancelled
    cancelled = http.delete(f"{API}/jobs/{job['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    ended = until_ended(http, job["id"])
    assert ended["status"] == "cancelled" and ended["done"] < 1200


@pytest.mark.parametrize(
    ("members", "sentence"),
    [
        ([("../up.jpg", b"x")], ".."),
        ([("notes.txt", b"x")], "no pictures"),
    ],
)
def test_a_bad_zip_is_refused_with_one_sentence(server, members, sentence):
    http, _ = server
    response = send(http, zipped(members))
    assert response.status_code == 422
    assert sentence in response.json()["error"]


def test_what_is_not_a_zip_or_names_no_model_is_refused(server, photos):
    http, _ = server
    assert send(http, b"just text").status_code == 422
    wrong_type = http.post(f"{API}/jobs", content=zipped(photos[:1]))
    assert wrong_type.status_code == 415
    unknown = send(http, zipped(photos[:1]), model="no such model")
    assert unknown.status_code == 404 and "no such model" in unknown.json()["error"]
    assert send(http, zipped(photos[:1]), model="a\x00b").status_code == 404
    titled = send(http, zipped(photos[:1]), title="two\nlines")
    assert titled.status_code == 422
    assert titled.json()["error"] == "Expected title on one line, without control characters."
    assert http.get(f"{API}/jobs/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert http.get(f"{API}/jobs/AAAAAAAAAAAAAAAAAAAAAA%0a").status_code == 404


def test_a_server_killed_mid_job_finishes_it_after_a_restart_with_every_photo_once(
    tmp_path, photos, lite0
):
    env = {"CLASSIFIER_HISTORY_MODE": "shared", "CLASSIFIER_DATA_DIR": str(tmp_path / "data")}
    with server_tools.serve(tmp_path, **env) as first, client(first.url) as http:
        job = send(http, zipped(photos * 3)).json()  # 900 photos
        deadline = time.monotonic() + 300
        while http.get(f"{API}/jobs/{job['id']}").json()["done"] < 100:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
    store = history.HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    try:
        saved_before = store.count(Filters())
        assert 0 < saved_before < 900
        with server_tools.serve(tmp_path, **env) as second, client(second.url) as http:
            ended = until_ended(http, job["id"])
        assert (ended["status"], ended["done"], ended["failed"]) == ("done", 900, 0)
        count_per_name = "SELECT file_name || '#' || COUNT(*) FROM predictions GROUP BY file_name"
        with store.connect() as conn:
            names = [row[0] for row in conn.exec_driver_sql(count_per_name)]
        # Each of the 300 names is in the zip three times: three rows each, never more.
        assert len(names) == 300 and all(name.endswith("#3") for name in names)
        assert not (tmp_path / "data" / "jobs" / job["id"]).exists()
    finally:
        store.dispose()
    assert json.dumps(ended)  # the answer is plain JSON


def test_the_batch_pages_upload_address_takes_nothing_without_its_ticket(server, photos):
    http, _ = server
    answer = http.put("/upload/not-a-ticket-anyone-opened", content=photos[0][1])
    assert answer.status_code == 404
    assert answer.json()["error"] == "This upload is over; pick the folder again."
    elsewhere = http.put("/upload/x", content=b"x", headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403
