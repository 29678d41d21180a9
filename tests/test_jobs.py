"""Batch jobs: kept in the database, run in the background, resumed after a crash, cancelled,
each picture classified exactly once (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from classifier import jobs, predict
from classifier.history import Filters, HistoryStore
from classifier.history.owners import Scope
from classifier.history.tables import job_items, predictions
from classifier.jobs import runner as runners
from tests.conftest import jpeg, variations

MODEL = "efficientnet_lite0"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, bytes]]:
    """Two hundred and forty small real photos (the cat and the coffee, varied)."""
    from skimage import data

    cat, coffee = Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())
    made = []
    for number, picture in enumerate(variations(cat, 120, 1) + variations(coffee, 120, 2)):
        picture.thumbnail((240, 240))
        made.append((f"folder {number // 100}/photo {number:03d}.jpg", jpeg(picture, 85)))
    return made


def zip_of(pictures: list[tuple[str, bytes]], path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in pictures:
            archive.writestr(name, data)
    return path


@pytest.fixture
def data_dir(tmp_path, monkeypatch, database_url) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(folder))
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", database_url)
    return folder


def submit(store: HistoryStore, pictures, tmp_path: Path, **extra) -> jobs.Job:
    new = jobs.NewJob()
    new.unpack_zip(zip_of(pictures, tmp_path / "photos.zip"))
    values = {"title": "photos.zip", "model": MODEL, "top_k": 3, "thumbnails": True}
    return new.submit(store, source="app", **{**values, **extra})


def one_runner(database_url: str, data_dir: Path) -> runners.Runner:
    """A runner driven by the test, one job at a time (no thread)."""
    return runners.Runner(database_url, data_dir)


def counts_per_item(store: HistoryStore, job: jobs.Job) -> dict[int, int]:
    """How many history rows each of the job's pictures got (by position)."""
    query = (
        select(job_items.c.position, func.count(predictions.c.id))
        .select_from(job_items.outerjoin(predictions, predictions.c.job_id == job_items.c.job_id))
        .where(job_items.c.job_id == job.id, predictions.c.file_name == job_items.c.file_name)
        .group_by(job_items.c.position)
    )
    with store.connect() as conn:
        return dict(conn.execute(query).all())


def test_a_job_classifies_every_picture_once_and_keeps_the_answers(
    store, data_dir, database_url, tmp_path, photos, lite0
) -> None:
    broken = [("broken.jpg", b"\xff\xd8\xff not really a jpeg"), ("notes.txt", b"skip me")]
    job = submit(store, photos[::4] + broken, tmp_path)
    assert (job.status, job.total, job.done) == ("queued", 61, 0)  # the .txt is no picture
    assert (data_dir / job.folder).is_dir()

    assert one_runner(database_url, data_dir).run_next()

    job = jobs.get(store, job.public_id)
    assert (job.status, job.done, job.failed) == ("done", 60, 1)
    assert job.photos_per_second() > 0 and job.seconds_left() == 0
    found = jobs.items(store, job, with_thumbnails=True)
    assert [item.file_name for item in found] == sorted(
        name for name, _ in photos[::4] + broken[:1]
    )
    bad = next(item for item in found if item.file_name == "broken.jpg")
    assert bad.status == "failed" and bad.label is None
    assert (
        bad.error == "This JPEG file is incomplete or damaged; try saving or downloading it again."
    )
    # The same answers as classifying each photo alone, saved as history rows of the job.
    by_name = dict(photos)
    for item in [item for item in found if item.status == "done"][:5]:
        alone = predict.classify(by_name[item.file_name], lite0)
        assert item.label == alone.top1.label
        assert item.probability == pytest.approx(alone.top1.probability, abs=1e-5)
        assert item.thumbnail and item.public_id
    assert store.count(Filters(job=job.id)) == 60
    assert set(counts_per_item(store, job).values()) == {1}
    # The pictures are deleted once classified.
    assert not (data_dir / job.folder).exists()
    counts = jobs.class_counts(store, job)
    assert sum(counts.values()) == 60 and {"Egyptian Mau", "espresso"} <= set(counts)

    csv_text = jobs.export(store, job, "csv").decode()
    assert csv_text.splitlines()[0] == ",".join(jobs.EXPORT_FIELDS)
    assert len(csv_text.splitlines()) == 62
    assert "\n0,broken.jpg,failed,,,This JPEG file is incomplete" in csv_text


