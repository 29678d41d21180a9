"""Teach your own classes, the library: checks, the head, keeping and retraining.

The fast tests need no network file: class checks, the head on made-up vectors (against
scikit-learn's own probabilities), the registry on both databases, bad input. The slow
ones use EfficientNet-Lite0's real feature extractor on the shipped photos, Pillow-made
variations of them and drawn classes (stripes, dots, plain; `image_folder` in
conftest.py), and compare the downloaded Teachable Machine zip with the app's own answers.
The Teach page is tested in test_teach_page.py, `classifier teach` in test_teach_cli.py.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from classifier import models, teach
from classifier.history.registry import ModelNameTaken
from classifier.models import derived, own
from classifier.predict import classify
from classifier.runtime import cache
from tests.conftest import LITE0, made_up_examples

pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)


# --- Checks and the head (no network file) --------------------------------------------


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["Mug"], "Teach at least 2 classes; there is 1."),
        (["Mug", " mug "], "Two classes are called “mug”"),
        (["Mug", ""], "Every class needs a name."),
        ([f"c{i}" for i in range(51)], "At most 50 classes can be taught; there are 51."),
        (["Mug", "Cup\x07"], "Class names cannot hold control characters."),
    ],
)
def test_unusable_classes_get_one_sentence(names, message):
    with pytest.raises(teach.TeachError, match="^" + message.replace(".", r"\.")):
        teach.check_classes(names)


def test_a_class_with_one_photo_is_refused_by_name():
    examples = made_up_examples(classes=2, per_class=5)
    only_one = teach.Examples(
        LITE0,
        examples.vectors[:6],
        examples.labels[:6],
        examples.names[:6],
        examples.digests[:6],
    )
    with pytest.raises(teach.TeachError, match="The class “class 1” has 1 photo; each class"):
        teach.train(only_one)
    with pytest.raises(teach.TeachError, match="The class “Rocket” has 0 photos"):
        teach.train(examples, ["class 0", "class 1", "Rocket"])


@pytest.mark.parametrize("classes", [2, 4])
def test_the_folded_head_gives_scikit_learns_probabilities(classes):
    examples = made_up_examples(classes=classes)
    taught = teach.train(examples)
    regression = teach._head().fit(
        examples.vectors, [taught.class_names.index(label) for label in examples.labels]
    )
    fresh = made_up_examples(classes=classes, per_class=4, seed=1).vectors
    expected = regression.predict_proba(fresh)
    assert taught.probabilities(fresh) == pytest.approx(expected, abs=1e-5)
    assert taught.accuracy == 1.0  # well separated classes
    assert taught.confusion().trace() == len(examples.labels)
    assert taught.folds == 5


def test_cross_validation_reports_each_class_and_the_photos_taken_for_another():
    rng = np.random.default_rng(3)
    vectors = rng.uniform(0, 1, (20, 16)).astype(np.float32)  # two classes of pure noise
    labels = tuple(["Left"] * 10 + ["Right"] * 10)
    examples = teach.Examples(
        LITE0, vectors, labels, tuple(f"p{i}" for i in range(20)), tuple(f"{i}" for i in range(20))
    )
    taught = teach.train(examples)
    counts = taught.confusion()
    assert counts.sum() == 20 and counts.sum(axis=1).tolist() == [10, 10]
    assert taught.class_accuracy() == {
        "Left": counts[0, 0] / 10,
        "Right": counts[1, 1] / 10,
    }
    mistakes = taught.mistakes()
    assert len(mistakes) == 20 - counts.trace()
    for number, truth, guess in mistakes:
        assert labels[number] == truth != guess == taught.predicted[number]
    # Each answer's confidence is the held-out probability of the class it gave.
    assert len(taught.confidence) == 20 and all(0.5 <= p <= 1 for p in taught.confidence)
    assert sorted(taught.answers(right=False)) == sorted(
        taught.confidence[number] for number, _, _ in mistakes
    )


def held_out(answers: list[tuple[str, str, float]], classes=("Cat", "Dog", "Beach")):
    """Return a Taught whose cross-validation gave these (class, answer, confidence)."""
    n = len(answers)
    examples = teach.Examples(
        LITE0,
        np.zeros((n, 4), np.float32),
        tuple(truth for truth, _, _ in answers),
        tuple(f"p{i}.jpg" for i in range(n)),
        tuple(f"{i}" for i in range(n)),
    )
    return teach.Taught(
        examples=examples,
        class_names=classes,
        weights=np.zeros((4, len(classes)), np.float32),
        bias=np.zeros(len(classes), np.float32),
        predicted=tuple(answer for _, answer, _ in answers),
        confidence=tuple(sure for _, _, sure in answers),
        folds=2,
    )


def test_the_threshold_is_the_sliders_next_step_above_the_wrong_answers_confidence():
    right = [("Cat", "Cat", p) for p in (0.99, 0.9, 0.8, 0.7, 0.65, 0.6, 0.5)]
    wrong = [("Cat", "Dog", 0.46), ("Dog", "Cat", 0.62), ("Dog", "Beach", 0.55)]
    threshold = teach.unsure_threshold(held_out(right + wrong))
    assert threshold == teach.Threshold(
        value=0.65, wrong_at_most=0.62, wrong_below=3, wrong=3, right_kept=5, right=7
    )
    # A wrong answer right at a step is still below the threshold.
    at_step = teach.unsure_threshold(held_out([*right, ("Cat", "Dog", 0.6)]))
    assert at_step.value == 0.65 and at_step.wrong_below == 1

    # Past 20 wrong answers, the surest 5% are left above it.
    many = [("Cat", "Dog", 0.3 + i / 100) for i in range(40)] + [("Cat", "Dog", 0.97)] * 2
    threshold = teach.unsure_threshold(held_out(right + many))
    assert threshold.value == 0.7 and threshold.wrong_at_most == pytest.approx(0.69)
    assert (threshold.wrong_below, threshold.wrong) == (40, 42)


def test_no_threshold_comes_from_no_mistakes_or_from_mistakes_as_sure_as_right_answers():
    right = [("Cat", "Cat", 0.9), ("Dog", "Dog", 0.8), ("Dog", "Dog", 0.99)]
    assert teach.unsure_threshold(held_out(right)) is None
    sure = teach.unsure_threshold(held_out([*right, ("Cat", "Dog", 0.96)]))
    assert sure.value is None and sure.wrong_at_most == 0.96
    # 90% would leave 2 of the 3 right answers sure, 95% only 1.
    assert teach.unsure_threshold(held_out([*right, ("Cat", "Dog", 0.85)])).value == 0.9
    most = teach.unsure_threshold(held_out([*right, ("Cat", "Dog", 0.9)]))
    assert most.value is None and (most.right_kept, most.right) == (1, 3)


def test_a_class_of_none_of_them_is_suggested_for_few_classes_or_confident_mistakes():
    many = tuple(f"c{i}" for i in range(5))
    right = [("c0", "c0", 0.9), ("c1", "c1", 0.8)]
    assert teach.needs_other_class(held_out(right))  # three classes
    assert not teach.needs_other_class(held_out(right, many))
    assert not teach.needs_other_class(held_out([*right, ("c0", "c1", 0.6)], many))
    assert teach.needs_other_class(held_out([*right, ("c0", "c1", 0.85)], many))
    named = ("Cat", "Dog", "Something else")
    assert not teach.needs_other_class(held_out(right, named))  # it has one already


def test_a_taught_models_threshold_is_kept_with_it():
    teach.save("With a threshold", teach.train(made_up_examples()), threshold=0.65)
    teach.save("Without", teach.train(made_up_examples()))
    kept = {m.name: m.details.threshold for m in models.all_models()}
    assert kept == {"With a threshold": 0.65, "Without": None}


def test_too_many_photos_are_refused_before_any_work(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_TEACH_MAX_PHOTOS", "3")
    photos = [teach.Photo(f"p{i}.jpg", b"x", "a") for i in range(4)]
    with pytest.raises(teach.TeachError, match="That is 4 photos; at most 3 can be taught"):
        teach.embed(photos)


def test_unreadable_photos_are_listed_by_name_not_dropped_silently():
    photos = [
        teach.Photo("notes.txt", b"hello, not a picture", "a"),
        teach.Photo("empty.jpg", b"", "a"),
    ]
    examples = teach.embed(photos)
    assert examples.vectors.shape[0] == 0
    assert [name for name, _ in examples.unreadable] == ["notes.txt", "empty.jpg"]
    assert "not a picture we can read" in examples.unreadable[0][1]
    assert examples.unreadable[1][1] == "The file is empty."


def test_a_base_without_weights_here_is_named(monkeypatch):
    with pytest.raises(teach.TeachError, match="MobileNetV2 cannot be the base here: its Image"):
        teach.check_base("mobilenet_v2")  # the tests are offline: no Keras weights
    with pytest.raises(teach.TeachError, match="Expected one of the built-in models"):
        teach.check_base("resnet")
    assert teach.bases() == [LITE0]


def test_a_taught_model_is_kept_replaced_only_when_asked_and_never_over_an_added_one(
    database_url, monkeypatch
):
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", database_url)
    taught = teach.train(made_up_examples())
    model = teach.save("  Desk   things ", taught)
    assert model.name == "Desk things" and model.taught and model.base == LITE0
    assert model.class_names == ("class 0", "class 1", "class 2")
    assert model.preprocessing == "as EfficientNet-Lite0"
    assert model.entry.source == "Taught from 36 photos on EfficientNet-Lite0"
    assert model.path().suffix == ".npz" and model.path().is_file()
    base, kept, version = teach.taught_examples("Desk things")
    assert version == model.entry.sha256
    assert base == LITE0 and kept.counts() == {"class 0": 12, "class 1": 12, "class 2": 12}
    assert np.array_equal(kept.vectors, taught.examples.vectors)

    with pytest.raises(ModelNameTaken, match="exists already"):
        teach.save("Desk things", taught)
    retrained = teach.train(made_up_examples(classes=2))
    again = teach.save("Desk things", retrained, replace=True)
    assert again.class_names == ("class 0", "class 1")
    assert [m.name for m in models.all_models()] == ["Desk things"]
    assert again.spec().version.split(":")[0] != model.entry.sha256  # not the old answers
    assert not model.path().exists() and again.path().is_file()  # the old head is gone

    own.registry.add_model(own.store(), "Plain", "a file", "0" * 64, {"size": 224}, b"x")
    with pytest.raises(teach.TeachError, match="“Plain” is an added model, not a taught one"):
        teach.save("Plain", taught, replace=True)


CHANGED = "“Mugs” was retrained or removed meanwhile, elsewhere; nothing was saved."


def test_a_retrain_never_writes_over_one_saved_meanwhile_nor_brings_back_a_removed_model(
    database_url, monkeypatch
):
    """Two tabs (or two people) retraining one taught model: the second to save is told."""
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", database_url)
    teach.save("Mugs", teach.train(made_up_examples(classes=2)))
    _, _, version = teach.taught_examples("Mugs")  # both start from this version
    theirs = teach.save(
        "Mugs", teach.train(made_up_examples(classes=3)), replace=True, started_from=version
    )
    mine = teach.train(made_up_examples(classes=2, per_class=6))
    with pytest.raises(models.ModelChanged, match="^" + CHANGED):
        teach.save("Mugs", mine, replace=True, started_from=version)
    assert models.find("Mugs").class_names == ("class 0", "class 1", "class 2")  # theirs

    # Saved at the same moment: the version read just before is replaced, or nothing is.
    stale = own.registry.get_model(own.store(), "Mugs")
    teach.save("Mugs", mine, replace=True, started_from=theirs.entry.sha256)
    with pytest.raises(models.ModelChanged, match="^" + CHANGED):
        own.keep("Mugs", "x", {"size": 224}, b"x", replacing=stale)
    assert models.find("Mugs").class_names == ("class 0", "class 1")

    assert own.remove("Mugs")
    with pytest.raises(models.ModelChanged, match="^" + CHANGED):
        teach.save("Mugs", mine, replace=True, started_from=version)
    assert models.all_models() == []  # not brought back


def test_the_same_photo_counts_once_and_never_in_two_classes():
    examples = made_up_examples(classes=2, per_class=4)
    repeated = examples.take([0, 0, 1, 2, 3, 4, 5, 6, 7])  # photo 0 twice in "class 0"
    taught = teach.train(repeated)
    assert len(taught.examples.labels) == 8  # once
    twice = teach.Examples(
        LITE0,
        examples.vectors[[0, 1, 4, 5]],
        ("class 0", "class 0", "class 1", "class 1"),
        ("a.jpg", "b.jpg", "copy of a.jpg", "d.jpg"),
        (examples.digests[0], examples.digests[1], examples.digests[0], examples.digests[5]),
    )
    with pytest.raises(teach.TeachError, match=r"The same photo is in two classes: “a\.jpg” in"):
        teach.train(twice)


def test_training_past_the_photo_limit_is_refused(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_TEACH_MAX_PHOTOS", "20")
    with pytest.raises(teach.TeachError, match="That is 36 photos; at most 20 can be taught"):
        teach.train(made_up_examples())


def test_an_unwritable_cache_folder_is_replaced_and_a_failed_export_is_not_retried_at_once(
    tmp_path, monkeypatch
):
    from classifier.runtime.child import ChildFailed

    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CLASSIFIER_CACHE_DIR", str(blocker / "cache"))
    path = teach.features_path(LITE0)
    assert path.parent == cache.fallback_cache_dir()  # as the classifier's own engine files
    calls = []

    def failing_child(*arguments):
        calls.append(arguments)
        raise ChildFailed("The program reading it stopped (exit status 1).")

    monkeypatch.setattr(derived, "run_convert", failing_child)
    monkeypatch.setattr(cache, "verify_engine_file", lambda path: "there is no such file")
    for _ in range(2):
        with pytest.raises(teach.TeachError, match="The program reading it stopped"):
            teach.extractor(LITE0)
    assert len(calls) == 1  # the failure is remembered for a while
    derived._export_failures.clear()


# --- Real photos on EfficientNet-Lite0's features ----------------------------------------


def photo_set(held_out: dict[str, list[bytes]], names: tuple[str, ...]) -> list[teach.Photo]:
    return [
        teach.Photo(f"{name}{i}.jpg", data, name)
        for name in names
        for i, data in enumerate(held_out[name])
    ]


@pytest.mark.slow
def test_the_downloaded_zip_answers_as_the_app_raw_and_added_back(image_folder):
    from ai_edge_litert.interpreter import Interpreter

    _, photos = image_folder
    examples = teach.embed(photo_set(photos, ("Cat", "Coffee", "Striped")))
    teach.save("Three things", teach.train(examples))
    archive = models.download("Three things")
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        assert sorted(opened.namelist()) == ["labels.txt", "model_unquant.tflite"]
        assert opened.read("labels.txt") == b"0 Cat\n1 Coffee\n2 Striped\n"
        interpreter = Interpreter(model_content=opened.read("model_unquant.tflite"))
    interpreter.allocate_tensors()
    given, answer = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    models.save("Three things again", models.read_model(archive), "minus_one_to_one")
    for data in [*photos["Cat"][:2], *photos["Coffee"][:2], *photos["Dotted"][:2]]:
        ours = classify(data, "Three things")
        pixels = ours.model_input.astype(np.float32)[np.newaxis] / 127.5 - 1
        interpreter.set_tensor(given["index"], pixels)
        interpreter.invoke()
        raw = interpreter.get_tensor(answer["index"])[0]
        assert np.argmax(raw) == ours.top1.index
        assert raw == pytest.approx(ours.probabilities, abs=1e-4)
        back = classify(data, "Three things again")
        assert back.top1.label == ours.top1.label
        assert back.probabilities == pytest.approx(ours.probabilities, abs=1e-4)


@pytest.mark.slow
def test_vectors_are_cached_by_content_so_retraining_computes_none_again(image_folder, monkeypatch):
    _, photos = image_folder
    first = teach.embed(photo_set(photos, ("Cat", "Plain")))

    def no_extractor(base):
        raise AssertionError("a cached vector was computed again")

    monkeypatch.setattr(teach, "extractor", no_extractor)
    again = teach.embed(photo_set(photos, ("Cat", "Plain")))
    assert np.array_equal(first.vectors, again.vectors)


@pytest.mark.slow
def test_every_built_in_network_gives_the_vector_its_classifier_reads():
    """Any base can be picked where its weights are: each gives its pooled features."""
    from classifier.models import convert

    dimensions = {
        "mobilenet_v2": 1280,
        "mobilenet": 1024,
        "mobilenet_v3_small": 1024,
        "mobilenet_v3_large": 1280,
        LITE0: 1280,
    }
    assert set(dimensions) == set(models.MODELS)
    for name, expected in dimensions.items():
        model = models.get_spec(name).build(None)  # random weights: the same layers
        features = convert._feature_model(model)
        assert features.output_shape == (None, expected), name
        batch = np.random.default_rng(0).uniform(0, 1, (1, 224, 224, 3)).astype(np.float32)
        classifier = next(layer for layer in reversed(model.layers) if layer.weights)
        # The classifier layer applied to the vector gives the model's own probabilities.
        kernel, bias = (np.asarray(w) for w in classifier.get_weights())
        scores = np.asarray(features(batch)) @ kernel.reshape(-1, kernel.shape[-1]) + bias
        expected_probabilities = np.asarray(model(batch)).reshape(1, -1)
        assert teach.softmax(scores) == pytest.approx(expected_probabilities, abs=1e-5), name
