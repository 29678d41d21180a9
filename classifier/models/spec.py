"""What a model is, whatever its kind: its spec, the choice of who answers, a loaded model.

Three kinds: a built-in network (`builtin`: built with Keras from ImageNet weights, run
from an engine file exported once), a model someone added (`own`: a LiteRT or ONNX file
run as it is) and a model taught here (`own` and `taught`: a built-in network's features, then
a linear head). The spec says which in `kind`, and carries what each kind needs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from classifier import images, labels

if TYPE_CHECKING:
    import keras

    from classifier.runtime.engines import Engine

# As in Keras: no weights (random, for tests), a weights file, or ImageNet's from Keras's cache.
Weights = Path | Literal["imagenet"] | None


class Kind(enum.StrEnum):
    BUILTIN = "built-in"
    ADDED = "added"
    TAUGHT = "taught"


@dataclass(frozen=True)
class ModelSpec:
    """One model: what it is, how to feed it, and where what runs it comes from.

    A built-in model has `build` and its ImageNet `weights_file`; an added model has its
    LiteRT or ONNX file in `engine_file`; a taught model has its head there, and its `base`.
    """

    name: str
    title: str
    input_size: int
    parameters: int | None
    preprocess: Callable[[np.ndarray], np.ndarray]  # float pixels in [0, 255] -> model input
    weights_file: Callable[[], Path]
    build: Callable[[Weights], keras.Model] | None
    weights_origin: str
    class_names: tuple[str, ...] = field(default_factory=labels.labels, repr=False)
    crop_fraction: float = images.CROP_FRACTION  # of the picture's shorter side
    engine_file: Path | None = None  # an added model's LiteRT or ONNX file; a taught one's head
    softmax: bool = False  # its outputs are logits: the engine turns them into probabilities
    version: str = ""  # changes when an own model of the same name is another file
    base: str | None = None  # a taught model: the built-in network giving its features
    kind: Kind = Kind.BUILTIN

    @property
    def network(self) -> str | None:
        """The built-in network that runs it, wholly or for its features (None: added)."""
        return self.name if self.kind is Kind.BUILTIN else self.base

    def crop(self, image: Image.Image) -> np.ndarray:
        """Return the centre crop the network sees, as (size, size, 3) uint8 pixels."""
        return images.fit_to_input(image, self.input_size, self.crop_fraction)

    def batch(self, pixels: np.ndarray) -> np.ndarray:
        """Return cropped pixels as the network's float32 input batch of one."""
        return self.preprocess(pixels[np.newaxis].astype(np.float32))

    def prepare(self, image: Image.Image) -> np.ndarray:
        """Return an RGB picture as the network's float32 input batch of one."""
        return self.batch(self.crop(image))


@dataclass(frozen=True)
class OwnDetails:
    """What is kept with a model someone added or taught (its row's JSON), typed.

    Added: what the check found in its file (`size`, `input_dtype`, `outputs`) and the
    preprocessing picked (`scaling`). Taught: its `base` network and how it was taught.
    """

    kind: Kind  # ADDED or TAUGHT
    class_names: tuple[str, ...]
    size: int  # input side, in pixels
    input_dtype: str = "float32"
    outputs: str = "probabilities"  # or "logits", which the engine turns into probabilities
    scaling: str | None = None  # an added model's preprocessing (upload.SCALINGS)
    base: str | None = None  # a taught model's built-in network
    parameters: int | None = None
    accuracy: float | None = None  # a taught model's cross-validated accuracy
    photos: int | None = None  # how many photos taught it
    threshold: float | None = None  # a taught model's confidence threshold, when one was kept
    format: str = "tflite"  # an added model's file: "tflite" (LiteRT) or "onnx" (ONNX Runtime)
    crop: float = 1.0  # an added model's centre crop, of the picture's shorter side

    @staticmethod
    def kind_of(stored: Mapping[str, Any]) -> Kind:
        """Return the kind a row's JSON says (added, unless it says taught)."""
        return Kind.TAUGHT if stored.get("kind") == "taught" else Kind.ADDED

    @classmethod
    def read(cls, stored: Mapping[str, Any]) -> OwnDetails:
        """Return the typed details of a row's JSON (keys it does not know are left out)."""
        taught = cls.kind_of(stored) is Kind.TAUGHT
        return cls(
            kind=cls.kind_of(stored),
            class_names=tuple(stored["class_names"]),
            size=int(stored["size"]),
            input_dtype=str(stored.get("input_dtype", "float32")),
            outputs=str(stored.get("outputs", "probabilities")),
            scaling=stored.get("scaling"),
            base=stored.get("base") if taught else None,
            parameters=stored.get("parameters"),
            accuracy=stored.get("accuracy"),
            photos=stored.get("photos"),
            threshold=stored.get("threshold"),
            format=str(stored.get("format", "tflite")),
            crop=float(stored.get("crop", 1.0)),
        )

    @property
    def quantized(self) -> bool:
        return self.input_dtype != "float32"

    @property
    def logits(self) -> bool:
        return self.outputs == "logits"


@dataclass(frozen=True)
class WeightsStatus:
    """Whether a model's weights can be had on this machine, and from where."""

    available: bool
    source: str  # where the weights come from, with the file's path (for the CLI, not visitors)
    path: Path
    reason: str = ""  # why they cannot be had; never a path, so pages may show it


@dataclass(frozen=True)
class Choice:
    """The model that answers for a requested name, and what a person should be told."""

    requested: str
    spec: ModelSpec
    status: WeightsStatus
    notice: str = ""  # set when another model answers instead of the requested one


@dataclass(frozen=True)
class LoadedModel:
    """A ready engine and what a person should know about it."""

    spec: ModelSpec
    engine: Engine
    requested: str
    weights_source: str
    notice: str
    # Told once per process, by the load that opened the engine: a damaged engine file
    # was rebuilt, or the cache folder cannot be written and another is used.
    cache_notice: str = ""

    @property
    def name(self) -> str:
        return self.spec.name
