"""Every kind of model goes through the same door: built in, added, taught.

One table, one test: each kind classifies the cat, explains it, is saved to the history
under its name, and (for the kinds people keep) is removed. The added model is the app's
own EfficientNet-Lite0 LiteRT file added with ImageNet's labels; the taught one is taught
here from the example photos and scikit-image's.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageOps

from classifier import explain, images, labels, models, teach
from classifier.history import NewRecord
from classifier.models import own
from classifier.predict import classify
from tests.conftest import ROOT
from tests.helpers import CAT_CLASSES

pytestmark = pytest.mark.slow
EXAMPLES = ROOT / "assets" / "examples"


def flipped(data: bytes) -> bytes:
    """Return a photo mirrored left to right, as another JPEG (another photo to teach)."""
    buffer = io.BytesIO()
    ImageOps.mirror(Image.open(io.BytesIO(data)).convert("RGB")).save(buffer, "JPEG")
    return buffer.getvalue()


def keep_a_model_of(kind: models.Kind, lite0_tflite: bytes, chelsea_png, coffee_jpeg) -> str:
    """Keep a model of this kind (a built-in one is there already); return its name."""
    if kind is models.Kind.BUILTIN:
        return models.FALLBACK_MODEL
    if kind is models.Kind.ADDED:
        names = "\n".join(labels.labels()).encode()
        candidate = models.read_model(lite0_tflite, names)
        return models.save("Lite0 as added", candidate, "minus_one_to_one").name
    cat, coffee = (EXAMPLES / "cat.jpg").read_bytes(), (EXAMPLES / "coffee.jpg").read_bytes()
    photos = [
        teach.Photo(f"cat {i}", data, "Cat") for i, data in enumerate([cat, flipped(cat)])
    ] + [
        teach.Photo(f"coffee {i}", data, "Coffee")
        for i, data in enumerate([coffee, flipped(coffee), coffee_jpeg])
    ]
    taught = teach.train(teach.embed(photos, models.FALLBACK_MODEL))
    return teach.save("Cat or coffee", taught).name


@pytest.mark.parametrize("kind", list(models.Kind), ids=[k.value for k in models.Kind])
def test_every_kind_classifies_the_cat_explains_it_saves_it_and_is_removed(
    kind, own_database, lite0, lite0_tflite, chelsea_png, coffee_jpeg
):
    name = keep_a_model_of(kind, lite0_tflite, chelsea_png, coffee_jpeg)
    loaded = models.load(name)
    assert loaded.spec.kind is kind and loaded.requested == name

    prediction = classify(chelsea_png, loaded)
    cat = {"Cat"} if kind is models.Kind.TAUGHT else CAT_CLASSES
    assert prediction.top1.label in cat, prediction.top(3)

    found = explain.explain(loaded, prediction.model_input)
    expected = explain.OCCLUSION if kind is models.Kind.ADDED else explain.CAM
    assert found.method == expected
    heat = found.map(prediction.top1.index)
    assert heat.ndim == 2 and heat.min() >= 0 and heat.max() <= 1
    assert found.probabilities.argmax() == prediction.top1.index  # the same answer
    if kind is not models.Kind.TAUGHT:  # a taught head may say "cat" through its bias alone
        assert heat.max() == pytest.approx(1.0)

    store = own.store()
    record_id = store.add(
        NewRecord.from_prediction(prediction, "chelsea.png", images.content_digest(chelsea_png), 3)
    )
    saved = store.get(record_id)
    assert saved.model == name and saved.top_k[0].label == prediction.top1.label

    if kind is models.Kind.BUILTIN:
        assert not models.remove(name)  # the app's own networks stay
        assert name in models.names(None)
        return
    assert models.remove(name)
    assert name not in models.names(own.EVERYONE)
    with pytest.raises(models.UnknownModel):
        models.choose(name)
    assert store.get(record_id).model == name  # its predictions stay in the history
