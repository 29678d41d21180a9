"""Where it looked: class activation maps against Grad-CAM, occlusion, overlays.

The fast tests check the map arithmetic and occlusion on a tiny engine of known
behaviour. The slow ones run EfficientNet-Lite0 (real ImageNet weights): its LiteRT map
against TensorFlow's GradientTape Grad-CAM on the Keras model, and a cat pasted on one
side of a grey canvas.
"""

from __future__ import annotations

import io
import itertools
import time

import numpy as np
import pytest
from PIL import Image

from classifier import explain, images, models
from classifier.models import own
from classifier.predict import classify
from tests.conftest import ROOT
from tests.helpers import app_test, cli

EXAMPLES = ROOT / "assets" / "examples"
LITE0 = "efficientnet_lite0"


pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)


def test_a_class_activation_map_weights_the_feature_map_by_the_class_and_keeps_what_speaks_for_it():
    features = np.zeros((2, 2, 3), np.float32)
    features[0, 0] = [1, 0, 0]  # top left: channel 0
    features[1, 1] = [0, 2, 0]  # bottom right: channel 1
    features[0, 1] = [0, 0, 1]  # top right: channel 2
    weights = np.array([[1.0, -1.0], [1.0, 0.0], [-3.0, 1.0]], np.float32)  # (C, classes)
    found = explain.Explanation(np.array([0.5, 0.5]), explain.CAM, features, weights)
    assert found.map(0).tolist() == [[0.5, 0.0], [0.0, 1.0]]  # -3 at top right is cut to 0
    assert found.map(1).tolist() == [[0.0, 1.0], [0.0, 0.0]]


class LeftHalfEngine:
    """Class 0 is the left half's brightness, class 1 the right half's; slow on request."""

    backend = "test"

    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds
        self.calls = 0

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.calls += len(batch)
        time.sleep(self.seconds * len(batch))
        half = batch.shape[2] // 2
        left, right = (
            batch[:, :, :half].mean(axis=(1, 2, 3)),
            batch[:, :, half:].mean(axis=(1, 2, 3)),
        )
        return np.stack([left, right], axis=1)

    def wait(self) -> None:
        return None


