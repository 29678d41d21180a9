"""Bytes to top-k: the app's `classify` against a naive Pillow + Keras path; batch throughput."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from benchmarks import lite0, photos
from benchmarks.report import Row, ratio, say
from benchmarks.timing import Stats, compare, seconds
from classifier import images, models
from classifier.predict import classify, classify_many

GROUP = "End to end, bytes → top-k"
BATCH_GROUP = "Batch"
TARGET_SPEEDUP = 5  # the app must be at least 5 times faster than naive on a 12 MP JPEG
TARGETED_INPUT = "12 MP JPEG"
TOP_K = 5  # both paths end with the same ranked classes


def classify_naively(data: bytes, model, spec: models.ModelSpec) -> np.ndarray:
    """Return the top-k class indices the obvious way: full decode, squash, `model.predict`."""
    image = Image.open(io.BytesIO(data)).convert("RGB").resize((spec.input_size, spec.input_size))
    batch = spec.preprocess(np.asarray(image, dtype=np.float32)[np.newaxis])
    probabilities = model.predict(batch, verbose=0)[0]
    return np.argsort(-probabilities)[:TOP_K]


def decode_alone(data: bytes, min_side: int) -> Image.Image:
    """Decode with Pillow alone, JPEGs reduced while the shorter side stays >= min_side.

    The least any path can spend before the network runs: the floor under `classify`.
    """
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (min_side, min_side))  # a no-op for formats other than JPEG
    image.load()
    return image


def run(*, quick: bool) -> list[Row]:
    """Time both paths on a 12 MP JPEG, a 1 MP PNG and a small JPEG, with EfficientNet-Lite0."""
    loaded = lite0.load()
    spec = loaded.spec
    model = spec.build(spec.weights_file())
    min_side = images.min_side_for(spec.input_size)
    say("end to end: generating the pictures")
    inputs = photos.end_to_end_inputs()
    rows = []
    for name, data in inputs.items():
        say(f"end to end: timing the {name} ({len(data) / 1024:,.0f} KB)")
        stats = compare(
            {
                "app": lambda data=data: classify(data, loaded).top(TOP_K),
                "naive": lambda data=data: classify_naively(data, model, spec),
                "decode": lambda data=data: decode_alone(data, min_side),
            },
            rounds=1 if quick else 3,
            calls=3 if quick else 5,
            warmup=1,
        )
        speed = ratio(stats["app"], stats["naive"])
        target, met = "", None
        if name == TARGETED_INPUT:
            target = f"≥ {TARGET_SPEEDUP}× faster (≤ {1 / TARGET_SPEEDUP:.2f}×)"
            met = speed <= 1 / TARGET_SPEEDUP
        rows += [
            Row(
                GROUP,
                f"{name} · app classify()",
                "ms",
                stats["app"],
                baseline="naive",
                ratio=speed,
                target=target,
                met=met,
                note=f"{len(data) / 1024:,.0f} KB file",
            ),
            Row(
                GROUP,
                f"{name} · naive (Pillow full decode + resize + model.predict)",
                "ms",
                stats["naive"],
            ),
            Row(
                GROUP,
                f"{name} · Pillow decode alone (reduced to ≥ {min_side} px)",
                "ms",
                stats["decode"],
                baseline="app",
                ratio=ratio(stats["decode"], stats["app"]),
            ),
        ]
    return rows


def run_batch(*, quick: bool) -> list[Row]:
    """Time `classify_many` over distinct 2 MP JPEGs, against the engine alone."""
    count = 8 if quick else 64
    loaded = lite0.load()
    say(f"batch: generating {count} photos")
    uploads = photos.batch_inputs(count)
    size = loaded.spec.input_size
    batch = loaded.spec.preprocess(np.zeros((1, size, size, 3), dtype=np.float32))
    say(f"batch: timing classify_many on {count} photos")
    repeats = 2 if quick else 3
    app, engine_only = [], []
    for _ in range(repeats):
        app.append(count / seconds(lambda: classify_many(uploads, loaded)))
        engine_only.append(count / seconds(lambda: [loaded.engine.run(batch) for _ in uploads]))
    app_stats, engine_stats = Stats.of(app), Stats.of(engine_only)
    return [
        Row(
            BATCH_GROUP,
            "classify_many(list of bytes)",
            "img/s",
            app_stats,
            baseline="engine alone",
            ratio=ratio(app_stats, engine_stats),
            note=f"{count} different 1600 × 1200 JPEGs; classify_many calls classify() once "
            "per file, as the classify page does through its prediction cache",
        ),
        Row(BATCH_GROUP, "engine alone (preprocessed input)", "img/s", engine_stats),
    ]
