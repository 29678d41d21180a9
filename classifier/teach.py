"""Teach the app your own classes: a few photos per class, a linear head on a built-in network.

    examples = teach.embed(photos, "efficientnet_lite0")      # one vector per photo
    taught = teach.train(examples)                             # cross-validated, then fit
    teach.save("Mugs", taught)                                 # a model like any added one

A built-in network gives each photo a feature vector: the input of its classifier
layer, from a LiteRT file of its own (`<model>-features-....tflite`, exported once by
a child process beside the classifier's engine file, so the server never imports
TensorFlow for it). Photos are cropped as an added model crops them (the whole
centre square, as Teachable Machine does) and scaled as the base network expects.
Vectors are cached by the photo's sha256, so retraining never computes one twice.

The head is scikit-learn's LogisticRegression (balanced class weights, L2, C=1) on
the vectors as they are: on few photos it beat standardized vectors (100 % against
98-99 % held-out on the tests' six classes with 2 to 8 photos each). A taught model is
`softmax(features @ weights + bias)`. It is kept like an added model
(`classifier.models.own`, one database row and one file), the file being a NumPy `.npz`
(read with `allow_pickle=False`) that also holds the training vectors, so photos added
later retrain it under the same name.
"""

from __future__ import annotations

import io
import logging
import math
import os
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from classifier import files, images
from classifier.config import get_settings
from classifier.errors import ModelChanged
from classifier.models import builtin, derived, own
from classifier.models.errors import DerivedFileFailed, ModelError
from classifier.models.spec import Kind, ModelSpec, OwnDetails
from classifier.models.taught import read_weights, softmax
from classifier.runtime.engines import LiteRTEngine

log = logging.getLogger(__name__)
CROP_FRACTION = 1.0  # the whole centre square, as added (Teachable Machine) models see it
MIN_CLASSES, MAX_CLASSES = 2, 50
MIN_PHOTOS = 2  # per class
MAX_FOLDS = 5
DEFAULT_BASE = builtin.FALLBACK_MODEL  # EfficientNet-Lite0: its weights ship with the app
THRESHOLD_STEP = 5  # percent: a suggested threshold is a step of the sidebar's slider
WRONG_SHARE = 0.95  # a suggested threshold is above this share of the wrong answers
RIGHT_KEPT = 0.5  # ... and leaves at least this share of the right answers sure
FEW_CLASSES = 3  # up to this many, a class of photos that are none of them is suggested
CONFIDENT_MISTAKE = 0.8  # a wrong answer this sure is a confident mistake
OTHER_CLASS_NAMES = {"something else", "other", "others", "none", "none of these", "nothing"}


class TeachError(ValueError):
    """Photos or classes that cannot be taught; the message is one sentence for a person."""


# --- The feature extractor of a built-in network ------------------------------------------


def bases() -> list[str]:
    """Return the built-in networks that can give features here (their weights are here)."""
    return [name for name in builtin.MODELS if builtin.get_spec(name).weights_file().is_file()]


def check_base(base: str) -> ModelSpec:
    """Return a base network's spec, or raise TeachError saying why it cannot be used here."""
    try:
        return builtin.base_here(base)
    except ModelError as exc:
        raise TeachError(str(exc)) from None


def features_path(base: str) -> Path:
    """Return where this server keeps a base network's feature extractor.

    Raises:
        TeachError: the base's weights are not here, or no engine folder can be written.
    """
    spec = check_base(base)
    try:
        return derived.features_path(spec)
    except DerivedFileFailed as exc:
        raise TeachError(str(exc)) from exc


def extractor(base: str) -> LiteRTEngine:
    """Return a base network's feature extractor, exported once (in a child process) if needed.

    Raises:
        TeachError: the base cannot be used here, or its export failed (one sentence).
    """
    spec = check_base(base)
    try:
        return derived.extractor(spec)
    except DerivedFileFailed as exc:
        raise TeachError(f"The feature extractor of {spec.title}: {exc}") from exc


def extractor_ready(base: str) -> bool:
    """Tell whether a base's feature extractor is open or on disk (no export would be needed)."""
    try:
        spec = check_base(base)
    except TeachError:
        return True  # nothing to wait for: using it will say why it cannot be
    return derived.extractor_ready(spec)


