"""The one call: picture in, Prediction out (all class probabilities and timings)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from classifier import images
from classifier.labels import TopClass, rank
from classifier.models import Kind, LoadedModel
from classifier.models import load as load_model

if TYPE_CHECKING:
    from classifier.runtime.engines import Engine

ImageInput = bytes | Image.Image | images.DecodedImage
MAX_TOP_K = 10_000  # classes one answer may list (an added model may have this many)
UNSURE_BELOW = 0.25  # the default confidence threshold: a top class below it is "unsure"


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in each step of one prediction."""

    decode_ms: float
    preprocess_ms: float
    inference_ms: float

    @property
    def total_ms(self) -> float:
        return self.decode_ms + self.preprocess_ms + self.inference_ms


@dataclass(frozen=True)
class Prediction:
    """What the model said about one picture, and how it got there.

    `probabilities` holds every class; `top(k)` ranks them. `image` is the picture
    as decoded (EXIF-rotated, RGB, possibly reduced by JPEG draft decoding);
    `model_input` is the centre crop the network saw, as pixels.
    """

    probabilities: np.ndarray = field(repr=False)
    model: str
    model_title: str
    requested_model: str
    weights_source: str
    notice: str
    backend: str
    timings: Timings
    image_format: str
    width: int
    height: int
    image: Image.Image = field(repr=False)
    model_input: np.ndarray = field(repr=False)
    computed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    cached: bool = False  # reused from a cache: backend and timings are those of computed_at
    class_names: tuple[str, ...] | None = field(default=None, repr=False)  # None: ImageNet's
    weights_origin: str = ""  # where the model came from, in words a visitor may read
    crop_fraction: float = images.CROP_FRACTION  # of the shorter side, that the network saw

    @property
    def num_classes(self) -> int:
        return len(self.probabilities)

    def top(self, k: int) -> tuple[TopClass, ...]:
        """Return the k most probable classes, best first (all of them if there are fewer)."""
        return rank(self.probabilities, min(k, self.num_classes), self.class_names)

    @property
    def top1(self) -> TopClass:
        return self.top(1)[0]


def decode(image: ImageInput, loaded: LoadedModel) -> tuple[images.DecodedImage, float]:
    """Decode a picture for a model (a JPEG reduced while the model's crop still fits);
    return it with the milliseconds it took.

    Raises:
        ImageError: the bytes are not a picture we can read.
    """
    started = time.perf_counter()
    if isinstance(image, images.DecodedImage):
        decoded = image
    elif isinstance(image, Image.Image):
        rgb = image.convert("RGB")
        decoded = images.DecodedImage(rgb, image.format or "image", rgb.width, rgb.height)
    else:
        decoded = images.decode_image(image, min_side=images.min_side_for(loaded.spec.input_size))
    return decoded, (time.perf_counter() - started) * 1000


def classify_decoded(
    decoded: images.DecodedImage,
    decode_ms: float,
    loaded: LoadedModel,
    engine: Engine | None = None,
) -> Prediction:
    """Crop, preprocess and run a decoded picture (what `classify` does after `decode`).

    Args:
        engine: What runs the model: its own engine (None), or a twin of it, as each of
            `classifier.jobs.pipeline`'s threads has.

    Raises:
        ModelError: the model failed on this picture (an added model may).
    """
    spec = loaded.spec
    engine = engine or loaded.engine
    started = time.perf_counter()
    pixels = spec.crop(decoded.image)
    batch = spec.batch(pixels)
    preprocess_ms = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    probabilities = engine.run(batch)[0]
    inference_ms = (time.perf_counter() - started) * 1000
    return Prediction(
        probabilities=probabilities,
        model=loaded.name,
        model_title=spec.title,
        requested_model=loaded.requested,
        weights_source=loaded.weights_source,
        notice=loaded.notice,
        backend=engine.backend,
        timings=Timings(decode_ms, preprocess_ms, inference_ms),
        image_format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        image=decoded.image,
        model_input=pixels,
        class_names=None if spec.kind is Kind.BUILTIN else spec.class_names,
        weights_origin=spec.weights_origin,
        crop_fraction=spec.crop_fraction,
    )


def classify(image: ImageInput, model: str | LoadedModel | None = None) -> Prediction:
    """Classify one picture (bytes, a Pillow image or a decoded image).

    Args:
        model: A loaded model, a model name, or None for the configured default.

    Raises:
        ImageError: the bytes are not a picture we can read.
        ModelError: the model (and its fallback) cannot be loaded.
    """
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    decoded, decode_ms = decode(image, loaded)
    return classify_decoded(decoded, decode_ms, loaded)


def classify_many(
    items: Sequence[ImageInput], model: str | LoadedModel | None = None
) -> list[Prediction | images.ImageError]:
    """Classify several pictures one by one; a picture that fails gets its ImageError.

    One at a time on purpose: LiteRT on a CPU is no faster per image in batches.
    Each prediction keeps its decoded picture, so for many large files call
    `classify` in a loop and keep only what you need, or, for files on disk,
    `classifier.jobs.pipeline.classify_files`, which also decodes while it infers.
    """
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    results: list[Prediction | images.ImageError] = []
    for item in items:
        try:
            results.append(classify(item, loaded))
        except images.ImageError as exc:
            results.append(exc)
    return results
