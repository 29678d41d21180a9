"""Reading the model files people add: formats, zips, labels, scaling, then the check.

Adding a model takes two steps, so a page can show a test answer in between:

    candidate = upload.read_model(data, labels_data)      # checked and converted, not kept
    prediction = classify(picture, candidate.loaded("minus_one_to_one"))
    own.save(name, candidate, "minus_one_to_one")          # now in the picker, CLI and history

Reading the bytes is plain Python here. Loading a model (which can carry code, or crash
the process that opens it) happens only in a child process (`classifier.models.convert`),
which checks it, converts a Keras model to LiteRT and runs it once.

Formats are told by their content, never by the file name:
- LiteRT (`.tflite`): a FlatBuffer whose identifier, at byte 4, is `TFL3`.
- ONNX (`.onnx`, from PyTorch, timm or Hugging Face exports): a protobuf that starts with
  its IR version (`engines.is_onnx`). It is kept and run as it is, on ONNX Runtime.
- Keras 2 or 3 HDF5 (`.h5`): the HDF5 signature.
- Keras 3 (`.keras`): a zip holding `config.json` and `metadata.json`.
- A zip of a model file and its labels (`model.onnx` and `labels.txt`, say), such as
  Teachable Machine's exports:
  `keras_model.h5`, `model_unquant.tflite` or the quantized `model.tflite`, each
  with `labels.txt` (`0 Class name` per line).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from classifier import files
from classifier.config import get_settings
from classifier.images import CROP_FRACTION, size_text
from classifier.models import derived
from classifier.models.errors import ModelFileError
from classifier.models.spec import Kind, LoadedModel, ModelSpec, OwnDetails
from classifier.runtime.child import ChildFailed
from classifier.runtime.engines import is_onnx, open_model_file

MAX_ZIP_ENTRIES = 64
MAX_ZIP_INDEX_BYTES = 256 * 1024  # a zip's central directory: MAX_ZIP_ENTRIES need a few KB
MAX_LABELS_BYTES = 4_000_000  # MAX_CLASSES names of MAX_CLASS_NAME_LENGTH, with room
MAX_CLASSES = 10_000
MAX_CLASS_NAME_LENGTH = 200  # the history's label columns hold up to this
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"

# Teachable Machine's file names, in the order a zip's model is looked for.
TEACHABLE_MACHINE_FILES = ("keras_model.h5", "model_unquant.tflite", "model.tflite")


@dataclass(frozen=True)
class Scaling:
    """One way of turning pixels in [0, 255] into a network's input."""

    name: str
    title: str
    scale: Callable[[np.ndarray], np.ndarray]


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255

SCALINGS: dict[str, Scaling] = {
    scaling.name: scaling
    for scaling in (
        Scaling(
            "minus_one_to_one",
            "[-1, 1]: x / 127.5 - 1 (Teachable Machine, MobileNet)",
            lambda x: x / np.float32(127.5) - np.float32(1.0),
        ),
        Scaling("zero_to_one", "[0, 1]: x / 255", lambda x: x / np.float32(255.0)),
        Scaling("raw", "raw 0-255: the model scales pixels itself", lambda x: x),
        Scaling(
            "imagenet",
            "ImageNet mean/std: (x / 255 - mean) / std, per channel",
            lambda x: (x - IMAGENET_MEAN) / IMAGENET_STD,
        ),
    )
}


def scaling(name: str) -> Scaling:
    """Return a scaling by name.

    Raises:
        ModelFileError: no scaling has that name.
    """
    try:
        return SCALINGS[name]
    except KeyError:
        raise ModelFileError(
            f"Expected the preprocessing to be one of {', '.join(SCALINGS)}. Received: {name!r}"
        ) from None


def scaling_for_quantized_input(scale: float, zero_point: int, signed: bool = False) -> str | None:
    """Tell which scaling a uint8/int8 input expects, from its quantization; None if none fits.

    The quantized value q stands for (q - zero_point) * scale, so the input range the
    model was converted with is that of q over its 256 values.
    """
    if scale <= 0:
        return None
    low = ((-128 if signed else 0) - zero_point) * scale
    high = low + 255 * scale
    for name, (want_low, want_high) in {
        "minus_one_to_one": (-1.0, 1.0),
        "zero_to_one": (0.0, 1.0),
        "raw": (0.0, 255.0),
    }.items():
        tolerance = 0.02 * (want_high - want_low)
        if abs(low - want_low) <= tolerance and abs(high - want_high) <= tolerance:
            return name
    return None


