"""EfficientNet-Lite0 as a Keras model, with its ImageNet weights from a PyTorch checkpoint.

Lite0 is EfficientNet-B0 without squeeze-excitation, with ReLU6, a fixed stem of
32 and head of 1280 channels, BatchNorm epsilon 1e-3 and TensorFlow "same"
padding. The checkpoint's tensor names follow the `efficientnet_pytorch` layout
(`_blocks.N._expand_conv.weight`, ...).

Importing this module imports Keras (and so TensorFlow): only the built-in models'
builders do, never the warm inference path.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from classifier.checkpoint import load_state_dict

BN_EPSILON = 1e-3
# The B0 stages: (expand ratio, kernel size, first stride, output channels, repeats).
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


def _conv_bn(x, filters: int, kernel: int, name: str, stride: int = 1, relu6: bool = True):
    x = keras.layers.Conv2D(
        filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu6 else x


def _block(x, index: int, expand: int, kernel: int, stride: int, filters: int):
    name = f"block{index}"
    channels = x.shape[-1]
    y = _conv_bn(x, channels * expand, 1, f"{name}_expand") if expand != 1 else x
    y = keras.layers.DepthwiseConv2D(
        kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dw_conv"
    )(y)
    y = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_dw_bn")(y)
    y = keras.layers.ReLU(6.0, name=f"{name}_dw_relu6")(y)
    y = _conv_bn(y, filters, 1, f"{name}_project", relu6=False)
    if stride == 1 and channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def build_efficientnet_lite0(weights_path: str | Path | None = None) -> keras.Model:
    """Build EfficientNet-Lite0 for 224x224 inputs scaled as (x - 127) / 128.

    Args:
        weights_path: a legacy PyTorch checkpoint of the ImageNet weights, or
            None for random weights.
    """
    inputs = keras.Input((224, 224, 3), name="image")
    x = _conv_bn(inputs, 32, 3, "stem", stride=2)
    index = 0
    for expand, kernel, stride, filters, repeats in STAGES:
        for repeat in range(repeats):
            x = _block(x, index, expand, kernel, stride if repeat == 0 else 1, filters)
            index += 1
    x = _conv_bn(x, 1280, 1, "head")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(1000, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="efficientnet_lite0")
    if weights_path is not None:
        _load_checkpoint(model, load_state_dict(weights_path), block_count=index)
    return model


def _load_checkpoint(model: keras.Model, state: dict[str, np.ndarray], block_count: int) -> None:
    """Copy the checkpoint's tensors into the model's layers, converting layouts."""

    def conv(key: str) -> list[np.ndarray]:  # (out, in, kh, kw) -> (kh, kw, in, out)
        return [state[f"{key}.weight"].transpose(2, 3, 1, 0)]

    def depthwise(key: str) -> list[np.ndarray]:  # (ch, 1, kh, kw) -> (kh, kw, ch, 1)
        return [state[f"{key}.weight"].transpose(2, 3, 0, 1)]

    def bn(key: str) -> list[np.ndarray]:
        return [state[f"{key}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]

    targets = {
        "stem_conv": conv("_conv_stem"),
        "stem_bn": bn("_bn0"),
        "head_conv": conv("_conv_head"),
        "head_bn": bn("_bn1"),
        "predictions": [state["_fc.weight"].T, state["_fc.bias"]],
    }
    for i in range(block_count):
        p = f"_blocks.{i}"
        if f"{p}._expand_conv.weight" in state:
            targets[f"block{i}_expand_conv"] = conv(f"{p}._expand_conv")
            targets[f"block{i}_expand_bn"] = bn(f"{p}._bn0")
        targets[f"block{i}_dw_conv"] = depthwise(f"{p}._depthwise_conv")
        targets[f"block{i}_dw_bn"] = bn(f"{p}._bn1")
        targets[f"block{i}_project_conv"] = conv(f"{p}._project_conv")
        targets[f"block{i}_project_bn"] = bn(f"{p}._bn2")

    weighted = {layer.name for layer in model.layers if layer.weights}
    if weighted != set(targets):
        missing = sorted(weighted - set(targets))
        raise ValueError(f"Expected the checkpoint to cover every layer. Missing: {missing}")
    for name, values in targets.items():
        model.get_layer(name).set_weights(values)
