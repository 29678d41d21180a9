"""Evaluations: a labelled set read and matched to a model's classes, real models run over
it, the numbers checked against scikit-learn's, likely label errors, and the command line.

The sets are the shipped photos' variations (`variations` in conftest.py) in class folders
named as a person would: a class's name, a WordNet id, a synonym.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from classifier import evaluation, labels
from classifier.evaluation import labelled, metrics
from tests.conftest import EXAMPLES, jpeg, variations
from tests.helpers import cli

pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)

LITE0 = "efficientnet_lite0"


def _photos(name: str, count: int, seed: int) -> list[bytes]:
    with Image.open(EXAMPLES / f"{name}.jpg") as photo:
        return [jpeg(p) for p in variations(photo.convert("RGB"), count, seed)]


@pytest.fixture(scope="module")
def imagenet_set(tmp_path_factory) -> Path:
    """Cats, espressos and rockets in folders named by a WordNet id, a name and a synonym;
    a file that is no picture, a folder of no class, one naming two classes, an empty one."""
    root = tmp_path_factory.mktemp("sets") / "Desk photos"
    for folder, name, seed in (("n02124075", "cat", 0), ("Espresso", "coffee", 1),
                               ("projectile", "rocket", 2)):  # fmt: skip
        (root / folder).mkdir(parents=True)
        for i, data in enumerate(_photos(name, 6, seed)):
            (root / folder / f"{i:02d}.jpg").write_bytes(data)
    (root / "Espresso" / "broken.jpg").write_bytes(b"not a picture at all")
    (root / "crane").mkdir()
    (root / "crane" / "a.jpg").write_bytes(_photos("rocket", 1, 9)[0])
    (root / "Holiday").mkdir()
    (root / "Holiday" / "b.jpg").write_bytes(_photos("coffee", 1, 9)[0])
    (root / "Empty").mkdir()
    (root / "notes.txt").write_text("not in a class folder")
    return root


def test_labels_match_imagenet_classes_by_name_wordnet_id_index_and_synonym():
    found = labelled.match(
        ["Egyptian_Cat", "n02123045", "282", "ESPRESSO", "projectile", "crane", "Holiday"],
        labels.labels(),
    )
    assert found.classes == {
        "Egyptian_Cat": 285,  # the name shown, any case, underscores for spaces
        "n02123045": 281,  # the WordNet id: ImageNet's own folder names
        "282": 282,  # the index
        "ESPRESSO": 967,
        "projectile": 744,  # a WordNet synonym ("projectile, missile")
    }
    assert found.unmatched == (
        ("crane", "names more than one class: crane bird (134), construction crane (517)"),
        ("Holiday", "matches none of the model's classes"),
    )
    own = labelled.match(["cat", "DOG", "Dog house"], ("Cat", "Dog"))
    assert own.classes == {"cat": 0, "DOG": 1}
    assert own.unmatched == (("Dog house", "matches none of the model's classes"),)


def test_a_set_is_read_from_class_folders_or_from_a_labels_csv(tmp_path):
    zipped = labelled.from_names(
        ["set/cat/a.jpg", "set/cat/b.PNG", "set/dog/c.jpg", "set/readme.md", "set/loose.jpg"],
        "set.zip",
    )
    assert [(p.name, p.label) for p in zipped.photos] == [
        ("set/cat/a.jpg", "cat"),
        ("set/cat/b.PNG", "cat"),
        ("set/dog/c.jpg", "dog"),
    ]
    assert zipped.left_out == (
        ("set/readme.md", "not a picture"),
        ("set/loose.jpg", "not in a class folder"),
    )

    (tmp_path / "pics").mkdir()
    for name in ("1.jpg", "2.jpg", "3.jpg"):
        (tmp_path / "pics" / name).write_bytes(b"")
    (tmp_path / "labels.csv").write_text("file,label\npics/1.jpg,cat\npics/2.jpg, dog \n")
    by_csv = labelled.read_folder(tmp_path)
    assert [(p.name, p.label) for p in by_csv.photos] == [
        ("pics/1.jpg", "cat"),
        ("pics/2.jpg", "dog"),
    ]
    assert by_csv.left_out == (("pics/3.jpg", "not in labels.csv"),)

    (tmp_path / "labels.csv").write_text("pics/1.jpg\n")
    with pytest.raises(labelled.SetError, match="needs a file and a label"):
        labelled.read_folder(tmp_path)
    with pytest.raises(labelled.SetError, match="No labelled pictures"):
        labelled.from_names(["a.jpg", "b.jpg"], "flat")


@pytest.mark.slow
def test_an_evaluation_on_the_command_line_equals_scikit_learns_numbers(imagenet_set):
    done = cli("evaluate", str(imagenet_set), "--model", LITE0, "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["set"] == "Desk photos"
    (report,) = document["models"]

    # Unreadable files are listed and excluded; unmatched folders listed, not guessed.
    assert report["unreadable"] == [
        {"file": "Espresso/broken.jpg",
         "why": "This file is not a picture we can read (detected: text). Accepted: PNG, "
                "JPEG, WebP, BMP, GIF, TIFF, HEIC."}
    ]  # fmt: skip
    assert report["unmatched"] == [
        {"label": "crane", "pictures": 1,
         "why": "names more than one class: crane bird (134), construction crane (517)"},
        {"label": "Holiday", "pictures": 1, "why": "matches none of the model's classes"},
    ]  # fmt: skip
    assert report["notes"] == ['The class folder "Empty" has no pictures.']
    assert report["left_out"] == [{"file": "notes.txt", "why": "not a picture"}]
    answers = report["answers"]
    assert report["photos"] == len(answers) == 18

    # The numbers are scikit-learn's, from the same per-photo answers.
    truth = {"Espresso": 967, "n02124075": 285, "projectile": 744}  # in alphabetical order
    y_true = [truth[a["label"]] for a in answers]
    y_pred = [a["top_k"][0]["index"] for a in answers]
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    in_top5 = [t in [c["index"] for c in a["top_k"]] for t, a in zip(y_true, answers, strict=True)]
    assert report["top5_accuracy"] == pytest.approx(np.mean(in_top5))
    order = list(truth.values())
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=order, zero_division=0
    )
    assert [row["class"] for row in report["per_class"]] == list(truth)
    assert [row["precision"] for row in report["per_class"]] == pytest.approx(precision)
    assert [row["recall"] for row in report["per_class"]] == pytest.approx(recall)
    assert [row["f1"] for row in report["per_class"]] == pytest.approx(f1)
    assert [row["support"] for row in report["per_class"]] == support.tolist() == [6, 6, 6]
    confusion = report["confusion"]
    assert confusion["classes"] == list(truth)
    assert confusion["columns"] == [*truth, "(another class)"]
    shown = [p if p in order else -1 for p in y_pred]
    assert confusion["matrix"] == confusion_matrix(y_true, shown, labels=[*order, -1])[:3].tolist()
    assert sum(map(sum, confusion["matrix"])) == report["photos"]
    assert 0 <= report["calibration"]["ece"] <= 1
    assert sum(b["count"] for b in report["calibration"]["bins"]) == 18

    listed = cli("evaluate", "--list")
    assert listed.returncode == 0, listed.stderr
    assert f"{report['accuracy']:.1%}" in listed.stdout and "Desk photos" in listed.stdout

    text = cli("evaluate", str(imagenet_set), "--model", LITE0, "--no-save")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(
        f"EfficientNet-Lite0 on Desk photos\n  accuracy {report['accuracy']:.1%}"
    )
    assert "confusion matrix (rows: label, columns: answer)" in text.stdout
    assert "unreadable Espresso/broken.jpg" in text.stdout
    assert len(cli("evaluate", "--list").stdout.splitlines()) == 1  # --no-save kept nothing


def test_a_set_the_model_cannot_be_judged_on_gets_a_sentence(tmp_path):
    (tmp_path / "Holiday").mkdir()
    (tmp_path / "Holiday" / "a.jpg").write_bytes(_photos("cat", 1, 0)[0])
    none = cli("evaluate", str(tmp_path), "--model", LITE0)
    assert none.returncode == 1
    assert none.stderr.strip().endswith(
        "error: None of the set's labels (Holiday) is one of EfficientNet-Lite0's classes: "
        "name each folder after a class."
    )
    usage = cli("evaluate", str(tmp_path))
    assert usage.returncode == 2 and "at least one --model" in usage.stderr
    unknown = cli("evaluate", str(tmp_path), "--model", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr


@pytest.mark.slow
def test_a_set_of_one_class_says_so(tmp_path):
    (tmp_path / "espresso").mkdir()
    for i, data in enumerate(_photos("coffee", 3, 0)):
        (tmp_path / "espresso" / f"{i}.jpg").write_bytes(data)
    (done,) = evaluation.evaluate_folder(tmp_path, evaluation.read_folder(tmp_path), [LITE0])
    assert done.evaluation.setup.notes == (
        "The set has one class, so the accuracy is that class's recall: no confusion between "
        "classes can be seen.",
    )
    assert done.evaluation.report["label_issues_note"] == (
        "Likely label errors need at least two classes in the set."
    )


def _answer(file: str, truth: int, top: list[tuple[int, float]]) -> metrics.Answer:
    return metrics.Answer(
        file, str(truth), truth, tuple((i, str(i), p) for i, p in top), (0.5, 0.5)
    )


def test_mcnemar_is_the_exact_binomial_test_on_the_photos_only_one_model_got_right():
    from scipy.stats import binomtest

    first = [_answer(f"{n}.jpg", n % 2, [(n % 2, 0.9)]) for n in range(20)]
    second = [
        _answer(f"{n}.jpg", n % 2, [((n % 2) if n < 12 else 1 - n % 2, 0.9)]) for n in range(20)
    ]
    found = metrics.mcnemar(first, second)
    assert found["photos"] == 20
    assert found["only_first_right"] == sorted(f"{n}.jpg" for n in range(12, 20))
    assert found["only_second_right"] == []
    assert found["p_value"] == pytest.approx(binomtest(8, 8, 0.5).pvalue)


@pytest.mark.slow
def test_a_taught_model_finds_a_planted_label_error_and_is_flagged_on_its_own_photos(
    image_folder, tmp_path, store
):
    from classifier import teach

    root, held_out = image_folder
    photos = [
        teach.Photo(str(path), path, folder.name)
        for folder in sorted(root.iterdir())
        for path in sorted(folder.glob("*.jpg"))
    ]
    examples = teach.embed(photos, LITE0)
    class_names = teach.check_classes(sorted(held_out))
    teach.save("Six things", teach.train(examples, class_names))

    # Held-out photos, one Striped drawing planted among the Dotted ones.
    for name, pictures in held_out.items():
        (tmp_path / "held" / name).mkdir(parents=True)
        for i, data in enumerate(pictures):
            (tmp_path / "held" / name / f"{i}.jpg").write_bytes(data)
    planted = tmp_path / "held" / "Dotted" / "planted.jpg"
    (tmp_path / "held" / "Striped" / "0.jpg").rename(planted)
    held = tmp_path / "held"
    (done,) = evaluation.evaluate_folder(
        held, evaluation.read_folder(held), ["Six things"], store=store
    )
    report = done.evaluation.report
    assert report["in_training"] == 0 and report["label_issues_note"] is None
    assert "Dotted/planted.jpg" in [issue["file"] for issue in report["label_issues"]]
    issue = next(i for i in report["label_issues"] if i["file"] == "Dotted/planted.jpg")
    assert issue["label"] == "Dotted" and issue["suggested"] == "Striped"

    # On the photos it was taught with, the number would flatter it: flagged.
    (own,) = evaluation.evaluate_folder(root, evaluation.read_folder(root), ["Six things"])
    assert own.evaluation.report["in_training"] == 48
    assert own.evaluation.report["label_issues"] == []
    assert "taught this model" in own.evaluation.report["label_issues_note"]

    # A label fixed in the kept evaluation: the numbers are worked out again.
    before = evaluation.get(store, done.evaluation.public_id)
    assert evaluation.relabel(store, before.run_id, "Dotted/planted.jpg", "Striped") == 1
    after = evaluation.get(store, done.evaluation.public_id)
    fixed = next(a for a in after.answers if a.file == "Dotted/planted.jpg")
    assert fixed.label == "Striped" and fixed.correct
    assert after.accuracy == pytest.approx(np.mean([a.correct for a in after.answers]))
    assert after.accuracy > before.accuracy
    assert "Dotted/planted.jpg" not in [i["file"] for i in after.report["label_issues"]]
    assert evaluation.latest_by_model(store)["Six things"].public_id == after.public_id
    evaluation.relabel(store, before.run_id, "Dotted/planted.jpg", None)
    assert after.photos - 1 == evaluation.get(store, after.public_id).photos


# --- Without a model: the numbers, kept evaluations and their edits, from made-up answers --


def _made(file: str, label: str, truth: int, answer: int, p: float, classes) -> metrics.Answer:
    scores = tuple(p if c.index == answer else (1 - p) / len(classes) for c in classes)
    return metrics.Answer(file, label, truth, ((answer, f"class {answer}", p),), scores, file)


CATS_AND_DOGS = (metrics.SetClass("cat", 0, "Cat"), metrics.SetClass("dog", 1, "Dog"))


def _answers(classes=CATS_AND_DOGS) -> list[metrics.Answer]:
    rng = np.random.default_rng(3)
    found = []
    for n in range(40):
        c = classes[n % len(classes)]
        right = rng.random() < 0.75
        answer = c.index if right else classes[(n + 1) % len(classes)].index
        found.append(
            _made(f"{c.label}/{n}.jpg", c.label, c.index, answer, rng.uniform(0.4, 1), classes)
        )
    return found


def test_the_report_is_scikit_learns_on_made_up_answers():
    answers = _answers()
    report = metrics.report(CATS_AND_DOGS, answers, num_model_classes=3)
    y_true = [a.truth for a in answers]
    y_pred = [a.predicted for a in answers]
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1], zero_division=0
    )
    assert [r["recall"] for r in report["per_class"]] == pytest.approx(recall)
    assert [r["precision"] for r in report["per_class"]] == pytest.approx(precision)
    assert [r["f1"] for r in report["per_class"]] == pytest.approx(f1)
    assert [r["support"] for r in report["per_class"]] == support.tolist() == [20, 20]
    assert (
        report["confusion"]["matrix"]
        == confusion_matrix(y_true, y_pred, labels=[0, 1, 2])[:2].tolist()
    )
    assert sum(map(sum, report["confusion"]["matrix"])) == 40
    bins = report["calibration"]["bins"]
    confidence = np.array([a.top[0][2] for a in answers])
    correct = np.array([a.correct for a in answers])
    expected = sum(
        abs(correct[(confidence > b["lower"]) & (confidence <= b["upper"])].mean()
            - confidence[(confidence > b["lower"]) & (confidence <= b["upper"])].mean())
        * b["count"] / 40
        for b in bins if b["count"]
    )  # fmt: skip
    assert report["calibration"]["ece"] == pytest.approx(expected)


def test_two_labels_for_one_class_keep_it_once_and_the_other_is_left_out():
    found = evaluation.plan(
        labelled.LabelledSet("s", (labelled.Photo("n02124075/a.jpg", "n02124075"),
                                   labelled.Photo("Egyptian cat/b.jpg", "Egyptian cat"),
                                   labelled.Photo("espresso/c.jpg", "espresso"))),
        LITE0,
    )  # fmt: skip
    assert [(c.label, c.index) for c in found.setup.classes] == [
        ("Egyptian cat", 285),
        ("espresso", 967),
    ]
    assert found.setup.unmatched == (
        ("n02124075", "names the same class as “Egyptian cat” (Egyptian Mau): put their photos "
         "in one folder", 1),
    )  # fmt: skip
    assert [p.name for p in found.photos] == ["Egyptian cat/b.jpg", "espresso/c.jpg"]


def test_a_label_fixed_in_a_run_is_fixed_in_every_model_that_knows_it_at_once(store):
    from classifier.evaluation import kept

    only_cats = (metrics.SetClass("cat", 0, "Cat"),)
    both, cats = _answers(), [a for a in _answers() if a.label == "cat"]
    cats = [replace(a, scores=a.scores[:1]) for a in cats]
    run_id = kept.new_run_id()
    for model, classes, answers in (("A", CATS_AND_DOGS, both), ("B", only_cats, cats)):
        kept.keep_whole(
            store, run_id=run_id, title="s", model=model, model_title=model,
            setup=kept.Setup(classes, 3), set_digest="", answers=answers, unreadable=[],
        )  # fmt: skip
    with pytest.raises(ValueError, match="bird is not one of the set's labels"):
        evaluation.relabel(store, run_id, "cat/0.jpg", "bird")
    assert evaluation.relabel(store, run_id, "cat/0.jpg", "dog") == 2
    first, second = evaluation.run(store, run_id)
    assert next(a for a in first.answers if a.file == "cat/0.jpg").label == "dog"
    assert "cat/0.jpg" not in [a.file for a in second.answers]  # B has no dog: left out
    assert (first.photos, second.photos) == (40, 19)
    assert second.as_dict()["set_aside"] == [
        {"file": "cat/0.jpg", "why": "labelled “dog”, which this model has no class for"}
    ]
    assert first.set_digest != kept.unsaved(
        title="s", model="A", model_title="A", setup=kept.Setup(CATS_AND_DOGS, 3),
        set_digest="", answers=both, unreadable=[],
    ).set_digest  # fmt: skip

    # Fixed back, it is B's again, as B answered it (it used to be gone from B for good).
    assert evaluation.relabel(store, run_id, "cat/0.jpg", "cat") == 2
    first, second = evaluation.run(store, run_id)
    assert (first.photos, second.photos) == (40, 20)
    back = next(a for a in second.answers if a.file == "cat/0.jpg")
    assert (back.label, back.truth, back.top[0][:2]) == ("cat", 0, cats[0].top[0][:2])
    assert back.scores == pytest.approx(cats[0].scores, abs=1e-6)
    assert second.set_aside == []
    assert evaluation.relabel(store, run_id, "cat/0.jpg", None) == 2  # dropped: aside in both
    assert evaluation.relabel(store, run_id, "cat/0.jpg", None) == 0  # (nothing left to change)
    first, second = evaluation.run(store, run_id)
    assert [len(e.answers) for e in (first, second)] == [39, 19]
    assert first.set_aside_why == [("cat/0.jpg", "dropped from the set")]

    # Every photo of a class dropped: the class is gone from the label errors' search.
    for a in [a for a in first.answers if a.label == "dog"]:
        evaluation.relabel(store, run_id, a.file, None)
    assert evaluation.run(store, run_id)[0].report["label_issues_note"] == (
        "Likely label errors need at least two classes in the set."
    )


def test_an_evaluation_whose_job_is_gone_ends_as_failed(store):
    from classifier.evaluation import jobs as evaluating
    from classifier.evaluation import kept

    run_id = kept.new_run_id()
    with store.begin() as conn:
        kept._insert(conn, store, run_id=run_id, title="s", model="A", model_title="A",
                     setup=kept.Setup(CATS_AND_DOGS, 3))  # fmt: skip
    (found,) = evaluating.refresh(store, run_id)
    assert (found.status, found.error) == ("failed", "It stopped before its answers were kept.")


def _evaluation_job(store, answers, model="A"):
    """Start an evaluation of a set matched to three classes, as the app does, its job taken
    by this process's worker; return the run's id, the job and the worker."""
    from classifier.evaluation import kept
    from classifier.jobs import inputs, queue

    run_id, worker = kept.new_run_id(), queue.worker_id()

    def keep(conn, job_id: int) -> None:
        kept.start(store, conn, job_id=job_id, run_id=run_id, title="s", model=model,
                   model_title=model, setup=kept.Setup(CATS_AND_DOGS, 3))  # fmt: skip

    job = queue.create(
        store, title="s", model=model, pictures=[inputs.Picture(a.file) for a in answers],
        folder="jobs/x", public_id=queue.new_public_id_for_job(), top_k=5, thumbnails=False,
        source="app", truths=[a.truth for a in answers], also=keep,
    )  # fmt: skip
    assert queue.take(store, worker, {"jobs/x"}).id == job.id
    return run_id, job, worker


def _answer_all(store, job, worker, answers) -> None:
    from classifier.jobs import queue

    kept_answers = [(n, json.dumps(a.as_dict()), None) for n, a in enumerate(answers)]
    queue.record_evaluated(store, job, worker, kept_answers, [])
    queue.finish(store, job, worker)


def test_an_evaluation_whose_job_two_callers_complete_at_once_keeps_its_answers(store):
    """The runner and a page's refresh may both find the job ended while the evaluation
    still runs: the first keeps its numbers, the second changes nothing (it used to keep
    an empty report over them, the answers having moved out of the job's rows)."""
    from classifier.evaluation import kept

    answers = _answers()
    run_id, job, worker = _evaluation_job(store, answers)
    (running,) = kept.run(store, run_id)  # as both callers read it, before either completes it
    _answer_all(store, job, worker, answers)
    for _ in range(2):
        kept.complete_from_job(store, running, "done", None)
        (found,) = kept.run(store, run_id)
        assert (found.status, found.photos) == ("done", 40)
        assert sorted(a.file for a in found.answers) == sorted(a.file for a in answers)


def test_cancelling_a_run_whose_job_has_just_ended_keeps_its_end(store):
    """A Cancel that arrives once every photo is answered changes nothing: the run is done,
    with its numbers (it used to end as cancelled, and out of the comparisons)."""
    from classifier.evaluation import jobs as evaluating

    answers = _answers()
    run_id, job, worker = _evaluation_job(store, answers)
    _answer_all(store, job, worker, answers)
    evaluating.cancel(store, run_id)
    (found,) = evaluation.run(store, run_id)
    assert (found.status, found.photos, found.error) == ("done", 40, None)


def test_cancelling_a_running_run_ends_it_cancelled_with_what_was_answered(store):
    from classifier.evaluation import jobs as evaluating
    from classifier.jobs import queue

    answers = _answers()
    run_id, job, worker = _evaluation_job(store, answers)
    first = [(n, json.dumps(a.as_dict()), None) for n, a in enumerate(answers[:10])]
    queue.record_evaluated(store, job, worker, first, [])
    evaluating.cancel(store, run_id)
    (found,) = evaluation.run(store, run_id)
    assert (found.status, found.photos) == ("cancelled", 10)
    with pytest.raises(queue.Lost):  # the runner saves nothing more
        queue.record_evaluated(store, job, worker, [(10, first[0][1], None)], [])


def test_an_evaluation_whose_model_cannot_be_loaded_ends_failed_with_the_reason(store, tmp_path):
    """Said as the runner ends its job, not only once someone opens the run."""
    from classifier.evaluation import kept
    from classifier.jobs import runner as runners

    run_id, job, _ = _evaluation_job(store, _answers())  # model "A": no model of that name
    runners.Runner("", tmp_path)._run_job(store, job)
    (found,) = kept.run(store, run_id)  # as kept: nothing refreshed it
    assert found.status == "failed"
    assert (
        found.error
        == "The model “A” is no longer here: it was removed before it could answer these photos."
    )


def test_two_label_fixes_at_once_both_land(store):
    """A fix made while another is being saved (two tabs, or two people) builds on it: it
    used to read the run before the other's commit and write its own over it."""
    import threading

    from classifier.evaluation import jobs as evaluating
    from classifier.evaluation import kept

    answers = _answers()
    run_id, job, worker = _evaluation_job(store, answers)
    _answer_all(store, job, worker, answers)
    (done,) = evaluating.refresh(store, run_id)
    first, second = answers[0].file, answers[1].file
    with store.begin() as conn:  # the first fix, not yet committed
        rest = [a for a in done.answers if a.file != first]
        kept._update(conn, done, done.setup, rest, done.unreadable, "", 0)
        fixing = threading.Thread(target=evaluation.relabel, args=(store, run_id, second, None))
        fixing.start()
        fixing.join(0.5)  # the second has read the run, or waits to
    fixing.join(60)
    (found,) = evaluation.run(store, run_id)
    assert {first, second}.isdisjoint(a.file for a in found.answers)
    assert found.photos == 38


def test_an_evaluation_of_a_model_whose_classes_changed_since_it_started_stops_and_says_so(
    store, tmp_path, lite0
):
    """Its set was matched to the classes the model had then (here three); answered by the
    model as it is now (ImageNet's 1,000), its numbers would be another model's."""
    from classifier.evaluation import kept
    from classifier.jobs import runner as runners

    run_id, job, _ = _evaluation_job(store, _answers(), model=LITE0)
    runners.Runner("", tmp_path)._run_job(store, job)
    (found,) = kept.run(store, run_id)
    assert (found.status, found.photos, found.error) == (
        "failed",
        0,
        "The model changed after this evaluation started (its classes are not the same); "
        "evaluate it again.",
    )