@dataclass(frozen=True)
class ModelFile:
    """A model file found in what a person uploaded, before it is run."""

    format: str  # "tflite", "onnx", "h5" or "keras"
    data: bytes
    labels: tuple[str, ...] | None  # from the zip, or None when the person must give them
    teachable_machine: bool  # a Teachable Machine export (so [-1, 1] at 224x224, whole picture)
    described_as: str  # what the person added, e.g. "Teachable Machine zip (keras_model.h5)"


FORMAT_TITLES = {
    "tflite": "LiteRT file",
    "onnx": "ONNX file",
    "h5": "Keras HDF5 file",
    "keras": "Keras 3 file",
}
RUN_AS_IT_IS = ("tflite", "onnx")  # formats kept and run as added; Keras is converted to LiteRT


def _sniff_head(head: bytes) -> str | None:
    """Return "tflite", "onnx", "h5" or "zip" from a file's first 8 bytes, or None."""
    if len(head) >= 8 and head[4:8] == b"TFL3":
        return "tflite"
    if is_onnx(head):
        return "onnx"
    if head.startswith(HDF5_SIGNATURE):
        return "h5"
    return "zip" if head.startswith(ZIP_SIGNATURE) else None


def sniff(data: bytes, max_bytes: int | None = None) -> str | None:
    """Return "tflite", "onnx", "h5", "keras" or "zip" from a file's content, or None."""
    kind = _sniff_head(data[:8])
    if kind == "zip":
        names = set(_safe_zip(data, max_bytes or len(data)).namelist())
        return "keras" if {"config.json", "metadata.json"} <= names else "zip"
    return kind


NOT_A_MODEL = (
    "This file is not a model this app can read: expected a Teachable Machine export (zip), "
    "a Keras file (.keras or .h5), a LiteRT file (.tflite) or an ONNX file (.onnx)."
)


def read_upload(data: bytes, labels_data: bytes | None, max_bytes: int) -> ModelFile:
    """Find the model in an uploaded file, and its class names in the zip or the labels file.

    Args:
        data: The uploaded file.
        labels_data: A labels file uploaded beside it, or None.
        max_bytes: The largest model file accepted, alone or in a zip.

    Raises:
        ModelFileError: not a model, an unsafe or oversized file or zip, or unusable labels.
    """
    if len(data) > max_bytes:
        raise ModelFileError(
            f"This file is {size_text(len(data), round_up=True)}; model files up to "
            f"{size_text(max_bytes)} are accepted."
        )
    kind = sniff(data, max_bytes)
    if kind is None:
        raise ModelFileError(NOT_A_MODEL)
    if kind != "zip":
        labels = parse_labels(labels_data) if labels_data is not None else None
        return ModelFile(kind, data, labels, False, FORMAT_TITLES[kind])
    archive = _safe_zip(data, max_bytes)
    members = {
        name: info
        for name, info in ((i.filename, i) for i in archive.infolist())
        if not info.is_dir() and not name.startswith("__MACOSX/")
    }
    by_base = {PurePosixPath(name).name: name for name in members}
    model_name = next((by_base[n] for n in TEACHABLE_MACHINE_FILES if n in by_base), None)
    teachable = model_name is not None and "labels.txt" in by_base
    if model_name is None:
        models = [name for name in members if sniff_member(archive, name) is not None]
        if not models:
            raise ModelFileError(
                "This zip holds no model: expected a .tflite, .onnx, .h5 or .keras file in it."
            )
        if len(models) > 1:
            raise ModelFileError(
                f"This zip holds {len(models)} models ({', '.join(sorted(models)[:4])}); "
                "add them one at a time."
            )
        model_name = models[0]
    model_data = _read_member(archive, model_name, max_bytes)
    model_kind = sniff(model_data, max_bytes)
    if model_kind not in FORMAT_TITLES:
        raise ModelFileError(f"{model_name} in this zip is not a model this app can read.")
    if labels_data is None:
        labels_name = by_base.get("labels.txt") or _only_labels_file(members)
        if labels_name is None:
            raise ModelFileError(
                "This zip holds no labels.txt; add the labels file beside the model."
            )
        labels_data = _read_member(archive, labels_name, MAX_LABELS_BYTES)
    what = (
        f"Teachable Machine zip ({PurePosixPath(model_name).name})"
        if teachable
        else (f"zip ({PurePosixPath(model_name).name})")
    )
    return ModelFile(model_kind, model_data, parse_labels(labels_data), teachable, what)