# --- Vectors -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    """One training photo: a name to show (file name) and its bytes, or the file holding them
    (read when its turn comes)."""

    name: str
    data: bytes | Path
    label: str


@dataclass(frozen=True)
class Examples:
    """Training vectors with their classes, and the photos that could not be read."""

    base: str
    vectors: np.ndarray  # (n, dimensions) float32
    labels: tuple[str, ...]  # one class name per vector
    names: tuple[str, ...]  # one photo name per vector
    digests: tuple[str, ...]  # sha256 of each photo's bytes
    unreadable: tuple[tuple[str, str], ...] = ()  # (photo name, why)

    def __add__(self, other: Examples) -> Examples:
        if other.base != self.base:
            raise TeachError("Photos embedded by two different base networks cannot be mixed.")
        return Examples(
            self.base,
            np.concatenate([self.vectors, other.vectors]),
            self.labels + other.labels,
            self.names + other.names,
            self.digests + other.digests,
            self.unreadable + other.unreadable,
        )

    def relabel(self, names: dict[str, str]) -> Examples:
        """Return the vectors of the classes named in `names` only, under their new names."""
        keep = [i for i, label in enumerate(self.labels) if label in names]
        return Examples(
            self.base,
            self.vectors[keep],
            tuple(names[self.labels[i]] for i in keep),
            tuple(self.names[i] for i in keep),
            tuple(self.digests[i] for i in keep),
        )

    def take(self, indices: Sequence[int]) -> Examples:
        """Return only the vectors at these positions."""
        return Examples(
            self.base,
            self.vectors[list(indices)],
            tuple(self.labels[i] for i in indices),
            tuple(self.names[i] for i in indices),
            tuple(self.digests[i] for i in indices),
            self.unreadable,
        )

    def counts(self) -> dict[str, int]:
        """Return the number of photos of each class, in the order classes first appear."""
        counts: dict[str, int] = {}
        for label in self.labels:
            counts[label] = counts.get(label, 0) + 1
        return counts


def _cache_folder(base: str) -> Path:
    return get_settings().cache_dir / "embeddings" / features_path(base).stem


def embed(
    photos: Sequence[Photo],
    base: str = DEFAULT_BASE,
    progress: Callable[[int, int], None] | None = None,
) -> Examples:
    """Return each readable photo's feature vector; unreadable photos are listed, not dropped
    silently. Vectors already computed for the same bytes come from the cache.

    Raises:
        TeachError: more photos than the limit, or the base cannot be used.
    """
    limit = get_settings().teach_max_photos
    if len(photos) > limit:
        raise TeachError(
            f"That is {len(photos):,} photos; at most {limit:,} can be taught at once "
            "(CLASSIFIER_TEACH_MAX_PHOTOS)."
        )
    spec = check_base(base)
    folder = _cache_folder(base)
    vectors, kept, unreadable = [], [], []
    opened: LiteRTEngine | None = None
    for number, photo in enumerate(photos, start=1):
        try:  # a file is read only now: one photo's bytes in memory at a time
            data = photo.data if isinstance(photo.data, bytes) else photo.data.read_bytes()
        except OSError as exc:
            unreadable.append((photo.name, f"It cannot be read ({exc.strerror or exc})."))
            if progress:
                progress(number, len(photos))
            continue
        digest = images.content_digest(data)
        cached = folder / f"{digest}.npy"
        vector = _read_cached(cached)
        if vector is None:
            try:
                decoded = images.decode_image(
                    data, min_side=images.min_side_for(spec.input_size, CROP_FRACTION)
                )
            except images.ImageError as exc:
                unreadable.append((photo.name, str(exc)))
                if progress:
                    progress(number, len(photos))
                continue
            opened = opened or extractor(base)
            pixels = images.fit_to_input(decoded.image, spec.input_size, CROP_FRACTION)
            vector = opened.run(spec.batch(pixels))[0]
            _write_cached(cached, vector)
        vectors.append(vector)
        kept.append((photo.label, photo.name, digest))
        if progress:
            progress(number, len(photos))
    dimensions = vectors[0].shape[0] if vectors else 0
    return Examples(
        base=base,
        vectors=np.array(vectors, dtype=np.float32).reshape(len(vectors), dimensions),
        labels=tuple(label for label, _, _ in kept),
        names=tuple(name for _, name, _ in kept),
        digests=tuple(digest for _, _, digest in kept),
        unreadable=tuple(unreadable),
    )


def _read_cached(path: Path) -> np.ndarray | None:
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return vector if vector.ndim == 1 and vector.dtype == np.float32 else None


def _write_cached(path: Path, vector: np.ndarray) -> None:
    """Write a vector under a temporary name, then move it into place (never half a file).

    Not synced to disk: a vector lost in a crash is computed again.
    """
    buffer = io.BytesIO()
    np.save(buffer, vector.astype(np.float32), allow_pickle=False)
    temporary = files.temporary_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(buffer.getvalue())
        os.replace(temporary, path)
    except OSError as exc:  # a cache that cannot be written only costs time
        log.warning("Cannot cache a photo's vector in %s: %s", path.parent, exc)
        temporary.unlink(missing_ok=True)


# --- Training ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Taught:
    """A trained head, what it was trained on, and how well it did in cross-validation."""

    examples: Examples
    class_names: tuple[str, ...]
    weights: np.ndarray  # (dimensions, classes) float32
    bias: np.ndarray  # (classes,) float32
    predicted: tuple[str, ...]  # cross-validated class of each training photo
    confidence: tuple[float, ...]  # the probability cross-validation gave that class
    folds: int

    @property
    def accuracy(self) -> float:
        """The share of photos their cross-validation fold classified right."""
        right = sum(p == t for p, t in zip(self.predicted, self.examples.labels, strict=True))
        return right / len(self.predicted)

    def class_accuracy(self) -> dict[str, float]:
        """Return each class's cross-validated accuracy (its recall)."""
        counts = self.confusion()
        right = np.diag(counts) / counts.sum(axis=1)
        return {name: float(share) for name, share in zip(self.class_names, right, strict=True)}

    def confusion(self) -> np.ndarray:
        """Return counts[true class, predicted class] over the cross-validated predictions."""
        index = {name: i for i, name in enumerate(self.class_names)}
        counts = np.zeros((len(index), len(index)), dtype=np.int64)
        for p, t in zip(self.predicted, self.examples.labels, strict=True):
            counts[index[t], index[p]] += 1
        return counts

    def mistakes(self) -> list[tuple[int, str, str]]:
        """Return (photo number, its class, what cross-validation took it for) per mistake."""
        return [
            (i, t, p)
            for i, (p, t) in enumerate(zip(self.predicted, self.examples.labels, strict=True))
            if p != t
        ]

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(vectors, np.float32) @ self.weights + self.bias)

    def answers(self, right: bool) -> list[float]:
        """Return the confidence of the cross-validated answers that were right (or wrong)."""
        return [
            sure
            for sure, p, t in zip(
                self.confidence, self.predicted, self.examples.labels, strict=True
            )
            if (p == t) is right
        ]


