"""Reading model files someone adds: `classifier/models/upload.py` and `models.read_model`.

The fast tests need no TensorFlow: formats, zips, labels, scalings, names. The slow ones
read real model files built with the libraries that write them (`tests/model_fixtures.py`,
the `made` fixture in `tests/conftest.py`) and compare the app's answers with reference runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from classifier import models
from classifier.config import SettingsError, read_settings
from classifier.models import ModelFileError, upload
from classifier.predict import classify
from tests import model_fixtures as mf
from tests.conftest import EXAMPLES, PHOTOS, photo

pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)


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
    data = mf.zip_of({"labels.txt": b"0 a\n", "model.tflite": bytes(2_000_000)})
    assert len(data) < 100_000  # small to upload, big once expanded
    with pytest.raises(
        ModelFileError, match=r"model\.tflite in this zip is 2 MB; a file up to 1 MB"
    ):
        upload.read_upload(data, None, 1_000_000)


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


def test_adding_models_can_be_turned_off_and_a_typo_is_named():
    assert read_settings({}, secrets=()).allow_model_uploads is True
    assert (
        read_settings({"CLASSIFIER_ALLOW_MODEL_UPLOADS": "0"}, secrets=()).allow_model_uploads
        is False
    )
    with pytest.raises(SettingsError, match="CLASSIFIER_ALLOW_MODEL_UPLOADS"):
        read_settings({"CLASSIFIER_ALLOW_MODEL_UPLOADS": "maybe"}, secrets=())


# --- Real model files (built with tf-keras and the TFLite converter) ------------------


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
    raw = Interpreter(model_content=candidate.data)
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
                "model_unquant.tflite": models.read_model(made["float_zip"]).data,
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
