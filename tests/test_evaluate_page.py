"""The Evaluate page (AppTest): a labelled set sent as the picker sends it, what its labels
match in each model, two models run on the server as jobs, the report, a label fixed, and
the run private to the person who started it (`at.user` stands in for sign-in)."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from PIL import Image

from classifier import evaluation, history, jobs, labels, models
from classifier.evaluation import jobs as evaluating
from classifier.history import owners
from classifier.jobs import runner as runners
from classifier.jobs import uploads
from tests.conftest import EXAMPLES, jpeg, variations
from tests.test_private import ALICE, BOB, open_app, owner_of, texts
from ui.columns import plain

LITE0 = "efficientnet_lite0"
COPY = "Lite0 copy"


@pytest.fixture
def store(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLASSIFIER_MODEL", LITE0)
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
def labelled_set() -> list[tuple[str, bytes]]:
    """Cats and espressos in folders named as ImageNet does and as a person would, a folder
    of no class, and a cat planted among the espressos."""
    files = []
    for folder, name, seed in (("n02124075", "cat", 0), ("espresso", "coffee", 1)):
        with Image.open(EXAMPLES / f"{name}.jpg") as photo:
            for i, picture in enumerate(variations(photo.convert("RGB"), 6, seed)):
                picture.thumbnail((320, 320))
                files.append((f"Desk/{folder}/{i:02d}.jpg", jpeg(picture, 85)))
    # A classic label error: one photo filed twice, as a cat and as an espresso. (cleanlab
    # flags a mislabelled photo the model finds at least as cat-like as the set's cats.)
    files.append(("Desk/espresso/planted.jpg", files[1][1]))
    files.append(("Desk/Holiday/beach.jpg", files[0][1]))
    return files


def send(at, files, kind="picture"):
    """What the page's picker does in the browser (see tests/test_batch_page.py)."""
    upload = uploads.find(at.session_state["evaluate_ticket"])
    if kind == "zip":
        upload.job.folder.parent.mkdir(parents=True, exist_ok=True)
        path = upload.job.folder.parent / "sent.zip"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in files:
                archive.writestr(name, data)
        path.write_bytes(buffer.getvalue())
        upload.unpack(path, "set.zip")
    else:
        for name, data in files:
            upload.add(name, io.BytesIO(data))
    at.session_state["evaluate_sent"] = (upload.ticket, "")  # the picker's "all sent"
    return at.run()


def run_of(at) -> str:
    """Return the run the page's address names (AppTest gives one value or a list of them)."""
    run = at.query_params["run"]
    return run[0] if isinstance(run, list) else run


