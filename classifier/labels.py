"""The 1000 ImageNet class names in model output order, shipped with the package.

Source: `dist/imagenet_classes.js` of the npm package `@tensorflow-models/mobilenet`
2.1.1 (Apache-2.0, Copyright 2019 Google LLC), converted to one line per class in
`data/imagenet_classes.txt`. Each line holds the synonyms WordNet gives the class;
the first one is the short label shown to people.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

NUM_CLASSES = 1000
_DATA_FILE = Path(__file__).with_name("data") / "imagenet_classes.txt"


@cache
def full_names() -> tuple[str, ...]:
    """Return every class's full synonym list, e.g. "tench, Tinca tinca"."""
    names = tuple(_DATA_FILE.read_text(encoding="utf-8").splitlines())
    if len(names) != NUM_CLASSES:
        raise RuntimeError(f"Expected {NUM_CLASSES} class names. Received: {len(names)}")
    return names


@cache
def labels() -> tuple[str, ...]:
    """Return the short label of every class, e.g. "tench" for class 0."""
    return tuple(name.split(",")[0].strip() for name in full_names())


@cache
def display_labels() -> tuple[str, ...]:
    """Return each class's label as shown to people, unique: "crane (#134)" where two share one."""
    names = labels()
    return tuple(
        f"{name} (#{index})" if names.count(name) > 1 else name for index, name in enumerate(names)
    )


@dataclass(frozen=True)
class TopClass:
    """One ranked class: its label, its index in the model's output and its probability."""

    label: str
    index: int
    probability: float

    def as_dict(self) -> dict[str, Any]:
        """Return the class as plain JSON types (the history stores it so)."""
        return {"label": self.label, "index": self.index, "probability": self.probability}

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> TopClass:
        """Read a class back from `as_dict`'s shape, coercing numpy numbers to Python ones."""
        return cls(str(value["label"]), int(value["index"]), float(value["probability"]))


def rank(probabilities: np.ndarray, k: int) -> tuple[TopClass, ...]:
    """Return the k most probable classes of a probability vector, best first."""
    if not 1 <= k <= len(probabilities):
        raise ValueError(f"Expected top-k between 1 and {len(probabilities)}. Received: {k}")
    order = np.argsort(-probabilities, kind="stable")[:k]
    names = labels()
    return tuple(TopClass(names[i], int(i), float(probabilities[i])) for i in order)


def label_of(index: int) -> str:
    """Return the short label of one class index."""
    if not 0 <= index < NUM_CLASSES:
        raise ValueError(f"Expected a class index in [0, {NUM_CLASSES}). Received: {index}")
    return labels()[index]
