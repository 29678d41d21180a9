"""A taught model at run time: a built-in network's feature extractor, then a linear head.

The head is `softmax(features @ weights + bias)`, read from the taught model's `.npz`
(with `allow_pickle=False`; the file also holds the training vectors, which `teach`
reads to retrain). Training is `classifier.teach`'s.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from classifier.models import builtin, derived
from classifier.models.errors import DerivedFileFailed, ModelError
from classifier.models.spec import ModelSpec
from classifier.runtime.engines import LiteRTEngine


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


def read_weights(path_or_data: Path | bytes) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Return a taught model's head: weights (dimensions, classes), bias, class names."""
    source = io.BytesIO(path_or_data) if isinstance(path_or_data, bytes) else path_or_data
    with np.load(source, allow_pickle=False) as npz:
        return (
            npz["weights"].astype(np.float32),
            npz["bias"].astype(np.float32),
            tuple(npz["class_names"].tolist()),
        )


class HeadEngine:
    """A taught model: the base network's feature extractor, then the head, in NumPy."""

    backend = "LiteRT"

    def __init__(self, features: LiteRTEngine, weights: np.ndarray, bias: np.ndarray):
        self._features = features
        self.weights, self.bias = weights, bias  # (dimensions, classes), (classes,)
        self.classes = len(bias)

    def run(self, batch: np.ndarray) -> np.ndarray:
        # einsum, not BLAS: after a LiteRT call OpenBLAS's threads wait for XNNPACK's.
        features = self._features.run(batch)
        return softmax(np.einsum("nk,kc->nc", features, self.weights) + self.bias)

    def wait(self) -> None:
        return None

    def twin(self, num_threads: int) -> HeadEngine:
        """Return a taught model on a twin of its feature extractor (the head is shared:
        it is only read)."""
        return HeadEngine(self._features.twin(num_threads), self.weights, self.bias)


def open_engine(spec: ModelSpec) -> HeadEngine:
    """Return the engine of a taught model's spec (`spec.base` set, `engine_file` its head).

    Raises:
        ModelError: its base's feature extractor cannot be had here (one sentence).
    """
    assert spec.base is not None and spec.engine_file is not None
    try:
        base = builtin.base_here(spec.base)
    except ModelError as exc:
        raise ModelError(f"{spec.title} cannot run here: {exc}") from exc
    try:
        features = derived.extractor(base)
    except DerivedFileFailed as exc:
        raise ModelError(
            f"{spec.title} cannot run here: the feature extractor of {base.title}: {exc}"
        ) from exc
    weights, bias, _ = read_weights(spec.engine_file)
    return HeadEngine(features, weights, bias)
