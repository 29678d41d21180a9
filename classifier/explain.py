"""Where it looked: class activation maps on LiteRT, occlusion where the network has none.

Every built-in network but MobileNetV3 ends in global average pooling and one linear
layer (a Dense layer, or MobileNet's 1x1 convolution). For that shape Grad-CAM equals the
class activation map: with A the last convolutional feature map (H x W x C) and w the
linear layer's weights, the map of class c is sum_k w[k, c] * A[:, :, k] (the gradient of
the class score with respect to A is w[:, c] / (H * W) everywhere). So one LiteRT call of
a "map model" (the network up to A, exported once per server by a child process, beside
the classifier's own file) gives both the answer (pool A, apply the layer, softmax) and
a map for every class, with no TensorFlow in this process.

A taught model on such a base uses the base's map model and its own head: its features
are the pooled A. Everything else (MobileNetV3, whose pooled vector goes through another
non-linear layer, models built on it, added models) gets occlusion sensitivity: the
picture with one square greyed at a time, run through the model's own engine, the map
being how much each square's absence lowers each class. The grid is as fine as about a
second allows, but never coarser than 3x3 (10 runs of the model, for a slow one).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from classifier.models import builtin, derived
from classifier.models.errors import DerivedFileFailed
from classifier.models.spec import LoadedModel, ModelSpec
from classifier.runtime.engines import Engine, LiteRTEngine

log = logging.getLogger(__name__)
# The built-in networks whose head is global average pooling + one linear layer.
CAM_MODELS = frozenset({"mobilenet", "mobilenet_v2", "efficientnet_lite0"})
OCCLUSION_SECONDS = 1.0  # the most an occlusion map should take
MAX_GRID, MIN_GRID = 7, 3
CAM = "class activation map"
OCCLUSION = "occlusion"


class ExplainError(RuntimeError):
    """No map can be made; the message says why, in one sentence."""


@dataclass(frozen=True)
class Explanation:
    """The answer and a map of every class, from one look at one picture.

    `grid` is the feature map (H, W, C) with `weights` (C, classes) for a class
    activation map, or the drop of each class's probability when each square was
    greyed out (rows, columns, classes) for occlusion.
    """

    probabilities: np.ndarray  # (classes,)
    method: str  # CAM or OCCLUSION
    grid: np.ndarray
    weights: np.ndarray | None = None

    def map(self, index: int) -> np.ndarray:
        """Return class `index`'s map on the grid, in [0, 1] (1 where it counted most).

        As Grad-CAM, only what speaks for the class is kept (negative values are 0).
        """
        if self.weights is not None:
            values = np.einsum("hwk,k->hw", self.grid, self.weights[:, index])
        else:
            values = self.grid[..., index]
        values = np.maximum(values.astype(np.float32), 0)
        top = float(values.max())
        return values / top if top > 0 else values


def upsample(grid_map: np.ndarray, size: int) -> np.ndarray:
    """Return a map resized to size x size with bilinear interpolation (Pillow's)."""
    image = Image.fromarray(np.ascontiguousarray(grid_map, dtype=np.float32), mode="F")
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


# --- The map model of a built-in network ---------------------------------------------------


@dataclass(frozen=True)
class MapEngine:
    """A network's map model: one LiteRT call gives the feature map; the head is NumPy."""

    runner: LiteRTEngine
    weights: np.ndarray  # (C, 1000)
    bias: np.ndarray

    def features(self, batch: np.ndarray) -> np.ndarray:
        """Return the feature map (H, W, C) of a batch of one."""
        return self.runner.run(batch).reshape(self.runner.output_shape)


@functools.cache
def _head(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a map model's linear layer once per process (never unpickling anything)."""
    with np.load(path, allow_pickle=False) as npz:
        return npz["weights"].astype(np.float32), npz["bias"].astype(np.float32)


def map_engine(base: str) -> MapEngine:
    """Return a built-in network's map engine, exported once (in a child process) if needed.

    Raises:
        ExplainError: the network has no class activation map, or the export failed.
    """
    if base not in CAM_MODELS:
        raise ExplainError(f"{builtin.title_of(base)} has no class activation map.")
    try:
        opened, head = derived.open_map_model(builtin.get_spec(base))
    except DerivedFileFailed as exc:
        raise ExplainError(f"The map model of {builtin.title_of(base)}: {exc}") from exc
    return MapEngine(opened, *_head(head))


_preparing: set[str] = set()
_preparing_lock = threading.Lock()


def prepare_in_background(base: str) -> None:
    """Export a network's map model in a background thread (once per process), so maps are
    ready later without making anyone wait now."""
    with _preparing_lock:
        if base in _preparing:
            return
        _preparing.add(base)

    def prepare() -> None:
        try:
            map_engine(base)
        except Exception:
            log.exception("Preparing the map model of %s failed", base)

    threading.Thread(target=prepare, name=f"maps {base}", daemon=True).start()


def map_ready(spec: ModelSpec) -> bool:
    """Tell whether a model's map needs no export first (open, on disk, or occlusion)."""
    if spec.network not in CAM_MODELS:
        return True
    return derived.map_model_ready(builtin.get_spec(spec.network))


# --- Explaining one picture -------------------------------------------------------------


def method_for(spec: ModelSpec) -> str:
    """Return how a model's maps are made: CAM or OCCLUSION."""
    return CAM if spec.network in CAM_MODELS else OCCLUSION


def explain(loaded: LoadedModel, pixels: np.ndarray) -> Explanation:
    """Return the answer and every class's map for a crop (the model's input, uint8).

    Raises:
        ExplainError: the map model could not be made.
    """
    spec = loaded.spec
    batch = spec.batch(pixels)
    if method_for(spec) == OCCLUSION:
        return occlusion(loaded.engine, spec, pixels)
    maps = map_engine(spec.network)
    features = maps.features(batch)
    # A taught model: the base's feature map, its own head (its engine holds it).
    head = loaded.engine if spec.base is not None else maps
    weights, bias = head.weights, head.bias
    pooled = features.mean(axis=(0, 1), dtype=np.float32)
    # einsum, not BLAS: right after a LiteRT call, OpenBLAS's threads wait for XNNPACK's,
    # and this one product took 10 ms instead of 0.3.
    logits = np.einsum("k,kc->c", pooled, weights) + bias
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    return Explanation(probabilities, CAM, features, weights)


def occlusion(model_engine: Engine, spec: ModelSpec, pixels: np.ndarray) -> Explanation:
    """Grey out one square at a time; the map is how much each class's probability drops.

    The grid is as fine as about OCCLUSION_SECONDS allows (3x3 to 7x7 squares).
    """
    started = time.perf_counter()
    probabilities = model_engine.run(spec.batch(pixels))[0]
    once = max(time.perf_counter() - started, 1e-4)
    cells = OCCLUSION_SECONDS / once
    rows = max(MIN_GRID, min(MAX_GRID, math.isqrt(int(cells))))
    size = pixels.shape[0]
    edges = np.linspace(0, size, rows + 1).round().astype(int)
    grey = np.float32(127.5)
    drops = np.zeros((rows, rows, probabilities.shape[0]), dtype=np.float32)
    for i in range(rows):
        for j in range(rows):
            occluded = pixels.astype(np.float32)
            occluded[edges[i] : edges[i + 1], edges[j] : edges[j + 1]] = grey
            drops[i, j] = probabilities - model_engine.run(spec.preprocess(occluded[np.newaxis]))[0]
    return Explanation(probabilities, OCCLUSION, drops)


# --- Pictures -----------------------------------------------------------------------------

# A perceptually ordered dark-to-bright colour scale (anchors of matplotlib's "inferno").
_ANCHORS = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float32,
)
_LUT = np.stack(
    [
        np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)), _ANCHORS[:, c])
        for c in range(3)
    ],
    axis=1,
).astype(np.uint8)


def colour(heat: np.ndarray) -> np.ndarray:
    """Return a map in [0, 1] as RGB pixels of the colour scale."""
    return _LUT[np.clip(heat * 255, 0, 255).astype(np.uint8)]


def overlay(pixels: np.ndarray, heat: np.ndarray, opacity: float = 0.5) -> Image.Image:
    """Return the crop with a map laid over it (the map is resized to the crop)."""
    size = pixels.shape[0]
    full = upsample(heat, size) if heat.shape[0] != size else heat
    # Weight the colour by the heat too, so cold areas keep the picture visible.
    alpha = (opacity * (0.35 + 0.65 * full))[..., np.newaxis]
    blended = pixels.astype(np.float32) * (1 - alpha) + colour(full).astype(np.float32) * alpha
    return Image.fromarray(blended.round().astype(np.uint8))


def legend(width: int = 256, height: int = 14) -> Image.Image:
    """Return the colour scale as a bar, low on the left, high on the right."""
    row = colour(np.linspace(0, 1, width, dtype=np.float32))
    return Image.fromarray(np.repeat(row[np.newaxis], height, axis=0))
