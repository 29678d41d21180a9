"""Teaching on EfficientNet-Lite0: embedding photos, training the head, and the taught model.

Embedding a photo (`classifier.teach.embed`: decode, crop the centre square, run the
feature extractor, cache the vector) is timed against a raw script doing the same work
with Pillow and a bare LiteRT interpreter (decode in JPEG draft mode, crop and resize,
scale, run), and the extractor alone on a ready input is shown beside. Training
(`teach.train`: 5-fold cross-validation, then the final fit) is timed on 20 classes x 50
vectors shaped like real ones. The taught model runs the app's way (extractor, then the
head in NumPy) and as the fused LiteRT file of its Teachable Machine download; both are
timed against EfficientNet-Lite0's own engine.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from benchmarks import lite0, photos
from benchmarks.inference import raw_litert
from benchmarks.report import Row, ratio, say
from benchmarks.timing import Stats, compare, seconds
from classifier import images, models, teach

GROUP = "Teach, on EfficientNet-Lite0"
TARGET_TRAIN_SECONDS = 1.5  # "about a second" for 20 classes x 50 photos
TARGET_EMBED_OVER_RAW = 1.3  # the app's checks, hashing and caching: at most 30% over raw
PHOTO_SIZE = (1600, 1200)  # 2 MP JPEGs, as the batch suite's uploads
CLASSES, PER_CLASS = 20, 50
NOISE_OVER_SPREAD = 4.0  # within-class noise, in units of how much the example photos differ
RELU6 = 6.0  # EfficientNet-Lite's activations are ReLU6: features lie in [0, 6]
TAUGHT_NAME = "Taught benchmark, 20 classes"


def _unique_photos(count: int) -> list[teach.Photo]:
    """Return `count` different 2 MP JPEGs made from the example photos (each its own noise)."""
    made = []
    for i in range(count):
        source = photos.SOURCES[i % len(photos.SOURCES)]
        data = photos.encode(photos.photo(source, PHOTO_SIZE, seed=7000 + i), "JPEG")
        made.append(teach.Photo(f"{source}-{i}.jpg", data, source))
    return made


def _forget_vectors(chosen: list[teach.Photo]) -> list[Path]:
    """Remove any cached vector of these photos (a reused --cache-dir), so each is computed."""
    folder = teach._cache_folder(lite0.NAME)
    paths = [folder / f"{images.content_digest(photo.data)}.npy" for photo in chosen]
    for path in paths:
        path.unlink(missing_ok=True)
    return paths


def _embed_one_by_one(
    chosen: list[teach.Photo], embedded: list[teach.Examples]
) -> Callable[[], object]:
    """Return a call embedding the next photo alone, keeping its vector in `embedded`."""
    queue: Iterator[teach.Photo] = iter(chosen)

    def run() -> teach.Examples:
        examples = teach.embed([next(queue)], lite0.NAME)
        embedded.append(examples)
        return examples

    return run


def _decode_one_by_one(chosen: list[teach.Photo], spec: models.ModelSpec) -> Callable[[], object]:
    """Return a call doing embed's work before the extractor, one photo after the other."""
    queue: Iterator[teach.Photo] = iter(chosen)
    min_side = images.min_side_for(spec.input_size, teach.CROP_FRACTION)

    def run() -> np.ndarray:
        decoded = images.decode_image(next(queue).data, min_side=min_side)
        return spec.batch(images.fit_to_input(decoded.image, spec.input_size, teach.CROP_FRACTION))

    return run


def _raw_script_one_by_one(chosen: list[teach.Photo], path: Path) -> Callable[[], object]:
    """Return a call embedding the next photo as a bare script would: Pillow and LiteRT only."""
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    from classifier.config import get_settings

    interpreter = Interpreter(model_path=str(path), num_threads=get_settings().num_threads)
    interpreter.allocate_tensors()
    given = interpreter.get_input_details()[0]["index"]
    answer = interpreter.get_output_details()[0]["index"]
    spec = models.get_spec(lite0.NAME)
    size = spec.input_size
    queue: Iterator[teach.Photo] = iter(chosen)

    def run() -> np.ndarray:
        with Image.open(io.BytesIO(next(queue).data)) as picture:
            picture.draft("RGB", (size, size))
            rgb = picture.convert("RGB")
        box = images.crop_box(rgb.width, rgb.height, teach.CROP_FRACTION)
        pixels = np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR, box=box))
        interpreter.set_tensor(given, spec.batch(pixels))
        interpreter.invoke()
        return interpreter.get_tensor(answer)

    return run


