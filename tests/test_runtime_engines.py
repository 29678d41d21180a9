"""The LiteRT engine against Keras, for every built-in model."""

import subprocess
import sys

import numpy as np
import pytest

from classifier import models
from classifier.models import derived
from classifier.runtime import cache, engines
from tests.conftest import ROOT
from tests.helpers import CAT_CLASSES


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, size=(2, 224, 224, 3)).astype(np.float32)


def randomize(model, rng: np.random.Generator) -> None:
    """Give a model random weights that keep activations alive through every layer.

    Keras's initial weights make these networks answer 0.001 for every class,
    which any two engines would "agree" on.
    """
    for variable in model.weights:
        shape, path = tuple(variable.shape), variable.path
        if "moving_variance" in path or "gamma" in path:
            value = rng.uniform(0.5, 1.5, shape)
        elif "moving_mean" in path or "beta" in path or "bias" in path:
            value = rng.normal(0, 0.1, shape)
        else:
            fan_in = shape[0] * shape[1] if shape[-1] == 1 else int(np.prod(shape[:-1]))
            value = rng.normal(0, np.sqrt(2 / fan_in), shape)
        variable.assign(value.astype(np.float32))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(models.MODELS))
def test_litert_matches_keras(name, inputs, tmp_path):
    spec = models.get_spec(name)
    if name == models.FALLBACK_MODEL:
        model = spec.build(spec.weights_file())  # its real ImageNet weights ship
    else:
        model = spec.build(None)  # the architecture; ImageNet weights are not to be had here
        randomize(model, np.random.default_rng(1))
    assert model.count_params() == spec.parameters  # what the models page shows
    batch = spec.preprocess(inputs)
    expected = np.asarray(model(batch, training=False))
    path = cache.export_litert(model, tmp_path / f"{name}.tflite")

    litert = engines.LiteRTEngine(path, num_threads=2).run(batch)
    assert litert.shape == (2, 1000)
    np.testing.assert_allclose(litert, expected, atol=1e-4)
    np.testing.assert_allclose(litert.sum(axis=1), 1.0, atol=1e-4)  # softmax applied once
    assert litert.max() > 0.02  # a real, peaked answer, not 0.001 everywhere


def test_keras_fallback_engine_matches_litert(lite0, inputs):
    batch = lite0.spec.preprocess(inputs)
    keras_engine = engines.KerasEngine(lite0.spec.build(lite0.spec.weights_file()))
    np.testing.assert_allclose(keras_engine.run(batch), lite0.engine.run(batch), atol=1e-4)


def test_engine_handles_changing_batch_sizes(lite0, inputs):
    batch = lite0.spec.preprocess(inputs)
    pair = lite0.engine.run(batch)
    single = lite0.engine.run(batch[1:])
    np.testing.assert_allclose(single[0], pair[1], atol=1e-5)


def load_into(cache_dir, monkeypatch) -> models.LoadedModel:
    """Load EfficientNet-Lite0 with an engine cache of its own: a first-ever load."""
    monkeypatch.setenv("CLASSIFIER_CACHE_DIR", str(cache_dir))
    return models.load("efficientnet_lite0")


def test_default_model_falls_back_to_lite0_offline_with_a_notice():
    loaded = models.load("mobilenet_v2")
    assert loaded.name == "efficientnet_lite0"
    assert loaded.requested == "mobilenet_v2"
    assert "MobileNetV2 is not available here" in loaded.notice
    assert "Using EfficientNet-Lite0 instead" in loaded.notice


def test_cached_engine_is_found_by_key(lite0):
    path = models.cached_engine_path("efficientnet_lite0")
    assert path is not None and path.is_file()
    assert cache.verify_engine_file(path) is None  # its export recorded size and sha256
    assert models.cached_engine_path("mobilenet_v2") is None  # no weights, no engine


@pytest.mark.slow
def test_first_load_answers_while_the_litert_file_is_exported(tmp_path, monkeypatch, coffee_jpeg):
    from classifier.predict import classify

    loaded = load_into(tmp_path, monkeypatch)
    assert isinstance(loaded.engine, engines.ExportingEngine)
    early = classify(coffee_jpeg, loaded)
    assert early.backend == "Keras"  # the export starts only after this first answer
    assert early.top1.label == "espresso"
    loaded.engine.wait()
    assert loaded.engine.backend == "LiteRT"
    path = models.cached_engine_path("efficientnet_lite0", tmp_path)
    assert path is not None and cache.verify_engine_file(path) is None
    assert loaded.cache_notice == ""  # a first load is nothing to tell
    late = classify(coffee_jpeg, loaded)
    np.testing.assert_allclose(late.probabilities, early.probabilities, atol=1e-4)


@pytest.mark.slow
def test_a_failed_export_leaves_a_compiled_keras_model_answering(
    tmp_path, monkeypatch, coffee_jpeg
):
    from classifier.predict import classify

    def fail(model, path):
        raise OSError("disk full")

    monkeypatch.setattr(cache, "export_litert", fail)
    loaded = load_into(tmp_path, monkeypatch)
    classify(coffee_jpeg, loaded)
    loaded.engine.wait()
    after = classify(coffee_jpeg, loaded)
    assert after.backend == "Keras"
    assert after.top1.label == "espresso"
    assert models.cached_engine_path("efficientnet_lite0", tmp_path) is None


@pytest.mark.slow
def test_without_litert_a_compiled_keras_model_answers(tmp_path, monkeypatch, coffee_jpeg):
    from classifier.predict import classify

    monkeypatch.setattr(derived, "litert_available", lambda: False)
    loaded = load_into(tmp_path, monkeypatch)
    assert isinstance(loaded.engine, engines.KerasEngine)
    prediction = classify(coffee_jpeg, loaded)
    assert prediction.backend == "Keras"
    assert prediction.top1.label == "espresso"
    assert not list(tmp_path.iterdir())  # nothing to export without LiteRT


def test_models_that_fall_back_share_one_engine(lite0):
    first = models.load("mobilenet_v2")
    second = models.load("mobilenet_v3_small")
    assert first.requested == "mobilenet_v2" and second.requested == "mobilenet_v3_small"
    assert first.engine is second.engine is lite0.engine


def test_new_weights_get_a_new_engine_file(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"one")
    first = cache.engine_path("efficientnet_lite0", weights, tmp_path)
    weights.write_bytes(b"other")
    assert cache.engine_path("efficientnet_lite0", weights, tmp_path) != first


def test_loading_a_cached_model_does_not_import_tensorflow(lite0, chelsea_png, tmp_path):
    photo = tmp_path / "chelsea.png"
    photo.write_bytes(chelsea_png)
    script = (
        "import sys, pathlib\n"
        "from classifier.predict import classify\n"
        f"p = classify(pathlib.Path({str(photo)!r}).read_bytes(), 'efficientnet_lite0')\n"
        "assert p.backend == 'LiteRT', p.backend\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "assert 'keras' not in sys.modules, 'keras was imported'\n"
        "print(p.top1.label)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in CAT_CLASSES
