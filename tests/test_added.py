"""Your own model: reading model files safely, keeping them, and serving them like the zoo's.

The fast tests need no TensorFlow: formats, zips, labels, names, the registry on both
databases. The slow ones build real model files with the libraries that write them
(`tests/model_fixtures.py`) and compare the app's answers with reference runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from classifier import history, images, models
from classifier.config import SettingsError, read_settings
from classifier.history import registry
from classifier.models import ModelFileError, own, upload
from classifier.predict import classify
from tests import model_fixtures as mf
from tests.conftest import ROOT
from tests.helpers import app_test, cli

EXAMPLES = ROOT / "assets" / "examples"
PHOTOS = ("cat", "coffee", "rocket")  # the shipped examples, one per fixture class


pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)


def photo(name: str) -> bytes:
    return (EXAMPLES / f"{name}.jpg").read_bytes()


def crop(name: str) -> np.ndarray:
    picture = images.decode_image(photo(name)).image
    return images.fit_to_input(picture, mf.SIZE, 1.0)


# --- Formats, zips and labels (no TensorFlow) -----------------------------------------


def test_teachable_machine_labels_lose_their_numbers():
    assert upload.parse_labels(b"0 Cat\n1 Golden retriever\n2 Bird\n") == (
        "Cat",
        "Golden retriever",
        "Bird",
    )


def test_plain_and_json_labels_are_read_as_written():
    assert upload.parse_labels(b"cat\r\ndog\n\n") == ("cat", "dog")
    assert upload.parse_labels(json.dumps(["a b", "ç"]).encode()) == ("a b", "ç")
    # Numbers that are not 0, 1, 2... in order are part of the names.
    assert upload.parse_labels(b"1 one\n2 two\n") == ("1 one", "2 two")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "holds no class names"),
        (b"cat\ndog\ncat\n", "names “cat” twice (lines 1 and 3)"),
        (b"cat\n\ndog\n", "Line 2 of the labels file is empty"),
        (b"[1, 2]", "must be a list of class names"),
        (b"cat\ndo\x00g\n", "Class name 2 holds control characters"),
        (b"\xff\xfe\x00", "not UTF-8 text"),
        (("x" * 201).encode(), "at most 200 are accepted"),
        ("\n".join(f"c{i}" for i in range(10_001)).encode(), "at most 10,000 are accepted"),
    ],
)
def test_unusable_labels_get_one_sentence(data, message):
    with pytest.raises(ModelFileError, match=re.escape(message)):
        upload.parse_labels(data)


def read_upload(data: bytes, labels: bytes | None = None) -> upload.ModelFile:
    """Read an upload under the default model size limit."""
    return upload.read_upload(data, labels, 100 * 1024 * 1024)


def test_a_file_that_is_no_model_is_named_so(chelsea_png):
    for data in (b"hello", chelsea_png, b""):
        with pytest.raises(ModelFileError, match="not a model this app can read"):
            read_upload(data)


@pytest.mark.parametrize("bad_name", ["../evil", "/etc/passwd", "models/../../evil", "C:/x"])
def test_a_zip_with_a_path_outside_itself_is_refused(bad_name):
    data = mf.zip_of({"labels.txt": b"0 a\n1 b\n", bad_name: b"x"})
    with pytest.raises(ModelFileError, match="outside its own folder"):
        read_upload(data)


def test_a_zip_whose_model_is_past_the_limit_is_refused_before_it_is_read():
    data = mf.zip_of({"labels.txt": b"0 a\n", "model.tflite": bytes(2 * 1024 * 1024)})
    assert len(data) < 100_000  # small to upload, big once expanded
    with pytest.raises(
        ModelFileError, match=r"model\.tflite in this zip is 2 MB; a file up to 1 MB"
    ):
        upload.read_upload(data, None, 1024 * 1024)


def test_a_zip_with_too_many_files_is_refused():
    data = mf.zip_of({f"f{i}.txt": b"" for i in range(upload.MAX_ZIP_ENTRIES + 1)})
    with pytest.raises(ModelFileError, match="at most 64 are accepted"):
        read_upload(data)


def test_a_zip_without_a_model_or_labels_says_which():
    with pytest.raises(ModelFileError, match="holds no model"):
        read_upload(mf.zip_of({"labels.txt": b"a\nb\n"}))
    fake_tflite = b"\x1c\x00\x00\x00TFL3" + bytes(32)
    with pytest.raises(ModelFileError, match=r"no labels\.txt"):
        read_upload(mf.zip_of({"model.tflite": fake_tflite, "a.txt": b"", "b.txt": b""}))


def test_formats_are_told_by_content_not_name():
    fake_tflite = b"\x1c\x00\x00\x00TFL3" + bytes(32)
    found = read_upload(mf.zip_of({"weird.bin": fake_tflite, "names.json": b'["a"]'}))
    assert (found.format, found.labels, found.teachable_machine) == ("tflite", ("a",), False)
    found = read_upload(
        mf.zip_of({"model_unquant.tflite": fake_tflite, "labels.txt": b"0 x\n1 y\n"})
    )
    assert found.teachable_machine and found.labels == ("x", "y")
    assert found.described_as == "Teachable Machine zip (model_unquant.tflite)"


def test_a_model_without_labels_asks_for_them():
    with pytest.raises(ModelFileError, match="needs a labels file"):
        models.read_model(b"\x1c\x00\x00\x00TFL3" + bytes(32))


@pytest.mark.parametrize(
    ("scale", "zero_point", "expected"),
    [
        (0.007843137718737125, 127, "minus_one_to_one"),  # Teachable Machine's quantized input
        (1 / 255, 0, "zero_to_one"),
        (1.0, 0, "raw"),
        (0.5, 3, None),
    ],
)
def test_the_scaling_of_a_quantized_input_is_read_from_its_quantization(
    scale, zero_point, expected
):
    assert upload.scaling_for_quantized_input(scale, zero_point) == expected


def test_each_scaling_maps_pixels_as_its_title_says():
    pixels = np.array([[0.0, 127.5, 255.0]], dtype=np.float32)[..., np.newaxis].repeat(3, -1)
    scaled = {name: s.scale(pixels)[0, :, 0] for name, s in upload.SCALINGS.items()}
    np.testing.assert_allclose(scaled["minus_one_to_one"], [-1, 0, 1])
    np.testing.assert_allclose(scaled["zero_to_one"], [0, 0.5, 1])
    np.testing.assert_allclose(scaled["raw"], [0, 127.5, 255])
    np.testing.assert_allclose(scaled["imagenet"], [(0 - 0.485) / 0.229, 0.0655, 2.2489], atol=1e-3)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the model a name"),
        ("   ", "Give the model a name"),
        ("x" * 61, "at most 60 characters"),
        ("MobileNetV2", "name of a built-in model"),
        ("efficientnet_lite0", "name of a built-in model"),
        ("a\x00b", "control characters"),
    ],
)
def test_unusable_model_names_are_refused(name, message):
    with pytest.raises(ModelFileError, match=re.escape(message)):
        models.check_name(name)


def test_names_are_tidied():
    assert models.check_name("  Cats   and dogs ") == "Cats and dogs"


def test_adding_models_can_be_turned_off_and_a_typo_is_named():
    assert read_settings({}, secrets=()).allow_model_uploads is True
    assert (
        read_settings({"CLASSIFIER_ALLOW_MODEL_UPLOADS": "0"}, secrets=()).allow_model_uploads
        is False
    )
    with pytest.raises(SettingsError, match="CLASSIFIER_ALLOW_MODEL_UPLOADS"):
        read_settings({"CLASSIFIER_ALLOW_MODEL_UPLOADS": "maybe"}, secrets=())


# --- The registry, on SQLite and PostgreSQL -------------------------------------------


DETAILS = {"size": 224, "classes": 2, "class_names": ["a", "b"], "scaling": "raw"}


def test_the_registry_keeps_a_model_and_its_file_together(database_url):
    store = history.HistoryStore(database_url)
    try:
        entry = registry.add_model(store, "Mine", "LiteRT file", "ab" * 32, DETAILS, b"file")
        assert [m.name for m in registry.list_models(store)] == ["Mine"]
        assert registry.get_model(store, "Mine") == entry
        assert registry.model_data(store, "Mine") == b"file"
        with pytest.raises(registry.ModelNameTaken, match="exists already"):
            registry.add_model(store, "Mine", "other", "cd" * 32, DETAILS, b"other file")
        assert registry.model_data(store, "Mine") == b"file"  # the first one is untouched
        assert registry.remove_model(store, "Mine") is True
        assert registry.remove_model(store, "Mine") is False
        assert registry.model_data(store, "Mine") is None
        assert registry.list_models(store) == []
        with store._engine.connect() as conn:  # no file left without its row
            assert conn.exec_driver_sql("SELECT count(*) FROM model_files").scalar_one() == 0
    finally:
        store.dispose()


def test_a_read_only_store_refuses_to_add_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    history.HistoryStore(url).dispose()
    store = history.HistoryStore(url, read_only=True)
    try:
        with pytest.raises(history.HistoryReadOnlyError):
            registry.add_model(store, "Mine", "x", "ab" * 32, DETAILS, b"file")
    finally:
        store.dispose()


# --- Real model files (built with tf-keras and the TFLite converter) ------------------


@pytest.fixture(scope="session")
def made(tmp_path_factory) -> dict[str, object]:
    """Every model file the slow tests use, made once per run."""
    folder = tmp_path_factory.mktemp("models")
    pictures = [crop(name) for name in PHOTOS]
    model = mf.build_teachable_machine_model(pictures)
    model.save(folder / "keras_model.h5")
    labels = mf.teachable_machine_labels()
    float_file = mf.float_tflite(model)
    quantized_file = mf.quantized_tflite(model, pictures)
    return {
        "model": model,
        "labels": labels,
        "keras_zip": mf.zip_of(
            {"keras_model.h5": (folder / "keras_model.h5").read_bytes(), "labels.txt": labels}
        ),
        "float_zip": mf.zip_of({"model_unquant.tflite": float_file, "labels.txt": labels}),
        "quantized_zip": mf.zip_of({"model.tflite": quantized_file, "labels.txt": labels}),
        "quantized": quantized_file,
        "lambda": mf.lambda_keras(folder / "lambda.keras").read_bytes(),
        "rescaling": mf.rescaling_keras(folder / "rescaling.keras").read_bytes(),
        "custom_layer": mf.custom_layer_h5(folder / "custom.h5").read_bytes(),
        "custom_op": mf.custom_op_tflite(),
    }


def reference(model, pixels: np.ndarray) -> np.ndarray:
    """The original Keras 2 model's answer on the same pixels, scaled as Teachable Machine does."""
    return model(pixels[np.newaxis].astype(np.float32) / 127.5 - 1, training=False).numpy()[0]