def _synthetic_examples(real: teach.Examples) -> teach.Examples:
    """Return 20 classes x 50 vectors shaped like real EfficientNet-Lite0 features.

    Class centres lie around the mean of the real vectors, as far apart per dimension as
    the three example photos are; each vector is its centre plus Gaussian noise 4 times
    that spread, clipped to ReLU6's [0, 6] (about half the values are then 0, as in real
    vectors).
    """
    labels = np.array(real.labels)
    sources = sorted(set(real.labels))
    per_source = np.stack([real.vectors[labels == source].mean(axis=0) for source in sources])
    mean, spread = real.vectors.mean(axis=0), per_source.std(axis=0)
    dimensions = real.vectors.shape[1]
    rng = np.random.default_rng(0)
    centres = mean + spread * rng.standard_normal((CLASSES, dimensions))
    noise = NOISE_OVER_SPREAD * spread * rng.standard_normal((CLASSES * PER_CLASS, dimensions))
    vectors = np.clip(np.repeat(centres, PER_CLASS, axis=0) + noise, 0, RELU6).astype(np.float32)
    labels = tuple(f"class {k + 1:02d}" for k in range(CLASSES) for _ in range(PER_CLASS))
    names = tuple(f"photo {i + 1}" for i in range(len(labels)))
    return teach.Examples(lite0.NAME, vectors, labels, names, digests=names)


def _embedding_rows(quick: bool) -> tuple[list[Row], teach.Examples]:
    """Time embedding against raw LiteRT; return the rows and the real vectors computed."""
    say("teach: exporting EfficientNet-Lite0's feature extractor (child process, once)")
    started = time.perf_counter()
    extractor = teach.extractor(lite0.NAME)
    export_seconds = time.perf_counter() - started
    spec = models.get_spec(lite0.NAME)
    cat = images.fit_to_input(photos.sample_photo("cat"), spec.input_size, teach.CROP_FRACTION)
    ready = spec.batch(cat)
    rounds, calls, warmup = (1, 5, 2) if quick else (3, 10, 2)
    chosen = _unique_photos(rounds * (calls + warmup))
    cached = _forget_vectors(chosen)
    extractor.run(ready)  # the app's extractor is warm in a server that embedded before
    embedded: list[teach.Examples] = []
    say(f"teach: timing the embedding of {len(chosen)} different 2 MP JPEGs against raw LiteRT")
    stats = compare(
        {
            "embed": _embed_one_by_one(chosen, embedded),
            "script": _raw_script_one_by_one(chosen, teach.features_path(lite0.NAME)),
            "decode": _decode_one_by_one(chosen, spec),
            "raw": raw_litert(teach.features_path(lite0.NAME), ready),
        },
        rounds=rounds,
        calls=calls,
        warmup=warmup,
    )
    computed = sum(path.is_file() for path in cached)  # each photo's vector written once
    _forget_vectors(chosen)  # leave no benchmark pictures in a reused cache
    if computed != len(chosen):
        raise RuntimeError(f"Expected {len(chosen)} vectors computed. Received: {computed}")
    real = sum(embedded[1:], embedded[0])
    embed_ratio = ratio(stats["embed"], stats["script"])
    rows = [
        Row(
            GROUP,
            "embed one photo, uncached (teach.embed: decode + crop + extractor + cache)",
            "ms",
            stats["embed"],
            baseline="raw LiteRT script",
            ratio=embed_ratio,
            target=f"≤ {TARGET_EMBED_OVER_RAW}× raw LiteRT script",
            met=embed_ratio <= TARGET_EMBED_OVER_RAW,
            note=f"{len(chosen)} different 2 MP JPEGs ({PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, the "
            "example photos with noise), one per call, none in the vector cache; includes "
            "hashing the bytes and writing the vector to the cache; "
            f"{real.vectors.shape[1]} dimensions; opening the extractor (exported once, in a "
            f"child process, if not in the engine cache) took {export_seconds:.1f} s",
        ),
        Row(
            GROUP,
            "the same photos · raw LiteRT script (Pillow draft decode + crop + bare Interpreter)",
            "ms",
            stats["script"],
            baseline="extractor alone",
            ratio=ratio(stats["script"], stats["raw"]),
            note="what a hand-written embedding loop costs: the baseline of the row above",
        ),
        Row(
            GROUP,
            "decode + crop + scale alone (embed's work before the extractor)",
            "ms",
            stats["decode"],
            baseline="raw LiteRT",
            ratio=ratio(stats["decode"], stats["raw"]),
            note="the same photos: images.decode_image (JPEG draft mode) and fit_to_input",
        ),
        Row(
            GROUP,
            "feature extractor · raw LiteRT Interpreter, ready input",
            "ms",
            stats["raw"],
        ),
    ]
    return rows, real


