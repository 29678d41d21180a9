"""Where it looked, on EfficientNet-Lite0: a classification with its map against one without,
and against the usual Grad-CAM recipe (TensorFlow's GradientTape on the Keras model).

`explain.explain` runs the map model once (the network up to its last feature map) and
gives the answer and every class's map from it; the row times it with the top class's
map made. The recipe builds a Keras model giving the feature map and the class score,
and runs a GradientTape per picture, as tutorials do.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import lite0, photos
from benchmarks.report import Row, ratio, say
from benchmarks.timing import compare
from classifier import explain, images, models

GROUP = "Where it looked (EfficientNet-Lite0)"
TARGET_MAP_OVER_PLAIN = 1.3


def _grad_cam_recipe(pixels: np.ndarray):
    """Return a call computing Grad-CAM of the top class with a GradientTape, per picture."""
    import keras
    import tensorflow as tf

    spec = models.get_spec(lite0.NAME)
    model = spec.build("imagenet")
    pooling = next(x for x in model.layers if isinstance(x, keras.layers.GlobalAveragePooling2D))
    dense = model.get_layer("predictions")
    grad_model = keras.Model(model.inputs, [pooling.input, model.output])
    batch = tf.constant(spec.batch(pixels))

    def run() -> np.ndarray:
        with tf.GradientTape() as tape:
            features, probabilities = grad_model(batch)
            logits = tf.matmul(tf.reduce_mean(features, axis=(1, 2)), dense.kernel) + dense.bias
            top = int(tf.argmax(probabilities[0]))
            score = logits[:, top]
        gradients = tape.gradient(score, features)
        alpha = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        return tf.nn.relu(tf.reduce_sum(alpha * features, axis=-1))[0].numpy()

    return run


def run(*, quick: bool) -> list[Row]:
    """Time a classification with its map, without it, and the GradientTape recipe."""
    loaded = lite0.load()
    pixels = images.fit_to_input(photos.sample_photo("cat"), loaded.spec.input_size)
    batch = loaded.spec.batch(pixels)
    say("explain: exporting EfficientNet-Lite0's map model (child process, once)")
    started = time.perf_counter()
    explain.map_engine(lite0.NAME)
    export_seconds = time.perf_counter() - started

    def with_map() -> np.ndarray:
        found = explain.explain(loaded, pixels)
        return found.map(int(np.argmax(found.probabilities)))

    recipe = _grad_cam_recipe(pixels)
    say("explain: timing a classification with its map, without, and the GradientTape recipe")
    stats = compare(
        {
            "plain": lambda: loaded.engine.run(batch),
            "map": with_map,
            "tape": recipe,
        },
        rounds=1 if quick else 5,
        calls=5 if quick else 20,
    )
    map_ratio = ratio(stats["map"], stats["plain"])
    return [
        Row(
            GROUP,
            "classification alone · app engine",
            "ms",
            stats["plain"],
        ),
        Row(
            GROUP,
            "classification with the map (explain.explain, one LiteRT call + NumPy)",
            "ms",
            stats["map"],
            baseline="classification alone",
            ratio=map_ratio,
            target=f"≤ {TARGET_MAP_OVER_PLAIN}× classification alone",
            met=map_ratio <= TARGET_MAP_OVER_PLAIN,
            note="the answer (all 1,000 probabilities) and the top class's 7x7 map from the map "
            "model; its first export, in a child process, took "
            f"{export_seconds:.1f} s (once per server)",
        ),
        Row(
            GROUP,
            "Grad-CAM recipe · TensorFlow GradientTape on the Keras model",
            "ms",
            stats["tape"],
            baseline="classification with the map",
            ratio=ratio(stats["tape"], stats["map"]),
            note="a Keras model giving the feature map and the probabilities, one tape per picture",
        ),
    ]