def nothing_kept(tmp_path: Path) -> bool:
    folder = tmp_path / "data" / "models"
    return models.all_models() == [] and (not folder.exists() or not any(folder.iterdir()))


@pytest.mark.slow
def test_a_teachable_machine_keras_zip_answers_as_the_original_model(made, tmp_path):
    candidate = models.read_model(made["keras_zip"])
    assert candidate.source == "Teachable Machine zip (keras_model.h5)"
    assert candidate.class_names == mf.TM_CLASSES
    assert candidate.detected_scaling == "minus_one_to_one"
    assert candidate.details["size"] == 224 and candidate.details["outputs"] == "probabilities"
    kept = models.save("Desk things", candidate, candidate.detected_scaling)
    loaded = models.load("Desk things")
    assert loaded.engine.backend == "LiteRT"
    for name, label in zip(PHOTOS, mf.TM_CLASSES, strict=True):
        prediction = classify(photo(name), loaded)
        assert prediction.top1.label == label
        assert prediction.model == "Desk things" and prediction.num_classes == 3
        expected = reference(made["model"], prediction.model_input)
        np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-4)
        # Teachable Machine's own snippet (ImageOps.fit with Lanczos) agrees on the class.
        fitted = ImageOps.fit(Image.open(EXAMPLES / f"{name}.jpg").convert("RGB"), (224, 224))
        assert mf.TM_CLASSES[int(np.argmax(reference(made["model"], np.asarray(fitted))))] == label
    assert kept.path().is_file()