def _read_member(archive: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    """Read one zip member, a chunk at a time, refusing it past `max_bytes` (whatever the zip
    declares: a crafted zip may understate a size).

    Raises:
        ModelFileError: the member is larger than `max_bytes`, or damaged.
    """
    if archive.getinfo(name).file_size > max_bytes:
        size = size_text(archive.getinfo(name).file_size, round_up=True)
        raise ModelFileError(_member_too_large(name, size, max_bytes))
    chunks, size = [], 0
    try:
        with archive.open(name) as member:
            while chunk := member.read(1024 * 1024):
                size += len(chunk)
                if size > max_bytes:  # past what the zip declared
                    more = f"more than {size_text(max_bytes)}"
                    raise ModelFileError(_member_too_large(name, more, max_bytes))
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ModelFileError(f"{name} in this zip is damaged ({exc}).") from None
    return b"".join(chunks)


def _member_too_large(name: str, size: str, max_bytes: int) -> str:
    what = "labels file" if max_bytes == MAX_LABELS_BYTES else "file"
    return f"{name} in this zip is {size}; a {what} up to {size_text(max_bytes)} is accepted."


def sniff_member(archive: zipfile.ZipFile, name: str) -> str | None:
    """Return the model format of one zip member from its first bytes, or None."""
    with archive.open(name) as member:
        kind = _sniff_head(member.read(8))
    if kind == "zip":  # a zip in the zip: only a Keras 3 file, by its name
        return "keras" if name.endswith(".keras") else None
    return kind


def _only_labels_file(members: dict[str, zipfile.ZipInfo]) -> str | None:
    texts = [name for name in members if name.lower().endswith((".txt", ".json"))]
    return texts[0] if len(texts) == 1 else None


def _safe_zip(data: bytes, max_bytes: int) -> zipfile.ZipFile:
    """Open a zip after checking its entries: no absolute or parent paths, bounded sizes.

    The index is checked before Python's zipfile reads it: its declared size and entry
    count bound what reading it costs, whatever else the zip claims.

    Raises:
        ModelFileError: the zip is damaged, unsafe or expands past the limits.
    """
    declared = _declared_index(data)
    if declared is not None and declared[0] > MAX_ZIP_ENTRIES:  # before reading the index
        raise ModelFileError(
            f"This zip holds {declared[0]:,} files; at most {MAX_ZIP_ENTRIES} are accepted."
        )
    if declared is not None and declared[1] > MAX_ZIP_INDEX_BYTES:
        raise ModelFileError(
            f"This zip's index is {size_text(declared[1], round_up=True)}; a zip of a model "
            "and its labels needs a few KB, so it is refused."
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"This zip file is damaged and cannot be opened ({exc}).") from None
    if len(entries) > MAX_ZIP_ENTRIES:
        raise ModelFileError(
            f"This zip holds {len(entries):,} files; at most {MAX_ZIP_ENTRIES} are accepted."
        )
    total = 0
    for entry in entries:
        path = PurePosixPath(entry.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", entry.filename):
            raise ModelFileError(
                f"This zip holds a file outside its own folder ({entry.filename!r}); it is refused."
            )
        total += entry.file_size
    if total > max_bytes + MAX_LABELS_BYTES:
        raise ModelFileError(
            f"This zip expands to {size_text(total, round_up=True)}; at most "
            f"{size_text(max_bytes)} of model and its labels are accepted."
        )
    return archive


def _declared_index(data: bytes) -> tuple[int, int] | None:
    """Return the entry count and the index's size in bytes that a zip's end record
    declares (None if it has none we can read).

    The end record is found as Python's zipfile finds it: the last signature whose
    comment length reaches the file's end. A zip64 archive is counted as too many files,
    since a model and its labels never need zip64's counts (and its own end record would
    declare the index's size past the checks here).
    """
    end = len(data)
    while (end := data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557), end)) >= 0:
        comment = int.from_bytes(data[end + 20 : end + 22], "little")
        if end + 22 + comment == len(data):
            break
    if end < 0:
        return None
    if end >= 20 and data[end - 20 : end - 16] == b"PK\x06\x07":  # the zip64 locator
        return 0xFFFF, 0
    entries = int.from_bytes(data[end + 10 : end + 12], "little")
    return entries, int.from_bytes(data[end + 12 : end + 16], "little")


