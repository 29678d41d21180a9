"""One image through the app's engine, raw LiteRT, Keras `predict` and a `tf.function`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks import lite0, photos
from benchmarks.report import Row, ratio, say
from benchmarks.timing import compare
from classifier import images, models
from classifier.config import get_settings
from classifier.runtime import cache, engines

GROUP = "Inference, 1 image"
TARGET_OVER_RAW = 1.25  # the app's engine may cost at most 25% more than raw LiteRT
APP = "app engine (LiteRTEngine)"
RAW = "raw LiteRT Interpreter"
PREDICT = "Keras model.predict"
FUNCTION = "tf.function (KerasEngine)"


def model_input(spec: models.ModelSpec) -> np.ndarray:
    """Return the cat photo as the model's preprocessed (1, size, size, 3) float32 batch."""
    pixels = images.fit_to_input(photos.sample_photo("cat"), spec.input_size)
    return spec.preprocess(pixels[np.newaxis].astype(np.float32))


def raw_litert(path: Path, batch: np.ndarray) -> Callable[[], np.ndarray]:
    """Return a call that runs the batch on a bare LiteRT interpreter, threaded like the app."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=get_settings().num_threads)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    def run() -> np.ndarray:
        interpreter.set_tensor(input_index, batch)
        interpreter.invoke()
        return interpreter.get_tensor(output_index)

    return run


def measure_model(
    name: str, app_engine: engines.Engine, tflite: Path, model, *, quick: bool, note: str = ""
) -> list[Row]:
    """Time the four ways of running one model on the same preprocessed image."""
    batch = model_input(models.get_spec(name))
    keras_engine = engines.KerasEngine(model)
    stats = compare(
        {
            APP: lambda: app_engine.run(batch),
            RAW: raw_litert(tflite, batch),
            PREDICT: lambda: model.predict(batch, verbose=0),
            FUNCTION: lambda: keras_engine.run(batch),
        },
        rounds=1 if quick else 5,
        calls=5 if quick else 10,
    )
    app_ratio = ratio(stats[APP], stats[RAW])
    rows = [
        Row(
            GROUP,
            f"{name} · {APP}",
            "ms",
            stats[APP],
            baseline="raw LiteRT",
            ratio=app_ratio,
            target=f"≤ {TARGET_OVER_RAW}× raw LiteRT",
            met=app_ratio <= TARGET_OVER_RAW,
            note=note,
        )
    ]
    for contender in (RAW, PREDICT, FUNCTION):
        rows.append(
            Row(
                GROUP,
                f"{name} · {contender}",
                "ms",
                stats[contender],
                baseline="raw LiteRT",
                ratio=ratio(stats[contender], stats[RAW]),
            )
        )
    return rows


def run(scratch: Path, *, quick: bool) -> list[Row]:
    """Measure MobileNetV2 (random weights, exported here) and EfficientNet-Lite0 (real weights)."""
    say("inference: building MobileNetV2 (weights=None) and exporting it to LiteRT")
    mobilenet = models.get_spec("mobilenet_v2").build(None)
    mobilenet_file = cache.export_litert(mobilenet, scratch / "mobilenet_v2.tflite")
    say("inference: timing mobilenet_v2")
    rows = measure_model(
        "mobilenet_v2",
        engines.LiteRTEngine(mobilenet_file, get_settings().num_threads),
        mobilenet_file,
        mobilenet,
        quick=quick,
        note="offline, load_model('mobilenet_v2') falls back to EfficientNet-Lite0, so this "
        "LiteRTEngine opens the file exported here, with the app's thread count",
    )

    say("inference: loading efficientnet_lite0 with load_model, and building it in Keras")
    loaded = lite0.load()
    keras_lite0 = loaded.spec.build(loaded.spec.weights_file())
    say("inference: timing efficientnet_lite0")
    rows += measure_model(
        lite0.NAME,
        loaded.engine,
        loaded.engine.path,
        keras_lite0,
        quick=quick,
        note="load_model on a warm engine cache, as every process after the first export",
    )
    return rows
