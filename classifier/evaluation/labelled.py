"""A labelled set: pictures and the class each should be, and those labels matched to a
model's classes.

Two layouts, whatever brought the set (a folder here, a folder or zip from the browser, a
zip through the API):
- one folder per class (ImageFolder): `cat/001.jpg`, `dog/002.jpg`, ... A single folder
  holding the class folders (`set/cat/001.jpg`, as a zipped folder is) is looked through;
- a CSV of `file,label` beside the pictures (`labels.csv`; a header row is optional), its
  file names relative to the CSV.

Labels are matched to a model's classes without regard to case, spaces or underscores:
an own or taught model's class names; for the ImageNet models also each class's WordNet
synonyms, its index (`281`) and its WordNet id (`n02123045`, the folder names of ImageNet's
own sets). A label that matches no class, or two, is listed and never guessed.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from classifier import labels as imagenet
from classifier.jobs.inputs import LABELS_CSV, LABELS_CSV_MAX_BYTES, is_picture_name

CSV_NAMES = (LABELS_CSV,)  # the CSV of a set, at its top
CSV_MAX_BYTES = LABELS_CSV_MAX_BYTES


class SetError(ValueError):
    """A set that cannot be evaluated on; its message is one sentence for the person."""


@dataclass(frozen=True)
class Photo:
    """One picture of a set: its name in the set (POSIX separators) and its label."""

    name: str
    label: str


@dataclass(frozen=True)
class LabelledSet:
    """The pictures of a set with their labels, and the files left out with the reason."""

    title: str
    photos: tuple[Photo, ...]
    left_out: tuple[tuple[str, str], ...] = ()  # (name, why)
    empty: tuple[str, ...] = ()  # class folders without a picture (a folder here only)

    def labels(self) -> list[str]:
        """Return the set's labels, as written, in alphabetical order (whatever order the
        pictures arrived in)."""
        return sorted({photo.label for photo in self.photos}, key=lambda x: (x.casefold(), x))

    def counts(self) -> dict[str, int]:
        """Return each label's number of pictures, in the labels' order."""
        counted = Counter(photo.label for photo in self.photos)
        return {label: counted[label] for label in self.labels()}


def from_names(names: Sequence[str], title: str, csv_text: str | None = None) -> LabelledSet:
    """Label pictures by their relative names: by the CSV's rows when one is given, else by
    the folder each is in (the first folder below a single enclosing one).

    Raises:
        SetError: no picture has a label.
    """
    pictures = [name for name in names if is_picture_name(name)]
    left_out = [(name, _why_not(name)) for name in names if not is_picture_name(name)]
    if csv_text is not None:
        photos, more = _by_csv(pictures, csv_text)
    else:
        photos, more = _by_folder(pictures)
    left_out += more
    if not photos:
        raise SetError(
            "No labelled pictures were found: put each class's pictures in a folder named "
            "after the class, or list them in a labels.csv of file,label."
        )
    return LabelledSet(title, tuple(photos), tuple(left_out))


def _why_not(name: str) -> str:
    """Say why a file of a set is not one of its pictures."""
    folders = name.replace("\\", "/").split("/")[:-1]
    if any(part.startswith(".") or part in ("__MACOSX", "@eaDir") for part in folders):
        return "in a hidden or system folder"
    return "not a picture"


def _class_root(labelled: LabelledSet, root: Path) -> Path | None:
    """Where a folder's class folders are (below any one folder around them all)."""
    for photo in labelled.photos:
        parts = photo.name.split("/")
        if photo.label in parts[:-1]:
            return root.joinpath(*parts[: parts.index(photo.label)])
    return None


def read_folder(root: Path) -> LabelledSet:
    """Read a folder on this computer as a set (its `labels.csv` if it has one)."""
    if not root.is_dir():
        raise SetError(f"{root} is not a folder.")
    names = sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    )
    csv_text = None
    for candidate in CSV_NAMES:
        if (root / candidate).is_file():
            csv_text = read_csv_bytes((root / candidate).read_bytes())
            names = [name for name in names if name != candidate]
    labelled = from_names(names, root.resolve().name or str(root), csv_text)
    classes = None if csv_text is not None else _class_root(labelled, root)
    if classes is None:
        return labelled
    found = set(labelled.labels())
    empty = tuple(
        child.name
        for child in sorted(classes.iterdir())
        if child.is_dir() and not child.name.startswith(".") and child.name.strip() not in found
    )
    return LabelledSet(labelled.title, labelled.photos, labelled.left_out, empty)


