"""Model files made the way their real writers make them, offline, for the added-model tests.

- A Teachable-Machine-shaped Keras 2 HDF5 (`keras_model.h5`): nested Sequentials around a
  Functional feature extractor with DepthwiseConv2D (whose config carries `groups: 1`,
  which Keras 3 refuses), written by `tf-keras`, the Keras 2 package.
- Its LiteRT exports as Teachable Machine makes them with the TFLite converter: float
  (`model_unquant.tflite`) and uint8-quantized in and out (`model.tflite`).
- Keras 3 `.keras` files: one with a Lambda layer (refused), one that rescales pixels
  itself and gives logits.
- A LiteRT file with a custom operation (refused).

The weights are random but seeded, with a sharp head, so different photos get clearly
different answers.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SIZE = 224
TM_CLASSES = ("Cat", "Coffee", "Rocket")


def teachable_machine_labels(classes: tuple[str, ...] = TM_CLASSES) -> bytes:
    return "".join(f"{i} {name}\n" for i, name in enumerate(classes)).encode()


def build_teachable_machine_model(
    pictures: list[np.ndarray] | None = None, classes: int = len(TM_CLASSES), seed: int = 0
):
    """Return a tf-keras (Keras 2) model shaped like Teachable Machine's image model.

    Given one (224, 224, 3) uint8 picture per class, its last layer is solved so each
    picture gets its own class with high confidence, as a trained model would.
    """
    import tf_keras as k2

    k2.utils.set_random_seed(seed)
    inputs = k2.Input((SIZE, SIZE, 3))
    x = k2.layers.Conv2D(8, 3, strides=4, padding="same", use_bias=False, name="conv1")(inputs)
    x = k2.layers.BatchNormalization(name="conv1_bn")(x)
    x = k2.layers.ReLU(6.0, name="conv1_relu")(x)
    x = k2.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name="dw")(x)
    x = k2.layers.ReLU(6.0, name="dw_relu")(x)
    x = k2.layers.Conv2D(32, 1, activation="relu", name="pw")(x)
    features = k2.Model(inputs, k2.layers.GlobalAveragePooling2D()(x), name="mobilenet_tiny")
    body = k2.Sequential([features], name="sequential_1")
    head = k2.Sequential(
        [
            k2.layers.Dense(24, activation="relu", name="dense_Dense1"),
            k2.layers.Dense(classes, activation="softmax", use_bias=False, name="dense_Dense2"),
        ],
        name="sequential_3",
    )
    model = k2.Sequential([k2.Input((SIZE, SIZE, 3)), body, head])
    if pictures is not None:  # least squares: logits 4 for the picture's class, 0 elsewhere
        hidden = k2.Sequential([body, head.layers[0]])
        batch = np.stack(pictures).astype(np.float32) / 127.5 - 1
        found = hidden(batch).numpy()
        wanted = 4.0 * np.eye(classes, dtype=np.float32)[: len(pictures)]
        weights = np.linalg.lstsq(found, wanted, rcond=None)[0]
        head.layers[-1].set_weights([weights.astype(np.float32)])
    return model


def _converter(model):
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False))
    concrete = call.get_concrete_function(tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32))
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)


def float_tflite(model) -> bytes:
    """Teachable Machine's floating-point LiteRT export of a model."""
    return _converter(model).convert()


def quantized_tflite(model, pictures: list[np.ndarray]) -> bytes:
    """Teachable Machine's quantized export: uint8 input and output, calibrated on pictures
    scaled to [-1, 1] (so the input quantization is scale 1/127.5, zero point 127)."""
    import tensorflow as tf

    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)

    def calibration():
        for picture in pictures:
            yield [(picture[np.newaxis].astype(np.float32) / 127.5 - 1)]
        for _ in range(16):
            yield [rng.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32)]

    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    return converter.convert()


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def lambda_keras(path: Path) -> Path:
    """A Keras 3 model whose Lambda layer would run Python code from the file."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Lambda(lambda x: x / 255.0, name="scale_it"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.save(path)
    return path


def rescaling_keras(path: Path, classes: int = 4, seed: int = 1) -> Path:
    """A Keras 3 model that rescales pixels itself and ends in logits (no softmax)."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((96, 96, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(classes),
        ]
    )
    model.save(path)
    return path


def custom_layer_h5(path: Path) -> Path:
    """A Keras 2 HDF5 file with a layer class of its own (its code is not in the file)."""
    import tf_keras as k2

    @k2.utils.register_keras_serializable(package="Mine")
    class Doubler(k2.layers.Layer):
        def call(self, x):
            return x * 2

    model = k2.Sequential(
        [
            k2.Input((SIZE, SIZE, 3)),
            Doubler(name="doubler"),
            k2.layers.GlobalAveragePooling2D(),
            k2.layers.Dense(2, activation="softmax"),
        ]
    )
    model.save(path)
    return path


def custom_op_tflite() -> bytes:
    """A LiteRT file with a custom operation (BesselI1e), which needs code of its own."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def strange(x):
        return tf.nn.softmax(tf.reshape(tf.math.bessel_i1e(x), [1, -1])[:, :4])

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [strange.get_concrete_function()], strange
    )
    converter.allow_custom_ops = True
    return converter.convert()


def many_classes_tflite(classes: int) -> bytes:
    """A small float LiteRT classifier with many classes (e.g. 10,000)."""
    import tf_keras as k2

    k2.utils.set_random_seed(3)
    model = k2.Sequential(
        [
            k2.Input((64, 64, 3)),
            k2.layers.Conv2D(8, 3, strides=4, activation="relu"),
            k2.layers.GlobalAveragePooling2D(),
            k2.layers.Dense(classes, activation="softmax"),
        ]
    )
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False))
    concrete = call.get_concrete_function(tf.TensorSpec([1, 64, 64, 3], tf.float32))
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model).convert()
