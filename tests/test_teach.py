"""Teach your own classes: checks, the head, keeping and retraining, the CLI, the Teach page.

The fast tests need no network file: class checks, the head on made-up vectors (against
scikit-learn's own probabilities), the registry on both databases, bad input. The slow
ones use EfficientNet-Lite0's real feature extractor on the shipped photos, Pillow-made
variations of them and drawn classes (stripes, dots, plain), and compare the downloaded
Teachable Machine zip with the app's own answers.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from classifier import models, teach
from classifier.history.registry import ModelNameTaken
from classifier.models import derived, own
from classifier.predict import classify
from classifier.runtime import cache
from tests.conftest import ROOT
from tests.helpers import cli

EXAMPLES = ROOT / "assets" / "examples"
LITE0 = "efficientnet_lite0"


pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)


def made_up_examples(
    classes: int = 3, per_class: int = 12, dimensions: int = 64, seed: int = 0
) -> teach.Examples:
    """Vectors with class structure (a mean per class plus noise, non-negative like ReLU's)."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(0, 2, (classes, dimensions))
    vectors, labels = [], []
    for c in range(classes):
        vectors.append(np.maximum(means[c] + rng.normal(0, 0.6, (per_class, dimensions)), 0))
        labels += [f"class {c}"] * per_class
    n = classes * per_class
    return teach.Examples(
        base=LITE0,
        vectors=np.concatenate(vectors).astype(np.float32),
        labels=tuple(labels),
        names=tuple(f"photo{i}.jpg" for i in range(n)),
        digests=tuple(f"{i:064x}" for i in range(n)),
    )


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
    base, kept = teach.taught_examples("Desk things")
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


def test_the_command_line_names_what_is_wrong_with_a_folder(tmp_path):
    folder = tmp_path / "photos"
    (folder / "only").mkdir(parents=True)
    (folder / "only" / "a.jpg").write_bytes((EXAMPLES / "cat.jpg").read_bytes())
    (folder / "loose.jpg").write_bytes((EXAMPLES / "cat.jpg").read_bytes())
    done = cli("teach", "Mugs", str(folder))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"ignored 1 file(s) directly in {folder}: put each class's photos in a folder "
        "named after the class",
        "error: Teach at least 2 classes; there is 1.",
    ]
    missing = cli("teach", "Mugs", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "No such folder" in missing.stderr
    base = cli("teach", "Mugs", str(folder), "--base", "mobilenet_v2")
    assert base.returncode == 1 and "MobileNetV2 cannot be the base here" in base.stderr


# --- Real photos on EfficientNet-Lite0's features ----------------------------------------


def encode(picture: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def variations(picture: Image.Image, count: int, seed: int) -> list[Image.Image]:
    """Crops, flips, small turns and colour shifts of a picture."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        w, h = picture.size
        left, top = rng.uniform(0, 0.15) * w, rng.uniform(0, 0.15) * h
        right, bottom = w - rng.uniform(0, 0.15) * w, h - rng.uniform(0, 0.15) * h
        varied = picture.crop((int(left), int(top), int(right), int(bottom)))
        if rng.random() < 0.5:
            varied = ImageOps.mirror(varied)
        varied = varied.rotate(rng.uniform(-12, 12), resample=Image.Resampling.BILINEAR)
        varied = ImageEnhance.Color(varied).enhance(rng.uniform(0.6, 1.4))
        varied = ImageEnhance.Brightness(varied).enhance(rng.uniform(0.75, 1.25))
        out.append(varied)
    return out


def drawn(kind: str, seed: int) -> Image.Image:
    """A picture of stripes, dots or nothing, in random colours and spacing."""
    rng = np.random.default_rng(seed)
    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    ink = tuple(int(v) for v in rng.integers(0, 256, 3))
    picture = Image.new("RGB", (320, 256), background)
    draw = ImageDraw.Draw(picture)
    step = int(rng.integers(16, 40))
    if kind == "Striped":
        for x in range(0, 640, step):
            draw.line([(x, 0), (x - 256, 256)], fill=ink, width=step // 3)
    elif kind == "Dotted":
        for x in range(step // 2, 320, step):
            for y in range(step // 2, 256, step):
                r = step // 5
                draw.ellipse([x - r, y - r, x + r, y + r], fill=ink)
    noise = rng.normal(0, 6, (256, 320, 3))
    return Image.fromarray(np.clip(np.asarray(picture) + noise, 0, 255).astype(np.uint8))


TRAIN_PER_CLASS, HELD_OUT_PER_CLASS = 8, 6


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> tuple[Path, dict[str, list[bytes]]]:
    """An ImageFolder (one folder per class) to teach from, and held-out photos per class."""
    root = tmp_path_factory.mktemp("image_folder")
    held_out: dict[str, list[bytes]] = {}
    classes: dict[str, list[Image.Image]] = {}
    for number, name in enumerate(("cat", "coffee", "rocket")):
        with Image.open(EXAMPLES / f"{name}.jpg") as photo:
            classes[name.capitalize()] = variations(
                photo.convert("RGB"), TRAIN_PER_CLASS + HELD_OUT_PER_CLASS, seed=number
            )
    for number, kind in enumerate(("Striped", "Dotted", "Plain")):
        count = TRAIN_PER_CLASS + HELD_OUT_PER_CLASS
        classes[kind] = [drawn(kind, seed=100 * number + i) for i in range(count)]
    for name, pictures in classes.items():
        folder = root / name
        folder.mkdir()
        for i, picture in enumerate(pictures[:TRAIN_PER_CLASS]):
            (folder / f"{i:02d}.jpg").write_bytes(encode(picture))
        held_out[name] = [encode(p) for p in pictures[TRAIN_PER_CLASS:]]
    (root / "Plain" / "notes.txt").write_text("not a photo")
    return root, held_out


@pytest.mark.slow
def test_taught_from_a_folder_per_class_it_classifies_held_out_photos(image_folder):
    root, held_out = image_folder
    done = cli("teach", "Six things", str(root))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("cross-validated accuracy (5 folds): ")
    assert lines[0].endswith("over 48 photos")
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(held_out)
    assert f"skipped {root / 'Plain' / 'notes.txt'}: This file is not a picture" in done.stderr
    assert 'saved Six things: classify with --model "Six things"' in done.stderr

    right = total = 0
    for name, photos in held_out.items():
        for data in photos:
            right += classify(data, "Six things").top1.label == name
            total += 1
    assert right / total >= 0.9, f"{right} of {total} held-out photos right"

    answer = cli("predict", "--model", "Six things", "--json", str(root / "Cat" / "00.jpg"))
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)[0]["top_k"][0]["label"] == "Cat"
    again = cli("teach", "Six things", str(root))
    assert again.returncode == 0 and "retrained Six things" in again.stderr


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
    archive = teach.teachable_machine_zip("Three things")
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


# --- The Teach page (AppTest) -----------------------------------------------------------


def app():
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)


def uploads(held_out: dict[str, list[bytes]], name: str, count: int) -> list[tuple]:
    return [(f"{name}{i}.jpg", data, "image/jpeg") for i, data in enumerate(held_out[name][:count])]


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_the_teach_page_says_when_teaching_is_turned_off(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_ALLOW_MODEL_UPLOADS", "0")
    at = app().run()
    at.switch_page("pages/teach.py").run()
    assert not at.exception
    assert "Teaching models is turned off on this server" in at.info[0].value
    assert not at.get("file_uploader")


def test_the_teach_page_names_bad_input_before_any_work():
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.text_input(key="teach_name_0").set_value("Mug")
    at.text_input(key="teach_name_1").set_value("mug").run()
    button(at, "Train").click().run()
    assert not at.exception
    assert at.error[0].value.startswith("Two classes are called “mug”")
    at.text_input(key="teach_name_1").set_value("Cup").run()
    button(at, "Train").click().run()
    assert at.error[0].value == "Give each class at least 2 photos, then train."
    assert not at.metric  # nothing trained, nothing to save
    assert "Save model" not in [b.label for b in at.button]


@pytest.mark.slow
def test_teach_on_the_page_save_classify_then_retrain_under_the_same_name(image_folder):
    _, photos = image_folder
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.text_input(key="teach_name_0").set_value("Cat")
    at.text_input(key="teach_name_1").set_value("Coffee")
    at.file_uploader(key="teach_upload_0").set_value(uploads(photos, "Cat", 4)).run()
    at.file_uploader(key="teach_upload_1").set_value(uploads(photos, "Coffee", 1)).run()
    assert [m.value for m in at.markdown if "photo" in m.value] == ["**4 photos**", "**1 photo**"]
    button(at, "Train").click().run()
    assert at.error[0].value.startswith("The class “Coffee” has 1 photo; each class needs")

    at.file_uploader(key="teach_upload_1").set_value(uploads(photos, "Coffee", 4)).run()
    button(at, "Train").click().run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "100%"
    table = at.dataframe[0].value
    assert table["class"].tolist() == ["Cat", "Coffee"] and table["photos"].tolist() == [4, 4]
    assert len(at.get("vega_lite_chart")) == 1  # the confusion matrix
    at.text_input(key="teach_model_name").set_value("Cat or coffee").run()
    button(at, "Save model").click().run()
    assert any(s.value.startswith("Saved Cat or coffee.") for s in at.success)
    assert at.session_state["kept_model"] == "Cat or coffee"
    assert button(at, "Save model").disabled  # saved: nothing new to save
    assert "Saved as Cat or coffee." in [c.value for c in at.caption]
    assert at.button(key="prepare_download_Cat or coffee")

    at.switch_page("pages/classify.py").run()
    picker = at.sidebar.selectbox(key="model")
    assert picker.value == "Cat or coffee"
    assert "Cat or coffee (taught)" in picker.options  # as the person reads them
    at.file_uploader(key="uploads").set_value(uploads(photos, "Coffee", 6)[5:]).run()
    assert not at.exception
    assert at.subheader[0].value.startswith("Coffee · ")
    (saved,) = own.store().find()
    assert saved.model == "Cat or coffee" and saved.top_k[0].label == "Coffee"

    # Later: a third class and more photos, trained again under the same name.
    at.switch_page("pages/teach.py").run()
    at.selectbox(key="teach_start").set_value("Cat or coffee").run()
    assert [m.value for m in at.markdown if "photo" in m.value] == [
        "**4 photos** (4 from before)",
        "**4 photos** (4 from before)",
    ]
    button(at, "Add a class").click().run()
    at.text_input(key="teach_name_4").set_value("Rocket")
    at.file_uploader(key="teach_upload_4").set_value(uploads(photos, "Striped", 3)).run()
    button(at, "Train").click().run()
    assert at.dataframe[0].value["photos"].tolist() == [4, 4, 3]
    assert at.text_input(key="teach_model_name").value == "Cat or coffee"
    button(at, "Save model").click().run()
    assert not at.exception and not at.error
    (model,) = models.all_models()
    assert model.name == "Cat or coffee" and model.class_names == ("Cat", "Coffee", "Rocket")
    assert model.entry.details["photos"] == 11
    assert models.load("Cat or coffee").engine.classes == 3


def test_photos_saved_in_the_history_can_be_added_to_a_class():
    from classifier import images
    from tests.helpers import make_record, ranked

    store = own.store()  # the history's database
    for name, label in (("cat.jpg", "tabby cat"), ("coffee.jpg", "espresso")):
        picture = images.decode_image((EXAMPLES / name).read_bytes()).image
        store.add(
            make_record(
                file_name=name, top_k=ranked(label, 0.9), thumbnail=images.make_thumbnail(picture)
            )
        )
    store.add(make_record(file_name="no picture kept.jpg", thumbnail=None))
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.toggle(key="teach_use_history_0").set_value(True).run()
    picker = at.multiselect(key="teach_history_pick_0")
    assert len(picker.options) == 2  # the row without a picture is not offered
    at.text_input(key="teach_history_search_0").set_value("tabby").run()
    picker = at.multiselect(key="teach_history_pick_0")
    (only,) = picker.options
    assert "cat.jpg · tabby cat" in only
    picker.set_value([only]).run()
    button(at, "Add them").click().run()
    assert not at.exception
    assert [m.value for m in at.markdown if "photo" in m.value] == ["**1 photo**", "**0 photos**"]


def test_the_models_page_lists_a_taught_model_with_its_accuracy_and_download():
    teach.save("Made up", teach.train(made_up_examples()))
    at = app().run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    yours = at.dataframe[1].value
    assert yours["name"].tolist() == ["Made up"]
    assert yours["preprocessing"].tolist() == ["as EfficientNet-Lite0"]
    assert yours["source"].tolist() == ["Taught from 36 photos on EfficientNet-Lite0"]
    assert any(
        c.value == "Taught from 36 photos on EfficientNet-Lite0; cross-validated accuracy "
        "100%. Retrain it on the Teach page."
        for c in at.caption
    )
    assert at.button(key="prepare_download_Made up").label == "Prepare a download"


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


@pytest.mark.slow
def test_photos_taken_for_another_class_are_shown_with_what_they_were_taken_for(image_folder):
    _, photos = image_folder
    mixed = [*photos["Cat"][:3], *photos["Coffee"][:3]]  # both classes hold the same kinds
    other = [*photos["Cat"][3:6], *photos["Coffee"][3:6]]
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.text_input(key="teach_name_0").set_value("Left")
    at.text_input(key="teach_name_1").set_value("Right")
    at.file_uploader(key="teach_upload_0").set_value(
        [(f"left{i}.jpg", data, "image/jpeg") for i, data in enumerate(mixed)]
    ).run()
    at.file_uploader(key="teach_upload_1").set_value(
        [(f"right{i}.jpg", data, "image/jpeg") for i, data in enumerate(other)]
    ).run()
    button(at, "Train").click().run()
    assert not at.exception and not at.error
    accuracy = int(at.metric[0].value.rstrip("%"))
    assert accuracy < 100
    (heading,) = [m.value for m in at.markdown if m.value.startswith("**Taken for another")]
    mistakes = int(heading.split("(")[1].rstrip(")*"))
    assert mistakes == round(12 * (100 - accuracy) / 100)
    captions = [c for element in at.get("image") for c in element.proto.imgs if c.caption]
    assert len(captions) == mistakes
    pattern = r"(left|right)\d\.jpg: (Left, taken for Right|Right, taken for Left)"
    assert all(re.fullmatch(pattern, c.caption) for c in captions), captions


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


def test_the_teach_page_refuses_files_over_the_size_limit_as_they_arrive(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_MAX_BYTES", str(30_000))
    at = app().run()
    at.switch_page("pages/teach.py").run()
    small = (EXAMPLES / "cat.jpg").read_bytes()
    assert len(small) < 30_000
    big = (EXAMPLES / "coffee.jpg").read_bytes()
    assert len(big) > 30_000
    at.file_uploader(key="teach_upload_0").set_value(
        [("cat.jpg", small, "image/jpeg"), ("coffee.jpg", big, "image/jpeg")]
    ).run()
    assert not at.exception
    assert next(m.value for m in at.markdown if "photo" in m.value) == "**1 photo**"
    assert at.warning[0].value.startswith("Not taken: coffee.jpg (over ")