@pytest.mark.slow
def test_a_teachable_machine_float_litert_zip_answers_as_the_raw_interpreter(made):
    from ai_edge_litert.interpreter import Interpreter

    candidate = models.read_model(made["float_zip"])
    assert candidate.detected_scaling == "minus_one_to_one"
    models.save("Desk things float", candidate, "minus_one_to_one")
    loaded = models.load("Desk things float")
    raw = Interpreter(model_content=candidate.tflite)
    raw.allocate_tensors()
    for name, label in zip(PHOTOS, mf.TM_CLASSES, strict=True):
        prediction = classify(photo(name), loaded)
        raw.set_tensor(
            raw.get_input_details()[0]["index"],
            (prediction.model_input[np.newaxis].astype(np.float32) / 127.5 - 1),
        )
        raw.invoke()
        expected = raw.get_tensor(raw.get_output_details()[0]["index"])[0]
        assert prediction.top1.label == label
        np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-4)


@pytest.mark.slow
def test_a_quantized_export_is_dequantized_and_matches_its_reference(made):
    from ai_edge_litert.interpreter import Interpreter

    candidate = models.read_model(made["quantized_zip"])
    assert (
        candidate.details["input_dtype"] == "uint8" and candidate.details["output_dtype"] == "uint8"
    )
    assert candidate.detected_scaling == "minus_one_to_one"
    models.save("Desk things quantized", candidate, "minus_one_to_one")
    loaded = models.load("Desk things quantized")
    raw = Interpreter(model_content=made["quantized"])
    raw.allocate_tensors()
    given, answer = raw.get_input_details()[0], raw.get_output_details()[0]
    scale, zero_point = answer["quantization"]
    for name, label in zip(PHOTOS, mf.TM_CLASSES, strict=True):
        prediction = classify(photo(name), loaded)
        assert prediction.probabilities.dtype == np.float32
        assert prediction.probabilities.min() >= 0 and prediction.probabilities.max() <= 1
        assert abs(prediction.probabilities.sum() - 1) < 3 * scale
        # The reference: uint8 pixels straight in, output dequantized by hand.
        raw.set_tensor(given["index"], prediction.model_input[np.newaxis])
        raw.invoke()
        expected = (raw.get_tensor(answer["index"])[0].astype(np.float32) - zero_point) * scale
        assert prediction.top1.label == label
        np.testing.assert_allclose(prediction.probabilities, expected, atol=2 / 255)
        # And close to the float model it was made from.
        float_answer = reference(made["model"], prediction.model_input)
        assert int(np.argmax(float_answer)) == int(np.argmax(prediction.probabilities))