def read_csv_bytes(data: bytes) -> str:
    """Return a labels CSV's text, or raise SetError."""
    if len(data) > CSV_MAX_BYTES:
        raise SetError("The labels.csv is larger than 16 MB.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SetError("The labels.csv is not UTF-8 text.") from None


def _by_folder(pictures: list[str]) -> tuple[list[Photo], list[tuple[str, str]]]:
    parts = [name.split("/") for name in pictures]
    # One folder around everything (a zipped folder): look inside it.
    while (
        parts
        and len({p[0] for p in parts}) == 1
        and all(len(p) > 1 for p in parts)
        and any(len(p) > 2 for p in parts)
    ):
        parts = [p[1:] for p in parts]
    photos, left_out = [], []
    for name, part in zip(pictures, parts, strict=True):
        if len(part) < 2:
            left_out.append((name, "not in a class folder"))
        else:
            photos.append(Photo(name, part[0].strip()))
    return photos, left_out


def _by_csv(pictures: list[str], text: str) -> tuple[list[Photo], list[tuple[str, str]]]:
    rows = [
        row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)
    ]
    if rows and [cell.strip().lower() for cell in rows[0][:2]] == ["file", "label"]:
        rows = rows[1:]
    wanted: dict[str, str] = {}
    for row in rows:
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise SetError("Each row of labels.csv needs a file and a label: file,label.")
        wanted[row[0].strip().replace("\\", "/").lstrip("./")] = row[1].strip()
    photos, left_out = [], []
    for name in pictures:
        label = wanted.get(name) or wanted.get(name.split("/", 1)[-1])
        if label is None:
            left_out.append((name, "not in labels.csv"))
        else:
            photos.append(Photo(name, label))
    return photos, left_out


def set_digest(answers: Iterable) -> str:
    """Return the digest of the pictures a model answered and their labels: each picture's
    content digest and label, in any order and whatever the files are called (a folder here
    and the same folder zipped give the same digest)."""
    hashed = hashlib.sha256()
    for label, digest in sorted((a.label, a.digest) for a in answers):
        hashed.update(f"{label}\0{digest}\n".encode())
    return hashed.hexdigest()


# --- Matching labels to a model's classes -------------------------------------------------


@dataclass(frozen=True)
class Matched:
    """A set's labels matched to one model's classes."""

    classes: dict[str, int]  # label as written -> the model's class index
    unmatched: tuple[tuple[str, str], ...]  # (label, why)

    @property
    def indices(self) -> list[int]:
        """The matched classes' indices in the model, each once, in the labels' order."""
        return list(dict.fromkeys(self.classes.values()))


def _key(text: str) -> str:
    return " ".join(text.replace("_", " ").casefold().split())


@cache
def wordnet_ids() -> tuple[str, ...]:
    """Return every ImageNet class's WordNet id, in output order (`n01440764` is 0)."""
    lines = tuple(
        (Path(imagenet.__file__).with_name("data") / "imagenet_wnids.txt")
        .read_text(encoding="utf-8")
        .split()
    )
    if len(lines) != imagenet.NUM_CLASSES:
        raise RuntimeError(f"Expected {imagenet.NUM_CLASSES} WordNet ids. Received: {len(lines)}")
    return lines


@cache
def _imagenet_names() -> tuple[dict[str, frozenset[int]], ...]:
    """The names ImageNet classes answer to, most telling first: the names shown, then
    WordNet ids and indices, then WordNet synonyms (which two classes may share)."""
    tiers: tuple[dict[str, set[int]], ...] = ({}, {}, {})
    for index, (label, synonyms, wnid) in enumerate(
        zip(imagenet.labels(), imagenet.full_names(), wordnet_ids(), strict=True)
    ):
        tiers[0].setdefault(_key(label), set()).add(index)
        for name in (wnid, str(index)):
            tiers[1].setdefault(_key(name), set()).add(index)
        for name in synonyms.split(","):
            if _key(name):
                tiers[2].setdefault(_key(name), set()).add(index)
    return tuple({name: frozenset(found) for name, found in tier.items()} for tier in tiers)


def match(labels: Iterable[str], class_names: Sequence[str]) -> Matched:
    """Match a set's labels to a model's classes (`class_names`, in output order).

    The ImageNet models' classes (1,000 names equal to `labels.labels()`) also answer to
    their WordNet synonyms, index and WordNet id; any other model's to its class names.
    """
    if tuple(class_names) == imagenet.labels():
        tiers = _imagenet_names()
    else:
        own: dict[str, set[int]] = {}
        for index, name in enumerate(class_names):
            own.setdefault(_key(name), set()).add(index)
        tiers = ({name: frozenset(indices) for name, indices in own.items()},)
    classes: dict[str, int] = {}
    unmatched: list[tuple[str, str]] = []
    for label in dict.fromkeys(labels):
        found = next((tier[_key(label)] for tier in tiers if _key(label) in tier), frozenset[int]())
        if len(found) == 1:
            classes[label] = next(iter(found))
        elif found:
            shown = ", ".join(f"{class_names[i]} ({i})" for i in sorted(found))
            unmatched.append((label, f"names more than one class: {shown}"))
        else:
            unmatched.append((label, "matches none of the model's classes"))
    return Matched(classes, tuple(unmatched))