def wait_until_done(store, run_id: str) -> list[evaluation.Evaluation]:
    deadline = time.monotonic() + 300
    while True:
        found = evaluating.refresh(store, run_id)
        if found and not any(e.status == "running" for e in found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def what_ran(store, found) -> list:
    """Each evaluation's status and its job's pictures, with why any failed."""
    from sqlalchemy import select

    from classifier.history.tables import job_items
    from classifier.jobs import queue

    said = []
    for e in found:
        job = queue.by_id(store, e.job_id)
        with store.connect() as conn:
            rows = conn.execute(
                select(job_items.c.status, job_items.c.error).where(job_items.c.job_id == e.job_id)
            ).all()
        said.append((e.status, e.photos, e.error, job, sorted({tuple(r) for r in rows})))
    return said


def keep_a_copy_of_lite0(lite0_tflite: bytes) -> None:
    names = "\n".join(labels.labels()).encode()
    candidate = models.read_model(lite0_tflite, names)
    models.save(COPY, candidate, "minus_one_to_one", owners.Scope.own(owner_of(ALICE)))


@pytest.mark.slow
def test_a_labelled_folder_is_evaluated_by_two_models_and_its_report_opens(
    store, labelled_set, lite0_tflite
):
    keep_a_copy_of_lite0(lite0_tflite)
    at = open_app(signed_in=ALICE, page="pages/evaluate.py")
    assert not at.exception
    assert "one folder per class" in texts(at)
    at.multiselect(key="evaluate_models").set_value([LITE0, COPY]).run()
    send(at, labelled_set)
    assert "Desk: 14 labelled photos in 3 classes." in texts(at)
    matches = at.dataframe[0].value
    assert matches["label"].tolist() == ["espresso", "Holiday", "n02124075"]
    assert matches["EfficientNet-Lite0"].tolist() == [
        "espresso", "left out: matches none of the model's classes", "Egyptian Mau"
    ]  # fmt: skip
    (button,) = [b for b in at.button if b.label == "Evaluate 2 models"]
    button.click().run()
    assert not at.exception
    run_id = run_of(at)
    found = wait_until_done(store, run_id)
    assert [(e.model, e.status, e.photos) for e in found] == [
        (LITE0, "done", 13),
        (COPY, "done", 13),
    ]
    assert all(e.owner == owner_of(ALICE) for e in found)
    # Its jobs are the run's: no batch job's page or API opens them.
    for job in evaluating.jobs_of(store, run_id):
        assert jobs.get(store, job.public_id) is None
    assert jobs.newest(store) == []

    report = open_app(signed_in=ALICE, page="pages/evaluate.py", query={"run": run_id})
    assert not report.exception
    said = texts(report)
    assert "McNemar's exact test" in said
    lite0 = found[0]
    assert f"{lite0.accuracy:.1%}" in [m.value for m in report.metric]
    left_out = "Left out 1 photo(s) labelled “Holiday”: matches none of the model's classes."
    assert plain(left_out) in said  # a label is shown as written
    planted = [i["file"] for i in lite0.report["label_issues"]]
    assert "Desk/espresso/planted.jpg" in planted

    # The planted photo's label fixed in the page: every model's numbers again.
    report.selectbox(key=f"fix_file_{lite0.public_id}").set_value("Desk/espresso/planted.jpg").run()
    # The label box opens on the photo's suggested label; the button keeps it.
    number = planted.index("Desk/espresso/planted.jpg")
    assert report.selectbox(key=f"fix_label_{lite0.public_id}_{number}").value == "n02124075"
    report.button(key=f"fix_{lite0.public_id}").click().run()
    assert not report.exception
    again = evaluation.run(store, run_id)
    assert all(
        a.label == "n02124075" for e in again for a in e.answers if a.file.endswith("planted.jpg")
    )
    assert again[0].accuracy > lite0.accuracy
    evaluation.relabel(store, run_id, "Desk/espresso/planted.jpg", None)  # dropped, elsewhere
    dropped = open_app(signed_in=ALICE, page="pages/evaluate.py", query={"run": run_id})
    assert [x.label for x in dropped.expander].count(
        "1 photo set aside by label fixes, not counted"
    ) == 2  # in each model's report

    listed = open_app(signed_in=ALICE, page="pages/evaluate.py").dataframe[0].value
    assert (
        listed["set"].tolist() == ["Desk", "Desk"]
        and listed["open"].tolist()[0] == f"?run={run_id}"
    )

    # The Models page says each model's newest evaluation beside it.
    shown = open_app(signed_in=ALICE, page="pages/models.py")
    assert not shown.exception
    newest = evaluation.run(store, run_id)
    day = f"{newest[0].created_at.day} {newest[0].created_at:%b}"
    builtin = shown.dataframe[0].value.set_index("name")["evaluated"]
    assert builtin[LITE0] == f"{newest[0].accuracy:.1%} on Desk, {day}"  # as in its report
    own = shown.dataframe[1].value.set_index("name")["evaluated"]
    assert own[COPY] == f"{newest[1].accuracy:.1%} on Desk, {day}"

    bob = open_app(signed_in=BOB, page="pages/evaluate.py", query={"run": run_id})
    assert "No evaluation has this id among yours." in [e.value for e in bob.error]
    assert "No evaluations yet." in texts(open_app(signed_in=BOB, page="pages/evaluate.py"))


def test_a_zip_with_a_labels_csv_and_a_set_no_model_knows(store, labelled_set):
    at = open_app(signed_in=ALICE, page="pages/evaluate.py")
    rows = "file,label\n" + "\n".join(
        f"{name.split('/', 1)[1]},{'tabby' if 'n02124075' in name else 'dunno'}"
        for name, _ in labelled_set
    )
    send(at, [*labelled_set, ("Desk/labels.csv", rows.encode())], kind="zip")
    assert not at.exception
    assert "set.zip: 14 labelled photos in 2 classes." in texts(at)
    assert at.dataframe[0].value["label"].tolist() == ["dunno", "tabby"]

    other = open_app(signed_in=ALICE, page="pages/evaluate.py")
    send(other, [("Desk/Holiday/a.jpg", labelled_set[0][1])])
    none = plain(
        "None of the set's labels (Holiday) is one of EfficientNet-Lite0's classes: name each "
        "folder after a class."
    )
    assert none in [e.value for e in other.error]
    assert next(b for b in other.button if b.label == "Evaluate 1 model").disabled


@pytest.mark.slow
def test_labels_and_file_names_show_as_written(store, labelled_set):
    """A folder and a file named as Markdown never become links, images or emphasis."""
    from tests.test_plain_text import assert_shown_as_written, markup_in

    hostile = "**bold** [Verify](https:evil.example) ![x](https:evil.example) <b>h"  # no "/"
    at = open_app(signed_in=ALICE, page="pages/evaluate.py")
    hostile_file = f"Desk/espresso/{hostile}.jpg"
    files = [f for f in labelled_set if "planted" not in f[0] and "Holiday" not in f[0]]
    send(at, [*files, (hostile_file, files[6][1]), (f"Desk/{hostile}/x.jpg", files[0][1])])
    assert not at.exception
    assert "Desk: 14 labelled photos in 3 classes." in texts(at)
    (button,) = [b for b in at.button if b.label == "Evaluate 1 model"]
    button.click().run()
    run_id = run_of(at)
    found = wait_until_done(store, run_id)
    # Done with its answers kept (a report with none shows nothing, "Left out" included).
    assert [(e.status, bool(e.photos)) for e in found] == [("done", True)], what_ran(store, found)

    report = open_app(signed_in=ALICE, page="pages/evaluate.py", query={"run": run_id})
    assert not report.exception
    left_out = [w.value for w in report.warning if "Left out" in w.value.replace("\\", "")]
    assert_shown_as_written(left_out[0], hostile)
    naming = [
        element.value
        for kind in ("caption", "markdown", "warning", "info", "error", "subheader", "tabs")
        for element in getattr(report.main, kind, [])
        if "evil" in str(element.value)
    ]
    assert naming and not any(markup_in(value) for value in naming), naming
    # The photo's name is in the report's tables (plain text by nature) and downloads.
    kept = evaluation.run(store, run_id)[0]
    assert hostile_file in [a.file for a in kept.answers]