_TEACHABLE_LINE = re.compile(r"^(\d+)\s+(.*)$")


def parse_labels(data: bytes) -> tuple[str, ...]:
    """Read class names: a JSON list, or one per line (Teachable Machine's `0 Name` lines too).

    Raises:
        ModelFileError: not text, empty, too many, too long, or the same name twice.
    """
    if len(data) > MAX_LABELS_BYTES:  # before decoding: a labels file is a few KB
        raise ModelFileError(
            f"The labels file is {size_text(len(data), round_up=True)}; labels files up to "
            f"{size_text(MAX_LABELS_BYTES)} are accepted."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelFileError("The labels file is not UTF-8 text.") from None
    names: list[str]
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"The labels file is not a valid JSON list ({exc.msg}).") from None
        except RecursionError:  # lists in lists, thousands deep
            raise ModelFileError("The labels file's JSON must be a list of class names.") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ModelFileError("The labels file's JSON must be a list of class names.")
        names = [v.strip() for v in value]
    else:
        names = [line.strip() for line in text.splitlines()]
        while names and not names[-1]:
            names.pop()
        numbered = [_TEACHABLE_LINE.match(line) for line in names]
        if names and all(m is not None and int(m[1]) == i for i, m in enumerate(numbered)):
            names = [m[2].strip() for m in numbered if m is not None]
    if not names:
        raise ModelFileError("The labels file holds no class names.")
    if len(names) > MAX_CLASSES:
        raise ModelFileError(
            f"The labels file names {len(names):,} classes; at most {MAX_CLASSES:,} are accepted."
        )
    seen: dict[str, int] = {}
    for line, name in enumerate(names, start=1):
        if not name:
            raise ModelFileError(
                f"Line {line} of the labels file is empty; every class needs a name."
            )
        if not name.isprintable():
            raise ModelFileError(
                f"Class name {line} holds control characters; class names are plain text."
            )
        if len(name) > MAX_CLASS_NAME_LENGTH:
            raise ModelFileError(
                f"Class name {line} is {len(name)} characters long; at most "
                f"{MAX_CLASS_NAME_LENGTH} are accepted."
            )
        if name in seen:
            raise ModelFileError(
                f"The labels file names “{name}” twice (lines {seen[name]} and {line}); "
                "every class needs its own name."
            )
        seen[name] = line
    return tuple(names)


# --- Checking a file in a child process --------------------------------------------------

TEACHABLE_MACHINE_SCALING = "minus_one_to_one"
WHOLE_PICTURE = 1.0  # added models see the whole picture's centre square, as Teachable Machine's


@dataclass(frozen=True)
class Candidate:
    """A model that was read, checked and converted, but not kept yet."""

    source: str  # what the person added, e.g. "Teachable Machine zip (keras_model.h5)"
    data: bytes  # the file that runs it: LiteRT (a Keras model converted) or ONNX
    class_names: tuple[str, ...]
    details: dict[str, Any]  # the child's report: format, input size, dtypes, outputs, ...
    detected_scaling: str | None  # None: the person must choose
    detected_crop: float = WHOLE_PICTURE  # torchvision's centre crop for an NCHW ONNX model

    @property
    def format(self) -> str:
        """ "tflite" or "onnx": the file kept and run."""
        return str(self.details.get("format", "tflite"))

    @cached_property
    def sha256(self) -> str:
        return files.sha256_of(self.data)

    def spec(
        self, scaling_name: str, name: str = "new model", crop: float | None = None
    ) -> ModelSpec:
        """Return the spec this candidate would have, to classify a test picture."""
        stored = self.details | {
            "scaling": scaling_name,
            "class_names": self.class_names,
            "crop": self.detected_crop if crop is None else crop,
        }
        return added_spec(name, OwnDetails.read(stored), None, self.source, self.sha256)

    def loaded(self, scaling_name: str, crop: float | None = None) -> LoadedModel:
        """Return the candidate as a loaded model, for a test answer before it is kept."""
        spec = self.spec(scaling_name, crop=crop)
        runner = open_model_file(self.data, get_settings().num_threads, softmax=spec.softmax)
        return LoadedModel(spec, runner, spec.name, spec.weights_origin, "")