@dataclass(frozen=True)
class Threshold:
    """A confidence threshold learned from the wrong answers of cross-validation.

    `value` is the smallest step of the sidebar's slider above the confidence of
    `WRONG_SHARE` of the wrong answers (all of them, up to 20). It is None when no
    threshold sets the wrong answers apart: it would be 100 %, or mark most right
    answers unsure too.
    """

    value: float | None  # answers below it are marked unsure
    wrong_at_most: float  # the confidence of the wrong answers it is set above
    wrong_below: int  # how many wrong answers are below it
    wrong: int
    right_kept: int  # how many right answers are at or above it
    right: int


def unsure_threshold(taught: Taught) -> Threshold | None:
    """Return the threshold that marks a taught model's wrong answers unsure (None: it made
    no mistakes in cross-validation, so they suggest none)."""
    wrong, right = taught.answers(right=False), taught.answers(right=True)
    if not wrong:
        return None
    at_most = float(np.quantile(wrong, WRONG_SHARE, method="higher"))
    percent = (math.floor(at_most * 100 + 1e-9) // THRESHOLD_STEP + 1) * THRESHOLD_STEP
    value = percent / 100
    right_kept = sum(sure >= value for sure in right)
    if percent >= 100 or right_kept < len(right) * RIGHT_KEPT:
        return Threshold(None, at_most, 0, len(wrong), right_kept, len(right))
    return Threshold(
        value=value,
        wrong_at_most=at_most,
        wrong_below=sum(sure < value for sure in wrong),
        wrong=len(wrong),
        right_kept=right_kept,
        right=len(right),
    )


def needs_other_class(taught: Taught) -> bool:
    """Tell whether a class of photos that are none of the others would help: the model has
    few classes, or its mistakes were confident (unless a class is named as such already)."""
    if any(name.casefold() in OTHER_CLASS_NAMES for name in taught.class_names):
        return False
    confident = any(sure >= CONFIDENT_MISTAKE for sure in taught.answers(right=False))
    return len(taught.class_names) <= FEW_CLASSES or confident


def tidy(name: str) -> str:
    """Return a class name as it is kept: spaces collapsed, Unicode in NFC form."""
    return unicodedata.normalize("NFC", " ".join(name.split()))


def check_class_name(name: str) -> str:
    """Return a class name tidied up, or raise TeachError."""
    name = tidy(name)
    if not name:
        raise TeachError("Every class needs a name.")
    if len(name) > 200:
        raise TeachError(f"The class name “{name[:40]}…” is too long; at most 200 characters.")
    if not name.isprintable():
        raise TeachError("Class names cannot hold control characters.")
    return name


def check_classes(names: Sequence[str]) -> tuple[str, ...]:
    """Return the class names tidied, or raise TeachError: too few, too many, or repeated."""
    tidy = [check_class_name(name) for name in names]
    if len(tidy) < MIN_CLASSES:
        raise TeachError(f"Teach at least {MIN_CLASSES} classes; there is {len(tidy)}.")
    if len(tidy) > MAX_CLASSES:
        raise TeachError(f"At most {MAX_CLASSES} classes can be taught; there are {len(tidy)}.")
    seen: set[str] = set()
    for name in tidy:
        if name.casefold() in seen:
            raise TeachError(f"Two classes are called “{name}”; every class needs its own name.")
        seen.add(name.casefold())
    return tuple(tidy)


def _head():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(class_weight="balanced", C=1.0, max_iter=2000)


def train(examples: Examples, class_names: Sequence[str] | None = None) -> Taught:
    """Cross-validate a head on the vectors, then fit it on all of them.

    Args:
        class_names: the classes in the model's order (default: as they first appear).

    Raises:
        TeachError: fewer than 2 classes, a class with fewer than 2 photos, ...
    """
    limit = get_settings().teach_max_photos
    if len(examples.labels) > limit:
        raise TeachError(
            f"That is {len(examples.labels):,} photos; at most {limit:,} can be taught at once "
            "(CLASSIFIER_TEACH_MAX_PHOTOS)."
        )
    examples = _without_repeats(examples)
    counts = examples.counts()
    names = check_classes(list(class_names) if class_names is not None else list(counts))
    for name in names:
        if counts.get(name, 0) < MIN_PHOTOS:
            have = counts.get(name, 0)
            raise TeachError(
                f"The class “{name}” has {have} photo{'' if have == 1 else 's'}; "
                f"each class needs at least {MIN_PHOTOS}."
            )
    if extra := set(counts) - set(names):
        raise TeachError(f"Some photos belong to a class that is not taught: {sorted(extra)[0]}.")
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    index = {name: i for i, name in enumerate(names)}
    y = np.array([index[label] for label in examples.labels])
    folds = min(MAX_FOLDS, min(counts[name] for name in names))
    # One BLAS thread: L-BFGS makes many small matrix products, which several threads
    # slow down 5-7x on a 2-core machine (and would take cores from other visitors).
    with threadpool_limits(limits=1, user_api="blas"):
        held_out = cross_val_predict(
            _head(),
            examples.vectors,
            y,
            cv=StratifiedKFold(folds, shuffle=True, random_state=0),
            method="predict_proba",
        )
        weights, bias = _weights(_head().fit(examples.vectors, y), len(names))
    predicted = held_out.argmax(axis=1)
    return Taught(
        examples=examples,
        class_names=names,
        weights=weights,
        bias=bias,
        predicted=tuple(names[i] for i in predicted),
        confidence=tuple(float(p) for p in held_out[np.arange(len(y)), predicted]),
        folds=folds,
    )


def _without_repeats(examples: Examples) -> Examples:
    """Return the examples with each photo once (the same bytes twice would sit on both sides
    of a cross-validation split and flatter it).

    Raises:
        TeachError: the same photo is given to two classes.
    """
    first: dict[str, int] = {}
    keep = []
    for i, digest in enumerate(examples.digests):
        if digest not in first:
            first[digest] = i
            keep.append(i)
        elif examples.labels[first[digest]] != examples.labels[i]:
            j = first[digest]
            raise TeachError(
                f"The same photo is in two classes: “{examples.names[j]}” in "
                f"“{examples.labels[j]}” and “{examples.names[i]}” in “{examples.labels[i]}”."
            )
    return examples if len(keep) == len(examples.digests) else examples.take(keep)


def _weights(regression, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (weights, bias) such that softmax(x @ weights + bias) is sklearn's predict_proba."""
    coef, intercept = regression.coef_, regression.intercept_  # (classes, d), (classes,)
    if classes == 2:  # sklearn's binary logit of class 1; as a softmax over [0, logit]
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    return coef.T.astype(np.float32), intercept.astype(np.float32)


# --- Keeping a taught model ----------------------------------------------------------------


def head_file(taught: Taught) -> bytes:
    """Return a taught model's file: its head and its training vectors, as a NumPy .npz."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        weights=taught.weights,
        bias=taught.bias,
        class_names=np.array(taught.class_names, dtype=str),
        vectors=taught.examples.vectors,
        labels=np.array(taught.examples.labels, dtype=str),
        names=np.array(taught.examples.names, dtype=str),
        digests=np.array(taught.examples.digests, dtype=str),
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class Head:
    """A taught model's file, read back."""

    weights: np.ndarray
    bias: np.ndarray
    class_names: tuple[str, ...]
    examples: Examples = field(repr=False)


def read_head(path_or_data: Path | bytes, base: str) -> Head:
    """Read a taught model's file (never unpickling anything)."""
    weights, bias, class_names = read_weights(path_or_data)
    source = io.BytesIO(path_or_data) if isinstance(path_or_data, bytes) else path_or_data
    with np.load(source, allow_pickle=False) as npz:
        examples = Examples(
            base=base,
            vectors=npz["vectors"].astype(np.float32),
            labels=tuple(npz["labels"].tolist()),
            names=tuple(npz["names"].tolist()),
            digests=tuple(npz["digests"].tolist()),
        )
    return Head(weights=weights, bias=bias, class_names=class_names, examples=examples)


def retraining(name: str, scope=None):
    """Return a taught model's name tidied up, and the kept model it would retrain (None:
    a new one). The one rule: a taught model is retrained under its name, a model someone
    added never is.

    Raises:
        ModelFileError: the name is not usable.
        TeachError: the name is an added model's.
    """
    from classifier.history import owners, registry

    name = own.check_name(name)
    existing = registry.get_model(own.store().scoped(scope or owners.EVERYONE), name)
    if existing is not None and OwnDetails.kind_of(existing.details) is not Kind.TAUGHT:
        raise TeachError(f"“{name}” is an added model, not a taught one; pick another name.")
    return name, existing


def save(
    name: str,
    taught: Taught,
    *,
    replace: bool = False,
    scope=None,
    threshold: float | None = None,
    started_from: str | None = None,
):
    """Keep a taught model under a name, so the picker, the CLI and the history have it.

    Args:
        replace: a taught model of that name is replaced (retrained); an added model never is.
        started_from: with `replace`, the sha256 of the version the training started from:
            if that model was retrained or removed since, nothing is kept (ModelChanged).
        threshold: its confidence threshold (`unsure_threshold`), kept with it when given.
        scope: whose model it is (`history.owners.Scope`); nobody's by default. Only a
            model in the scope can be replaced, and it stays its owner's.

    Returns:
        The kept model (`models.AddedModel`).

    Raises:
        ModelFileError: the name is not usable.
        ModelNameTaken: another model has this name (or `replace` is false).
        ModelChanged: the model started from was retrained or removed meanwhile.
        TeachError: the name is an added model's, which retraining cannot replace.
        HistoryReadOnlyError: the database cannot be written.
    """
    from classifier.history import owners

    scope = scope or owners.EVERYONE
    if replace:
        name, replacing = retraining(name, scope)
        if started_from is not None and (replacing is None or replacing.sha256 != started_from):
            raise ModelChanged.about(name)
    else:  # a name taken by any model: ModelNameTaken when kept
        name, replacing = own.check_name(name), None
    data = head_file(taught)
    base = builtin.get_spec(taught.examples.base)
    classes, dimensions = len(taught.class_names), taught.weights.shape[0]
    photos = len(taught.examples.labels)
    details = {
        "kind": "taught",
        "base": base.name,
        "class_names": list(taught.class_names),
        "size": base.input_size,
        "input_dtype": "float32",
        "outputs": "probabilities",
        "dimensions": int(dimensions),
        "photos": photos,
        "accuracy": round(taught.accuracy, 4),
        "parameters": (base.parameters or 0) + dimensions * classes + classes,
    }
    if threshold is not None:
        details["threshold"] = threshold
    source = f"Taught from {photos:,} photos on {base.title}"
    return own.keep(name, source, details, data, replacing=replacing, scope=scope)


def taught_examples(name: str, scope=None) -> tuple[str, Examples, str]:
    """Return a taught model's base, its training vectors and the version they are of (its
    file's sha256: `save`'s `started_from`), to add photos and retrain it; the name is
    looked up among a scope's models (`history.owners.Scope`; anyone's by default).

    Raises:
        TeachError: the model is an added one, not a taught one.
        ModelError: no model has this name.
    """
    model = own.find(name, scope)
    if not model.taught or model.base is None:
        raise TeachError(f"“{name}” is an added model, not a taught one.")
    examples = read_head(own.materialize(model.entry), model.base).examples
    return model.base, examples, model.entry.sha256