def bright_left(size: int = 28) -> np.ndarray:
    pixels = np.zeros((size, size, 3), np.uint8)
    pixels[:, : size // 2] = 250
    return pixels


def test_occlusion_shows_the_squares_a_class_depends_on(monkeypatch):
    spec = models.get_spec(LITE0)
    ticks = itertools.count()  # a fast engine on an idle machine: 0.1 ms a look, whatever the load
    monkeypatch.setattr(explain.time, "perf_counter", lambda: next(ticks) * 1e-4)
    found = explain.occlusion(LeftHalfEngine(), spec, bright_left())
    assert found.method == explain.OCCLUSION and found.grid.shape == (7, 7, 2)
    left_class = found.map(0)
    assert left_class[:, :3].min() > 0.5 and left_class[:, 4:].max() == 0  # only the left
    assert found.map(1)[:, :3].max() == 0  # greying the dark right half never lowers class 1


def test_occlusion_takes_a_coarser_grid_for_a_slow_model():
    spec = models.get_spec(LITE0)
    slow = LeftHalfEngine(seconds=0.05)  # 20 looks a second: a 4x4 grid
    found = explain.occlusion(slow, spec, bright_left())
    assert found.grid.shape[:2] == (4, 4)
    assert slow.calls == 1 + 16


def test_which_models_get_class_activation_maps():
    for name in ("mobilenet", "mobilenet_v2", LITE0):
        assert explain.method_for(models.get_spec(name)) == explain.CAM
    for name in ("mobilenet_v3_small", "mobilenet_v3_large"):
        assert explain.method_for(models.get_spec(name)) == explain.OCCLUSION


def test_an_overlay_is_the_crop_tinted_by_the_map_and_the_legend_runs_dark_to_bright():
    pixels = np.full((64, 64, 3), 128, np.uint8)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    picture = np.asarray(explain.overlay(pixels, heat, opacity=0.6))
    assert picture.shape == (64, 64, 3)
    assert picture[2, 2].tolist() != [128, 128, 128]  # hot corner tinted
    assert np.abs(picture[60, 60].astype(int) - 128).max() > 0  # cold areas tinted less
    assert np.asarray(explain.overlay(pixels, heat, opacity=0.0)).tolist() == pixels.tolist()
    bar = np.asarray(explain.legend(100, 5)).astype(int)
    assert bar.shape == (5, 100, 3) and bar[0, 0].sum() < bar[0, -1].sum()


# --- EfficientNet-Lite0, for real -------------------------------------------------------------


def photo(name: str) -> bytes:
    return (EXAMPLES / f"{name}.jpg").read_bytes()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.slow
def test_the_litert_map_equals_grad_cam_from_tensorflows_gradient_tape(lite0):
    import keras
    import tensorflow as tf

    prediction = classify(photo("cat"), lite0)
    found = explain.explain(lite0, prediction.model_input)
    assert found.method == explain.CAM
    assert found.probabilities == pytest.approx(prediction.probabilities, abs=1e-4)

    model = models.get_spec(LITE0).build("imagenet")
    pooling = next(x for x in model.layers if isinstance(x, keras.layers.GlobalAveragePooling2D))
    dense = model.get_layer("predictions")
    to_features = keras.Model(model.inputs, pooling.input)
    batch = tf.constant(lite0.spec.batch(prediction.model_input))
    for rank, top in enumerate(prediction.top(3)):
        with tf.GradientTape() as tape:
            features = to_features(batch)
            tape.watch(features)
            logits = tf.matmul(tf.reduce_mean(features, axis=(1, 2)), dense.kernel) + dense.bias
            score = logits[:, top.index]  # the class score before the softmax, as Grad-CAM
        gradients = tape.gradient(score, features)
        alpha = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        grad_cam = tf.nn.relu(tf.reduce_sum(alpha * features, axis=-1))[0].numpy()
        grad_cam /= grad_cam.max()
        ours = explain.upsample(found.map(top.index), 224)
        theirs = explain.upsample(grad_cam, 224)
        assert correlation(ours, theirs) >= 0.99, f"class {top.label} (rank {rank + 1})"
    assert (
        correlation(found.map(prediction.top(3)[0].index), found.map(340)) < 0.99
    )  # classes differ


@pytest.mark.slow
def test_for_a_cat_on_one_side_of_a_grey_canvas_the_map_lies_on_the_cat(lite0):
    with Image.open(EXAMPLES / "cat.jpg") as cat:
        cat = cat.convert("RGB")
    side = 448
    cat.thumbnail((side // 2, side))
    for cat_on_left in (True, False):
        canvas = Image.new("RGB", (side, side), (128, 128, 128))
        left = 0 if cat_on_left else side - cat.width
        canvas.paste(cat, (left, (side - cat.height) // 2))
        buffer = io.BytesIO()
        canvas.save(buffer, "PNG")
        prediction = classify(buffer.getvalue(), lite0)
        top = prediction.top1
        assert 281 <= top.index <= 293, top.label  # ImageNet's cats, domestic and wild
        heat = explain.upsample(explain.explain(lite0, prediction.model_input).map(top.index), 224)
        # The crop is the canvas's centre square: its middle column is the canvas's.
        on_cat = heat[:, :112].sum() if cat_on_left else heat[:, 112:].sum()
        assert on_cat / heat.sum() >= 0.7, f"{on_cat / heat.sum():.0%} on the cat's side"


@pytest.mark.slow
def test_an_added_model_gets_an_occlusion_map_with_its_own_answer():
    from tests import model_fixtures as mf

    pictures = [
        images.fit_to_input(images.decode_image(photo(name)).image, mf.SIZE, 1.0)
        for name in ("cat", "coffee", "rocket")
    ]
    model = mf.build_teachable_machine_model(pictures)
    labels = mf.teachable_machine_labels()
    archive = mf.zip_of({"model_unquant.tflite": mf.float_tflite(model), "labels.txt": labels})
    models.save("Desk things", models.read_model(archive), "minus_one_to_one")
    loaded = models.load("Desk things")
    prediction = classify(photo("coffee"), loaded)
    found = explain.explain(loaded, prediction.model_input)
    assert found.method == explain.OCCLUSION
    assert found.probabilities == pytest.approx(prediction.probabilities, abs=1e-6)
    heat = found.map(prediction.top1.index)
    assert heat.shape[0] == heat.shape[1] and explain.MIN_GRID <= heat.shape[0] <= explain.MAX_GRID
    assert heat.max() == 1.0


@pytest.mark.slow
def test_the_command_line_writes_one_map_per_picture_and_class(tmp_path):
    out = tmp_path / "maps"
    again = tmp_path / "elsewhere" / "cat.jpg"  # the same name in another folder
    again.parent.mkdir()
    again.write_bytes(photo("cat"))
    pictures = [str(EXAMPLES / "cat.jpg"), str(EXAMPLES / "coffee.jpg"), str(again)]
    command = ["predict", "--model", LITE0, "--top-k", "2"]
    done = cli(*command, "--save", "--explain", str(out), *pictures)
    assert done.returncode == 0, done.stderr
    written = sorted(path.name for path in out.iterdir())
    assert len(written) == 6
    prefixes = sorted({name.split("-")[0] for name in written})
    assert prefixes == ["cat.jpg", "cat.jpg (2)", "coffee.jpg"]  # the second cat.jpg kept too
    assert "coffee.jpg-1-espresso.png" in written
    cat_maps = sorted(name for name in written if name.startswith("cat.jpg-"))
    with Image.open(out / cat_maps[0]) as first, Image.open(out / cat_maps[1]) as second:
        assert first.size == (224, 224)
        assert np.abs(np.asarray(first, int) - np.asarray(second, int)).mean() > 1  # per class
    saved = own.store().find()
    assert len(saved) == 3 and all(row.overlay for row in saved)  # --save keeps the top map

    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    refused = cli(*command, "--explain", str(blocked), pictures[0])
    assert refused.returncode == 2 and refused.stderr.startswith(f"error: --explain {blocked}:")


@pytest.mark.slow
def test_where_it_looked_on_the_classify_page_follows_the_class_picked(lite0):
    import streamlit as st

    top = classify(photo("cat"), lite0).top(5)
    st.cache_data.clear()
    at = app_test(300).run()
    at.file_uploader(key="uploads").set_value(("cat.jpg", photo("cat"), "image/jpeg")).run()
    shown_before = len(at.get("image"))
    next(t for t in at.toggle if t.label == "Where it looked").set_value(True).run()
    assert not at.exception
    picker = next(s for s in at.selectbox if s.label == "Class")
    assert picker.value == top[0].index
    assert picker.options == [f"{t.label} · {t.probability:.0%}" for t in top]
    assert len(at.get("image")) == shown_before + 2  # the overlay and its legend
    overlay = overlay_of(at)
    assert overlay.caption.startswith(f"Where it looked for “{top[0].label}”")
    assert any(c.value.startswith("Class activation map") for c in at.caption)

    picker.set_value(top[1].index).run()
    assert not at.exception
    switched = overlay_of(at)
    assert switched.caption.startswith(f"Where it looked for “{top[1].label}”")
    assert switched.url != overlay.url  # another picture
    next(s for s in at.slider if s.label == "Opacity").set_value(0.0).run()
    assert overlay_of(at).url not in (overlay.url, switched.url)


@pytest.mark.slow
def test_where_it_looked_is_drawn_over_the_picture_itself_not_the_models_small_input(lite0):
    import base64

    import streamlit as st

    from ui.explain_view import SHOWN_SIDE

    big = Image.open(EXAMPLES / "cat.jpg").resize((1203, 800), Image.Resampling.LANCZOS)
    small = Image.open(EXAMPLES / "cat.jpg")  # 451 x 300: its square is 262 pixels
    for picture, side in ((big, SHOWN_SIDE), (small, int(300 * images.CROP_FRACTION))):
        st.cache_data.clear()
        at = app_test(300).run()
        data = encoded(picture)
        at.file_uploader(key="uploads").set_value(("cat.jpg", data, "image/jpeg")).run()
        next(t for t in at.toggle if t.label == "Where it looked").set_value(True).run()
        assert not at.exception
        url = overlay_of(at).url
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as shown:
            assert shown.size == (side, side)  # the square the network saw, not 224 x 224


def encoded(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def overlay_of(at):
    """Return the "Where it looked" picture on the page."""
    shown = [p for element in at.get("image") for p in element.proto.imgs]
    return next(p for p in shown if p.caption.startswith("Where it looked for"))


@pytest.mark.slow
def test_the_history_keeps_where_it_looked_with_the_thumbnail(lite0):
    import streamlit as st

    explain.map_engine(LITE0)  # ready, as on a server that showed a map before
    st.cache_data.clear()
    at = app_test(300).run()
    at.file_uploader(key="uploads").set_value(("cat.jpg", photo("cat"), "image/jpeg")).run()
    assert not at.exception
    (saved,) = own.store().find()
    assert saved.thumbnail and saved.overlay
    with Image.open(io.BytesIO(saved.overlay)) as kept:
        assert kept.size == (224, 224)  # the crop, as on the page
    at.switch_page("pages/history.py").run()
    assert not at.exception
    looked = at.dataframe[0].value["looked"].tolist()
    assert len(looked) == 1 and looked[0].startswith("data:image/webp;base64,")

    at.switch_page("pages/classify.py").run()
    at.sidebar.toggle(key="save_thumbnails").set_value(False).run()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", photo("coffee"), "image/jpeg")).run()
    newest = own.store().find(limit=1)[0]
    assert newest.file_name == "coffee.jpg" and newest.thumbnail is None and newest.overlay is None


@pytest.mark.slow
def test_each_of_several_pictures_offers_where_it_looked(lite0):
    import streamlit as st

    espresso = classify(photo("coffee"), lite0).top1.label
    st.cache_data.clear()
    at = app_test(300).run()
    pictures = [(f"{name}.jpg", photo(name), "image/jpeg") for name in ("cat", "coffee")]
    at.file_uploader(key="uploads").set_value(pictures).run()
    switches = [t for t in at.toggle if t.label == "Where it looked"]
    assert len(switches) == 2  # one in each picture's section
    switches[1].set_value(True).run()
    assert not at.exception
    assert overlay_of(at).caption.startswith(f"Where it looked for “{espresso}”")