def test_cancel_stops_a_job_and_its_pictures_are_deleted(
    store, data_dir, database_url, tmp_path, photos
) -> None:
    job = submit(store, photos[:20], tmp_path)
    cancelled = jobs.cancel(store, job.public_id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    runner = one_runner(database_url, data_dir)
    assert not runner.run_next()  # nothing to take; the cancelled job's folder is swept
    assert not (data_dir / job.folder).exists()
    assert store.count(Filters(job=job.id)) == 0
    assert jobs.cancel(store, job.public_id).status == "cancelled"  # cancelling again: as it was


def test_a_job_cancelled_while_it_runs_stops_after_the_pictures_in_hand(
    store, data_dir, database_url, tmp_path, photos, monkeypatch
) -> None:
    job = submit(store, photos[:200], tmp_path)
    monkeypatch.setattr(runners, "RUN", 10)
    original = jobs.queue.record
    calls = []

    def record_then_cancel(*args, **kwargs):
        original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # the person presses Cancel while it runs
            jobs.cancel(store, job.public_id)

    monkeypatch.setattr(jobs.queue, "record", record_then_cancel)
    one_runner(database_url, data_dir).run_next()
    ended = jobs.get(store, job.public_id)
    assert ended.status == "cancelled"
    assert ended.done == 20 == store.count(Filters(job=job.id))  # what was saved is kept


def test_people_see_only_their_own_jobs(store, data_dir, tmp_path, photos) -> None:
    ann, bob = store.scoped(Scope.own("ann")), store.scoped(Scope.own("bob"))
    job = submit(ann, photos[:3], tmp_path)
    assert jobs.get(ann, job.public_id) is not None
    assert jobs.get(bob, job.public_id) is None
    assert jobs.newest(bob) == [] and [j.public_id for j in jobs.newest(ann)] == [job.public_id]
    assert jobs.cancel(bob, job.public_id) is None
    assert jobs.get(ann, job.public_id).status == "queued"


def test_a_model_removed_after_the_job_was_sent_fails_the_job_with_a_sentence(
    store, data_dir, database_url, tmp_path, photos
) -> None:
    job = submit(store, photos[:3], tmp_path, model="nobody's model")
    one_runner(database_url, data_dir).run_next()
    ended = jobs.get(store, job.public_id)
    assert ended.status == "failed"
    assert ended.error == (
        "The model “nobody's model” is no longer here: it was removed before it could answer "
        "these photos."
    )
    assert not (data_dir / job.folder).exists()
    assert [item.status for item in jobs.items(store, ended)] == ["skipped"] * 3  # not pending
    assert jobs.export(store, ended, "csv").decode().count(",skipped,") == 3


def test_a_job_never_runs_on_a_model_someone_else_added_under_its_name_since(
    store, data_dir, database_url, tmp_path, photos, lite0_tflite
) -> None:
    """Ann's "Birds" is removed while her job waits, and Bob adds a "Birds" of his own: the
    job looks its model up among Ann's, as she sent it, so his model never sees her photos.
    An admin's job, sent with everyone's models in reach, runs on whoever's it is."""
    from classifier import labels, models
    from classifier.models import own

    candidate = models.read_model(lite0_tflite, "\n".join(labels.labels()).encode())
    ann, bob, admin = Scope.own("ann"), Scope.own("bob"), Scope("root", everyone=True)
    try:
        models.save("Birds", candidate, "minus_one_to_one", ann)
        anns = submit(store.scoped(ann), photos[:3], tmp_path, model="Birds")
        admins = submit(store.scoped(admin), photos[3:5], tmp_path, model="Birds")
        assert own.remove("Birds", ann)
        models.save("Birds", candidate, "minus_one_to_one", bob)
        runner = one_runner(database_url, data_dir)
        assert runner.run_next() and runner.run_next()
    finally:
        own.close_stores()

    ended = jobs.get(store, anns.public_id)
    assert (ended.status, store.count(Filters(job=anns.id))) == ("failed", 0)
    assert ended.error == (
        "The model “Birds” is no longer here: it was removed before it could answer these photos."
    )
    ended = jobs.get(store, admins.public_id)
    assert (ended.status, ended.done, store.count(Filters(job=admins.id))) == ("done", 2, 2)


def test_a_model_that_cannot_be_loaded_fails_the_job_with_the_reason(
    store, data_dir, database_url, tmp_path, photos
) -> None:
    import hashlib

    from classifier.history import registry

    damaged = b"not a LiteRT file"
    details = {"size": 224, "classes": 2, "class_names": ["a", "b"], "scaling": "raw"}
    sha256 = hashlib.sha256(damaged).hexdigest()
    registry.add_model(store, "Damaged", "LiteRT file", sha256, details, damaged)
    job = submit(store, photos[:3], tmp_path, model="Damaged")
    one_runner(database_url, data_dir).run_next()
    ended = jobs.get(store, job.public_id)
    assert ended.status == "failed"
    assert ended.error.startswith("The model could not be loaded: ")
    assert not (data_dir / job.folder).exists()


def test_an_address_or_model_name_holding_a_nul_finds_nothing(store, data_dir) -> None:
    """From a page's address (?job=, ?run=) or an API request: PostgreSQL would refuse a
    NUL in the query, and no job, run or model has one in its name."""
    from classifier import models
    from classifier.evaluation import kept

    assert jobs.get(store, "AAAAAAAAAAAAAAAA\x00") is None
    assert kept.run(store, "AAAAAAAAAAAAAAAA\x00") == []
    with pytest.raises(models.UnknownModel):
        models.choose("Mine\x00")


KILLABLE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from classifier.jobs import queue, runner

    record = queue.record

    def slow_record(*args, **kwargs):  # a run saved, then a pause: time to be killed
        record(*args, **kwargs)
        print("saved", flush=True)
        import time; time.sleep(0.2)

    queue.record = slow_record
    runner.RUN = 8
    runner.Runner(sys.argv[1], Path(sys.argv[2])).run_next()
    """
)


def test_a_server_killed_mid_job_resumes_without_classifying_a_picture_twice(
    store, data_dir, database_url, tmp_path, photos, lite0
) -> None:
    job = submit(store, photos, tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, database_url, str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "CLASSIFIER_DATA_DIR": str(data_dir)},
    )
    try:
        for _ in range(3):  # three runs saved, then SIGKILL (no chance to tidy up)
            assert child.stdout.readline().strip() == b"saved"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    halfway = jobs.get(store, job.public_id)
    assert halfway.status == "running" and 0 < halfway.done < len(photos)

    # The restarted server sees that the process holding the job is gone and takes it over.
    assert one_runner(database_url, data_dir).run_next()

    ended = jobs.get(store, job.public_id)
    assert (ended.status, ended.done, ended.failed) == ("done", len(photos), 0)
    assert store.count(Filters(job=job.id)) == len(photos)
    per_item = counts_per_item(store, job)
    assert len(per_item) == len(photos) and set(per_item.values()) == {1}
    assert not (data_dir / job.folder).exists()


def test_a_job_held_by_a_live_process_is_not_taken(
    store, data_dir, database_url, tmp_path, photos
) -> None:
    job = submit(store, photos[:4], tmp_path)
    first = one_runner(database_url, data_dir)
    assert jobs.queue.take(store, first.worker, {job.folder}).status == "running"
    second = one_runner(database_url, data_dir)
    second.worker = f"{second.worker.split(' ')[0]} {os.getppid()}"  # another, live, process
    assert jobs.queue.take(store, second.worker, {job.folder}) is None


def test_the_background_runner_runs_a_job_it_is_woken_for(
    store, data_dir, database_url, tmp_path, photos
) -> None:
    runner = runners.get_runner(database_url, data_dir)
    try:
        job = submit(store, photos[:30], tmp_path)
        deadline = time.monotonic() + 120
        while jobs.get(store, job.public_id).status != "done":
            assert time.monotonic() < deadline, jobs.get(store, job.public_id)
            time.sleep(0.1)
    finally:
        runner.stop()
        runners._runners.clear()
    assert store.count(Filters(job=job.id)) == 30


def test_a_zip_refused_whole_leaves_nothing_behind(store, data_dir, tmp_path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../../escape.jpg", b"x")
    new = jobs.NewJob()
    with pytest.raises(jobs.BatchInputError):
        new.unpack_zip(path)
    new.discard()
    assert not new.folder.exists()
    assert jobs.newest(store) == []


def test_too_many_pictures_are_refused_before_any_work(
    store, data_dir, tmp_path, photos, monkeypatch
) -> None:
    monkeypatch.setenv("CLASSIFIER_BATCH_MAX_PICTURES", "10")
    new = jobs.NewJob()
    with pytest.raises(jobs.BatchInputError, match="10"):
        new.unpack_zip(zip_of(photos[:11], tmp_path / "eleven.zip"))
    new.discard()
    assert jobs.newest(store) == []


def test_pictures_added_one_by_one_make_a_job(store, data_dir, database_url, photos) -> None:
    new = jobs.NewJob()
    for name, data in photos[:5]:
        new.add(name, io.BytesIO(data))
    job = new.submit(store, title="folder 0", model=MODEL, top_k=5, thumbnails=False, source="app")
    one_runner(database_url, data_dir).run_next()
    found = jobs.items(store, jobs.get(store, job.public_id), with_thumbnails=True)
    assert [item.status for item in found] == ["done"] * 5
    assert all(item.thumbnail is None for item in found)  # thumbnails off: none kept


def test_a_full_disk_stops_the_job_with_a_sentence_and_keeps_what_was_saved(
    store, data_dir, database_url, tmp_path, photos, monkeypatch
) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    job = submit(store, photos[:40], tmp_path)
    monkeypatch.setattr(runners, "RUN", 10)
    original, runs = jobs.queue.record, []

    def record_until_the_disk_fills(*args, **kwargs):
        runs.append(1)
        if len(runs) == 3:
            full = sqlite3.OperationalError("database or disk is full")
            raise OperationalError("INSERT INTO predictions ...", {}, full)
        original(*args, **kwargs)

    monkeypatch.setattr(jobs.queue, "record", record_until_the_disk_fills)
    one_runner(database_url, data_dir).run_next()

    ended = jobs.get(store, job.public_id)
    assert (ended.status, ended.done) == ("failed", 20)
    assert ended.error == (
        "The disk holding the history database is full; nothing can be saved to the history "
        "until space is freed. The job stopped; the answers saved before are kept."
    )
    assert store.count(Filters(job=job.id)) == 20
    assert not (data_dir / job.folder).exists()


def test_a_job_whose_worker_stopped_saying_it_is_alive_is_taken_over(
    store, data_dir, database_url, tmp_path, photos
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from classifier.history.tables import jobs as jobs_table

    job = submit(store, photos[:4], tmp_path)
    host = jobs.queue.worker_id().split(" ")[0]
    alive_elsewhere = f"{host} {os.getppid()}"  # a live process id: reused, or stuck
    assert jobs.queue.take(store, alive_elsewhere, {job.folder}) is not None
    with store.begin() as conn:
        conn.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job.id)
            .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=2))
        )
    taken = jobs.queue.take(store, jobs.queue.worker_id(), {job.folder})
    assert taken is not None and taken.worker == jobs.queue.worker_id()