@pytest.mark.slow
def test_a_keras_3_file_that_rescales_itself_and_gives_logits(made, chelsea_png):
    labels = b'["north", "south", "east", "west"]'
    candidate = models.read_model(made["rescaling"], labels)
    assert candidate.source == "Keras 3 file"
    assert candidate.detected_scaling == "raw"  # a Rescaling layer: the model scales itself
    assert candidate.details["outputs"] == "logits" and candidate.details["size"] == 96
    models.save("Compass", candidate, "raw")
    prediction = classify(chelsea_png, models.load("Compass"))
    assert prediction.probabilities.sum() == pytest.approx(1, abs=1e-5)  # softmax applied
    assert {c.label for c in prediction.top(10)} == {"north", "south", "east", "west"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key", "labels", "message"),
    [
        ("lambda", b"a\nb\n", "has a Lambda layer “scale_it”, which runs Python code"),
        ("custom_layer", b"a\nb\n", "uses Mine>Doubler “doubler”, which is not part of Keras"),
        ("custom_op", b"a\nb\nc\nd\n", "uses the custom operation BesselI1e"),
        ("keras_zip_wrong_labels", None, "gives 3 class scores but the labels name 2 classes"),
    ],
)
def test_unsafe_or_mismatched_models_are_refused_and_nothing_is_kept(
    made, key, labels, message, tmp_path
):
    if key == "keras_zip_wrong_labels":
        data = mf.zip_of(
            {
                "model_unquant.tflite": models.read_model(made["float_zip"]).tflite,
                "labels.txt": b"0 only\n1 two\n",
            }
        )
    else:
        data = made[key]
    with pytest.raises(ModelFileError, match=re.escape(message)):
        models.read_model(data, labels)
    assert nothing_kept(tmp_path)


