"""The Batch page (AppTest): a folder or a zip becomes a job that runs on the server, the
jobs list shows its progress, a new visit finds it again, and its results open in the page
and in History. Signed in, in a private history (`at.user` stands in for sign-in)."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from PIL import Image

from classifier import history, jobs
from classifier.history.owners import Scope
from classifier.jobs import runner as runners
from classifier.jobs import uploads
from tests.conftest import jpeg, variations
from tests.test_private import ALICE, BOB, open_app, owner_of, texts


@pytest.fixture
def store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLASSIFIER_MODEL", "efficientnet_lite0")
    store = history.HistoryStore(url)
    yield store
    for runner in list(runners._runners.values()):
        runner.stop()
    runners._runners.clear()
    from ui import batch_view

    batch_view._runner.clear()
    store.dispose()
    history.close_shared_stores()


@pytest.fixture(scope="module")
def folder() -> list[tuple[str, bytes, str]]:
    """A folder of 200 small real photos, as a browser sends a picked folder."""
    from skimage import data

    cat, coffee = Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())
    files = []
    for number, picture in enumerate(variations(cat, 100, 3) + variations(coffee, 100, 4)):
        picture.thumbnail((200, 200))
        files.append((f"trip/day {number % 3}/{number:03d}.jpg", jpeg(picture, 80), "image/jpeg"))
    return files


def open_batch(who=ALICE, query=None):
    return open_app(signed_in=who, page="pages/batch.py", query=query)


def wait_until_ended(store, public_id: str) -> jobs.Job:
    deadline = time.monotonic() + 300
    while not (job := jobs.get(store, public_id)).ended:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def send(at, files, kind="picture"):
    """What the page's picker does in the browser: each file to the upload the page opened
    (as `PUT upload/<ticket>` writes it; tests/test_api_jobs.py sends them over HTTP)."""
    upload = uploads.find(at.session_state["batch_ticket"])
    for name, data, _ in files:
        if kind == "zip":
            upload.job.folder.parent.mkdir(parents=True, exist_ok=True)
            path = upload.job.folder.parent / "sent.zip"
            path.write_bytes(data)
            upload.unpack(path, name)
        elif jobs.inputs.is_picture_name(name):
            upload.add(name, io.BytesIO(data))
    at.session_state["batch_sent"] = (upload.ticket, "")  # the picker's "all sent"
    return at.run()


def start(at, files):
    send(at, files)
    (button,) = [b for b in at.button if b.label.startswith("Classify ")]
    return button


def test_a_folder_becomes_a_job_that_runs_on_and_is_found_again(store, folder):
    at = open_batch()
    assert "Up to 10,000 photos per job" in texts(at)
    button = start(at, [*folder, ("trip/.DS_Store", b"junk", "application/octet-stream")])
    assert button.label == "Classify 200 photos"  # the junk file is no photo
    assert "trip: 200 photos received." in texts(at)
    button.click().run()

    assert not at.exception
    assert "The job has started" in at.success[0].value
    (job,) = jobs.newest(store)
    assert (job.owner, job.total, job.title, job.model) == (
        owner_of(ALICE), 200, "trip", "efficientnet_lite0"
    )  # fmt: skip
    # The next job starts from nothing: a new upload, its pictures none yet.
    assert uploads.find(at.session_state["batch_ticket"]).pictures == []

    job = wait_until_ended(store, job.public_id)
    assert (job.status, job.done, job.failed) == ("done", 200, 0)

    again = open_batch()  # the tab closed and opened again: a new session
    listed = again.dataframe[0].value
    assert listed["title"].tolist() == ["trip"]
    assert listed["status"].tolist() == ["Done"] and listed["done"].tolist() == ["200 of 200"]
    assert listed["results"].tolist() == [f"?job={job.public_id}"]

    bob = open_batch(who=BOB)  # another person sees none of it
    assert not bob.dataframe and "No batch jobs yet." in texts(bob)


def test_a_jobs_results_open_with_counts_table_downloads_and_history(store, folder):
    at = open_batch()
    start(at, folder[:12]).click().run()
    (job,) = jobs.newest(store)
    wait_until_ended(store, job.public_id)

    results = open_batch(query={"job": job.public_id})
    assert not results.exception
    assert results.subheader[0].value == "Results: trip"
    table = results.dataframe[0].value
    assert len(table) == 12 and set(table["label"]) <= {"Egyptian Mau", "tabby cat", "tiger cat"}
    assert all(uri.startswith("data:image/") for uri in table["picture"])
    labels = [b.proto.label for b in results.get("download_button")]
    assert labels == ["Download CSV", "Download JSON"]
    (chart,) = results.get("vega_lite_chart")  # the class counts
    assert "Egyptian Mau" in chart.proto.spec or "Egyptian Mau" in str(chart.proto.datasets)

    in_history = open_app(signed_in=ALICE, page="pages/history.py", query={"job": job.public_id})
    assert not in_history.exception
    assert "Only the answers of the batch job trip." in texts(in_history)
    assert "12 of 12 saved predictions" in texts(in_history)


def test_photos_a_failed_job_never_reached_say_so_in_its_results(store, folder):
    open_batch()  # the server's runner starts with the app
    new = jobs.NewJob()
    for name, data, _ in folder[:3]:
        new.add(name, data)
    alice = store.scoped(Scope.own(owner_of(ALICE)))
    removed = "a model removed meanwhile"
    job = new.submit(alice, title="trip", model=removed, top_k=3, thumbnails=True, source="app")
    assert wait_until_ended(store, job.public_id).status == "failed"

    results = open_batch(query={"job": job.public_id})
    assert not results.exception
    assert "The model “a model removed meanwhile” is no longer here" in results.error[0].value
    table = results.dataframe[0].value
    assert table["error"].tolist() == ["Not classified: the job ended before it."] * 3


def test_a_zip_that_reaches_outside_its_folder_is_refused_with_a_sentence(store, folder):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../outside.jpg", folder[0][1])
    at = send(open_batch(), [("photos.zip", buffer.getvalue(), "application/zip")], kind="zip")

    assert not at.exception
    assert at.error[0].value == (
        "This zip holds a file outside its own folder (“../outside.jpg”); it is refused."
    )
    assert not [b for b in at.button if b.label.startswith("Classify ")]
    next(b for b in at.button if b.label == "Pick again").click().run()
    assert "Up to 10,000 photos per job" in texts(at) and not at.error
    assert jobs.newest(store) == []


def test_a_job_is_offered_only_once_every_picture_was_sent(store, folder):
    at = open_batch()
    upload = uploads.find(at.session_state["batch_ticket"])
    for name, data, _ in folder[:5]:  # still arriving: the picker has not said it is done
        upload.add(name, io.BytesIO(data))
    at.run()
    assert "5 photos received so far…" in texts(at)
    assert not [b for b in at.button if b.label.startswith("Classify ")]

    at.session_state["batch_sent"] = (upload.ticket, "The server answered 413.")
    at.run()  # the picker said a send was refused (a proxy's limit): no job from the rest
    assert at.error[0].value == "The server answered 413."
    assert not [b for b in at.button if b.label.startswith("Classify ")]


def test_a_signed_out_visitor_is_asked_to_sign_in(store):
    at = open_app(page="pages/batch.py")
    assert not at.exception
    assert "Sign in to keep your history" in texts(at)
    assert "batch_ticket" not in at.session_state
