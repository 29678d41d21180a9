"""A model someone adds: the one-off time to add a Keras file, and its engine against raw LiteRT.

The model is what a person might train with Keras: MobileNetV2 (width 0.35, random
weights offline) with a 3-class softmax head, saved as a `.keras` file. Its uint8
quantized LiteRT version (Teachable Machine's "quantized" export) is timed too: the
app's engine then also quantizes the input and dequantizes the output.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import photos
from benchmarks.inference import TARGET_OVER_RAW
from benchmarks.report import Row, ratio, say
from benchmarks.timing import Stats, compare
from classifier import images, models
from classifier.config import get_settings

GROUP = "Own model, 3 classes (MobileNetV2 0.35)"
CLASSES = ("cat", "coffee", "rocket")


def _keras_file(scratch: Path) -> tuple[Path, object]:
    import keras

    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), alpha=0.35, include_top=False, weights=None, pooling="avg"
    )
    model = keras.Sequential([base, keras.layers.Dense(len(CLASSES), activation="softmax")])
    path = scratch / "own_model.keras"
    model.save(path)
    return path, model


def _quantized(model, batch: np.ndarray) -> bytes:
    import tensorflow as tf

    folder = tempfile.mkdtemp()
    model.export(folder, format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(folder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: (
        [rng.uniform(-1, 1, (1, 224, 224, 3)).astype(np.float32)] for _ in range(8)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return converter.convert()


def _raw(model: bytes, batch: np.ndarray):
    """A bare interpreter fed the way a careful hand-written snippet would feed it."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=get_settings().num_threads)
    interpreter.allocate_tensors()
    given, answer = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    if given["dtype"] == np.float32:
        feed = batch
    else:
        scale, zero_point = given["quantization"]
        feed = np.clip(np.round(batch / scale + zero_point), 0, 255).astype(np.uint8)
    out_scale, out_zero = answer["quantization"]

    def run() -> np.ndarray:
        interpreter.set_tensor(given["index"], feed)
        interpreter.invoke()
        out = interpreter.get_tensor(answer["index"])
        return (
            out
            if answer["dtype"] == np.float32
            else (out.astype(np.float32) - out_zero) * out_scale
        )

    return run


def run(scratch: Path, *, quick: bool) -> list[Row]:
    say("own model: building a Keras 3 MobileNetV2 (0.35) with a 3-class head")
    path, model = _keras_file(scratch)
    labels = "\n".join(CLASSES).encode()
    say("own model: adding it (checked and converted in a child process, then kept)")
    started = time.perf_counter()
    candidate = models.read_model(path.read_bytes(), labels)
    models.save("Own Keras model", candidate, "minus_one_to_one")
    add_seconds = time.perf_counter() - started

    pixels = images.fit_to_input(photos.sample_photo("cat"), 224, 1.0)
    batch = pixels[np.newaxis].astype(np.float32) / np.float32(127.5) - np.float32(1)
    say("own model: quantizing it as Teachable Machine's quantized export")
    quantized = _quantized(model, batch)
    models.save(
        "Own quantized model",
        models.read_model(quantized, labels),
        "minus_one_to_one",
    )
    float_engine = models.load("Own Keras model").engine
    quantized_engine = models.load("Own quantized model").engine
    say("own model: timing the app's engine against raw LiteRT")
    stats = compare(
        {
            "float app": lambda: float_engine.run(batch),
            "float raw": _raw(candidate.data, batch),
            "uint8 app": lambda: quantized_engine.run(batch),
            "uint8 raw": _raw(quantized, batch),
        },
        rounds=1 if quick else 5,
        calls=5 if quick else 20,
    )
    rows = [
        Row(
            GROUP,
            "add a .keras file (check, convert to LiteRT in a child process, keep)",
            "s",
            Stats.of([add_seconds]),
            note="one-off; includes the child's TensorFlow import",
        )
    ]
    for kind, title in (("float", "float32 LiteRT"), ("uint8", "uint8-quantized LiteRT")):
        app_ratio = ratio(stats[f"{kind} app"], stats[f"{kind} raw"])
        rows += [
            Row(
                GROUP,
                f"{title} · app engine (load_model by name)",
                "ms",
                stats[f"{kind} app"],
                baseline="raw LiteRT",
                ratio=app_ratio,
                target=f"≤ {TARGET_OVER_RAW}× raw LiteRT",
                met=app_ratio <= TARGET_OVER_RAW,
                note="quantizes the input and dequantizes the output" if kind == "uint8" else "",
            ),
            Row(GROUP, f"{title} · raw LiteRT Interpreter", "ms", stats[f"{kind} raw"]),
        ]
    return rows