@pytest.mark.slow
def test_a_damaged_litert_file_is_one_sentence_not_a_crash(made):
    broken = made["quantized"][: len(made["quantized"]) // 3]
    starts = r"^(LiteRT cannot open this model|This file could|This LiteRT file is damaged)"
    with pytest.raises(ModelFileError, match=starts):
        models.read_model(broken, b"a\nb\nc\n")


@pytest.mark.slow
def test_a_damaged_copy_in_the_data_folder_is_rewritten_from_the_database(made):
    model = models.save("Desk things", models.read_model(made["float_zip"]), "minus_one_to_one")
    path = model.path()
    path.write_bytes(b"garbage")
    spec = models.find("Desk things").spec()
    assert spec.engine_file == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == model.entry.sha256


@pytest.mark.slow
def test_removing_a_model_removes_its_file_and_its_engine(made):
    model = models.save("Gone soon", models.read_model(made["float_zip"]), "minus_one_to_one")
    models.load("Gone soon")
    assert models.remove("Gone soon") is True
    assert not model.path().exists()
    assert not models.is_loaded("Gone soon")
    with pytest.raises(
        models.UnknownModel, match=re.escape("or an added model. Received: 'Gone soon'")
    ):
        models.load("Gone soon")


@pytest.mark.slow
def test_the_command_line_adds_predicts_with_and_removes_a_model(made, tmp_path):
    zip_path = tmp_path / "converted_keras.zip"
    zip_path.write_bytes(made["keras_zip"])

    done = cli("models", "add", "Desk things", str(zip_path))
    assert done.returncode == 0, done.stderr
    assert "added Desk things: 3 classes, 224x224, minus_one_to_one" in done.stderr
    listed = cli("models")
    assert "Desk things  (added" in listed.stdout and "3: Cat, Coffee, Rocket" in listed.stdout
    done = cli("predict", "--model", "Desk things", "--json", str(EXAMPLES / "cat.jpg"))
    assert done.returncode == 0, done.stderr
    (answer,) = json.loads(done.stdout)
    assert answer["model"] == "Desk things"
    assert answer["top_k"][0]["label"] == "Cat"
    assert len(answer["top_k"]) == 3  # the default top 5, but the model has 3 classes
    expected = classify(photo("cat"), models.load("Desk things"))
    assert answer["top_k"][0]["probability"] == pytest.approx(expected.top1.probability, abs=1e-6)
    again = cli("models", "add", "Desk things", str(zip_path))
    assert again.returncode == 1 and "exists already" in again.stderr
    assert cli("models", "remove", "Desk things").returncode == 0
    gone = cli("predict", "--model", "Desk things", str(EXAMPLES / "cat.jpg"))
    assert gone.returncode == 2 and "Received: 'Desk things'" in gone.stderr


@pytest.mark.slow
def test_the_command_line_asks_for_the_preprocessing_when_the_file_does_not_say(made, tmp_path):
    model_path, labels_path = tmp_path / "plain.tflite", tmp_path / "labels.txt"
    model_path.write_bytes(models.read_model(made["float_zip"]).tflite)
    labels_path.write_text("cat\ncoffee\nrocket\n")
    args = [sys.executable, "-m", "classifier", "models", "add", "Plain", str(model_path)]
    done = subprocess.run(
        [*args, "--labels", str(labels_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "add --preprocess with one of" in done.stderr
    done = subprocess.run(
        [*args, "--labels", str(labels_path), "--preprocess", "minus_one_to_one"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [m.name for m in models.all_models()] == ["Plain"]


# --- In the app (AppTest) -------------------------------------------------------------


def app():
    import streamlit as st

    st.cache_data.clear()
    return app_test(300)


def chart_labels(at, number: int = 0) -> list[str]:
    import pyarrow as pa

    proto = at.get("vega_lite_chart")[number].proto
    return list(pa.ipc.open_stream(proto.datasets[0].data.data).read_all().to_pandas()["label"])


def test_the_models_page_says_when_adding_models_is_turned_off(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_ALLOW_MODEL_UPLOADS", "0")
    at = app().run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    assert any("Adding models is turned off on this server" in i.value for i in at.info)
    assert not at.get("file_uploader")


def test_a_file_that_is_no_model_gets_its_sentence_on_the_models_page(chelsea_png):
    at = app().run()
    at.switch_page("pages/models.py").run()
    at.file_uploader(key="add_model_0").set_value(("cat.zip", chelsea_png, "image/png")).run()
    assert not at.exception
    assert "not a model this app can read" in at.error[0].value
    assert "Add model" not in [b.label for b in at.button]  # nothing to add


@pytest.mark.slow
def test_add_a_model_on_the_models_page_then_classify_with_its_own_classes(made):
    at = app().run()
    at.switch_page("pages/models.py").run()
    zip_upload = ("converted_tflite.zip", made["float_zip"], "application/zip")
    at.file_uploader(key="add_model_0").set_value(zip_upload).run()
    assert not at.exception
    assert at.success[0].value.startswith(
        "Teachable Machine zip (model_unquant.tflite): 3 classes, input 224×224 float32"
    )
    assert at.text_input(key="add_name_0").value == ""  # Teachable Machine's file name says nothing
    assert at.selectbox(key="add_scaling_0").value == "minus_one_to_one"  # detected
    at.file_uploader(key="add_test_0").set_value(("cat.jpg", photo("cat"), "image/jpeg")).run()
    assert at.subheader[0].value.startswith("Cat · ")  # the answer before keeping it
    assert models.all_models() == []
    at.text_input(key="add_name_0").set_value("Desk things").run()
    next(b for b in at.button if b.label == "Add model").click().run()
    assert not at.exception
    assert any("Added Desk things" in s.value for s in at.success)
    assert at.session_state["kept_model"] == "Desk things"  # picked for the person
    assert "Desk things" in at.dataframe[1].value["name"].tolist()  # under "Your models"

    at.switch_page("pages/classify.py").run()
    assert at.sidebar.selectbox(key="model").value == "Desk things"
    at.file_uploader(key="uploads").set_value(("coffee.jpg", photo("coffee"), "image/jpeg")).run()
    assert not at.exception
    assert at.subheader[0].value.startswith("Coffee · ")
    assert chart_labels(at)[0] == "Coffee"
    assert sorted(chart_labels(at)) == sorted(mf.TM_CLASSES)  # top 5 of a 3-class model: 3 bars
    assert any("Added model: Teachable Machine zip" in c.value for c in at.caption)
    (saved,) = own.store().find()
    assert saved.model == "Desk things" and saved.top_k[0].label == "Coffee"
    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()
    assert at.selectbox(key=f"correction_{saved.id}").options == list(mf.TM_CLASSES)
    at.selectbox(key=f"correction_{saved.id}").set_value("Cat").run()
    assert own.store().get(saved.id).corrected_label == "Cat"

    at.switch_page("pages/history.py").run()
    assert "Desk things" in at.sidebar.multiselect(key="h_models").options
    at.sidebar.multiselect(key="h_models").set_value(["Desk things"]).run()
    assert not at.exception
    assert at.dataframe[0].value["model"].tolist() == ["Desk things"]


@pytest.mark.slow
def test_removing_a_model_asks_first_and_the_picker_forgets_it(made):
    models.save("Desk things", models.read_model(made["float_zip"]), "minus_one_to_one")
    at = app().run()
    assert "Desk things (added)" in at.sidebar.selectbox(key="model").options
    at.sidebar.selectbox(key="model").set_value("Desk things").run()
    at.switch_page("pages/models.py").run()
    at.button(key="remove_Desk things").click().run()
    assert "Remove Desk things? Its predictions stay in the history." in [
        w.value for w in at.warning
    ]
    assert models.exists("Desk things")  # not yet
    at.button(key="remove_yes_Desk things").click().run()
    assert not at.exception
    assert any(s.value == "Removed Desk things." for s in at.success)
    assert not models.exists("Desk things")
    at.switch_page("pages/classify.py").run()
    assert "Desk things (added)" not in at.sidebar.selectbox(key="model").options
    assert at.sidebar.selectbox(key="model").value == "efficientnet_lite0"  # back to the default


@pytest.mark.slow
def test_a_model_with_10000_classes_works_on_every_page(tmp_path):
    names = [f"class {i:05d}" for i in range(10_000)]
    candidate = models.read_model(mf.many_classes_tflite(10_000), json.dumps(names).encode())
    assert candidate.details["classes"] == 10_000 and candidate.detected_scaling is None
    models.save("Ten thousand", candidate, "zero_to_one")
    at = app().run()
    at.sidebar.selectbox(key="model").set_value("Ten thousand").run()
    at.file_uploader(key="uploads").set_value(
        [("cat.jpg", photo("cat"), "image/jpeg"), ("coffee.jpg", photo("coffee"), "image/jpeg")]
    ).run()
    assert not at.exception
    summary = at.dataframe[0].value
    assert len(summary) == 2 and summary["top-1"].str.startswith("class ").all()
    assert len(chart_labels(at)) == 5
    rows = own.store().find()
    assert len(rows) == 2 and {r.model for r in rows} == {"Ten thousand"}
    at.switch_page("pages/history.py").run()
    at.sidebar.multiselect(key="h_models").set_value(["Ten thousand"]).run()
    at.sidebar.text_input(key="h_label").set_value(rows[0].top_k[0].label).run()
    assert not at.exception
    assert rows[0].top_k[0].label in at.dataframe[0].value["top-1"].tolist()
    exported = own.store().export_csv().decode()
    assert exported.count("Ten thousand") == 2