def _training_rows(real: teach.Examples, quick: bool) -> tuple[list[Row], teach.Taught]:
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    examples = _synthetic_examples(real)
    repeats = 1 if quick else 3
    say(f"teach: training on {CLASSES} classes x {PER_CLASS} vectors, {repeats} time(s)")
    # Untimed: scikit-learn's imports and first-call setup, as in a server that taught before.
    teach.train(examples.relabel({"class 01": "class 01", "class 02": "class 02"}))
    y = np.repeat(np.arange(CLASSES), PER_CLASS)
    trained, fitted = [], []
    for _ in range(repeats):  # in turns, so a slow patch of the machine falls on both
        started = time.perf_counter()
        taught = teach.train(examples)
        trained.append(time.perf_counter() - started)
        with threadpool_limits(limits=1, user_api="blas"):  # as train fits
            fitted.append(seconds(lambda: teach._head().fit(examples.vectors, y)))
    zeros = float(np.mean(examples.vectors == 0))
    median = Stats.of(trained).median
    rows = [
        Row(
            GROUP,
            f"train {CLASSES} classes × {PER_CLASS} photos "
            f"(teach.train: {taught.folds}-fold cross-validation + final fit)",
            "s",
            Stats.of(trained),
            target=f"about a second (≤ {TARGET_TRAIN_SECONDS:g} s)",
            met=median <= TARGET_TRAIN_SECONDS,
            note=f"synthetic {examples.vectors.shape[1]}-dimensional vectors: class centres "
            "around the mean of the real vectors above, as far apart as the three example "
            f"photos' vectors, plus Gaussian noise {NOISE_OVER_SPREAD}× that, clipped to "
            f"ReLU6's [0, 6] ({zeros:.0%} zeros); cross-validated accuracy "
            f"{taught.accuracy:.1%}; BLAS on one thread, as teach.train sets it (its default "
            "of every core made the same training 5-7× slower on this machine)",
        ),
        Row(
            GROUP,
            "final fit alone (teach._head() on the 1,000 vectors)",
            "s",
            Stats.of(fitted),
        ),
    ]
    return rows, taught


def _inference_rows(scratch: Path, taught: teach.Taught, quick: bool) -> list[Row]:
    say("teach: keeping the taught model and building its Teachable Machine zip (child process)")
    teach.save(TAUGHT_NAME, taught)
    with zipfile.ZipFile(io.BytesIO(models.download(TAUGHT_NAME))) as archive:
        fused = scratch / "taught-model_unquant.tflite"
        fused.write_bytes(archive.read("model_unquant.tflite"))
    base = lite0.load()
    app = models.load(TAUGHT_NAME)
    pixels = images.fit_to_input(
        photos.sample_photo("cat"), app.spec.input_size, teach.CROP_FRACTION
    )
    batch = app.spec.batch(pixels)  # the base's scaling
    minus_one_to_one = pixels[np.newaxis].astype(np.float32) / np.float32(127.5) - np.float32(1)
    raw_fused = raw_litert(fused, minus_one_to_one)
    difference = float(np.abs(raw_fused() - app.engine.run(batch)).max())
    say("teach: timing the taught model (app engine, fused LiteRT) against the base model")
    stats = compare(
        {
            "base": lambda: base.engine.run(batch),
            "app": lambda: app.engine.run(batch),
            "fused": raw_fused,
        },
        rounds=1 if quick else 5,
        calls=5 if quick else 20,
    )
    return [
        Row(
            GROUP,
            f"{lite0.NAME} itself · app engine (load_model, 1,000 classes)",
            "ms",
            stats["base"],
            note="the same centre square (the whole one, as taught models crop) for all three",
        ),
        Row(
            GROUP,
            "taught model · app engine (extractor + NumPy head, load_model by name)",
            "ms",
            stats["app"],
            baseline=lite0.NAME,
            ratio=ratio(stats["app"], stats["base"]),
        ),
        Row(
            GROUP,
            "taught model · fused model_unquant.tflite of its download, raw LiteRT",
            "ms",
            stats["fused"],
            baseline=lite0.NAME,
            ratio=ratio(stats["fused"], stats["base"]),
            note="input scaled to [-1, 1] as Teachable Machine's; its probabilities differ from "
            f"the app engine's by at most {difference:.1e}",
        ),
    ]


def run(scratch: Path, *, quick: bool) -> list[Row]:
    """Measure embedding, training and the taught model's inference on EfficientNet-Lite0."""
    rows, real = _embedding_rows(quick)
    training, taught = _training_rows(real, quick)
    return rows + training + _inference_rows(scratch, taught, quick)