def read_model(data: bytes, labels_data: bytes | None = None) -> Candidate:
    """Check a model file (and its labels), convert it to LiteRT if needed, run it once.

    Raises:
        ModelFileError: one sentence on why it cannot be added.
    """
    scratch = _scratch_folder()  # first: what an earlier, killed check left is deleted
    found: ModelFile = read_upload(data, labels_data, get_settings().max_model_bytes)
    if found.labels is None:
        raise ModelFileError(
            f"{'An' if found.format == 'onnx' else 'A'} {FORMAT_TITLES[found.format]} needs a "
            "labels file: one class name per line, or a JSON list."
        )
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=scratch) as folder:
        source = Path(folder) / f"source.{found.format}"
        source.write_bytes(found.data)
        if found.format == "tflite":
            report = _check("inspect", str(source))
            tflite = found.data
        elif found.format == "onnx":
            report = _check("inspect-onnx", str(source))
            tflite = found.data
        else:
            output = Path(folder) / "model.tflite"
            report = _check("convert", found.format, str(source), str(output))
            tflite = output.read_bytes()
    if report["classes"] != len(found.labels):
        raise ModelFileError(
            f"The model gives {report['classes']:,} class scores but the labels name "
            f"{len(found.labels):,} class{'' if len(found.labels) == 1 else 'es'}; they must "
            "match."
        )
    # A quantized input says its range itself; otherwise Teachable Machine's is known.
    detected = report.get("scaling_hint") or (
        TEACHABLE_MACHINE_SCALING if found.teachable_machine else None
    )
    report.setdefault("format", "tflite")
    producer = report.get("producer")  # an ONNX file's exporter, e.g. "pytorch 2.13.0"
    return Candidate(
        source=f"{found.described_as} from {producer}" if producer else found.described_as,
        data=tflite,
        class_names=found.labels,
        details=report,
        detected_scaling=detected,
        detected_crop=report.get("crop_hint") or WHOLE_PICTURE,
    )


SCRATCH_PREFIX = "added-model-"
STALE_SCRATCH_SECONDS = 24 * 3600  # checks waiting their turn are long done by then


def _scratch_folder() -> Path | None:
    """Return the folder where an added file waits while it is checked (`<data dir>/tmp`, or
    the system's where that cannot be made), after deleting what a killed server left there."""
    folder = get_settings().data_dir / "tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    now = time.time()
    for left in folder.glob(f"{SCRATCH_PREFIX}*"):
        try:
            if now - left.stat().st_mtime > STALE_SCRATCH_SECONDS:
                shutil.rmtree(left, ignore_errors=True)
        except OSError:  # another server removed it first
            continue
    return folder


def _check(*arguments: str) -> dict[str, Any]:
    """Have the child check (and convert) the file; its refusal is a ModelFileError."""
    try:
        return derived.run_convert(*arguments)
    except ChildFailed as exc:
        raise ModelFileError(str(exc)) from None


# How much of a picture an added model sees, by crop fraction of its shorter side.
CROPS = {
    WHOLE_PICTURE: "Whole centre square (Teachable Machine)",
    CROP_FRACTION: "Centre crop 87.5% (torchvision, timm)",
}


def added_spec(
    name: str, details: OwnDetails, path: Path | None, source: str, version: str
) -> ModelSpec:
    """Return the spec of an added model (`path` None: not kept yet, run from memory)."""
    assert details.scaling is not None
    return ModelSpec(
        name=name,
        title=name,
        input_size=details.size,
        parameters=details.parameters,
        preprocess=scaling(details.scaling).scale,
        weights_file=lambda: path or Path(),
        build=None,
        weights_origin=f"Added model: {source}",
        class_names=details.class_names,
        crop_fraction=details.crop,
        engine_file=path or Path(),
        softmax=details.logits,
        version=version,
        kind=Kind.ADDED,
    )
