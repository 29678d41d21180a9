"""What the history holds: the record and filter dataclasses, and their mapping to table rows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from classifier.labels import TopClass


class Classified(Protocol):
    """What the history keeps of an answer (`classifier.predict.Prediction` is one)."""

    width: int
    height: int
    image_format: str
    model: str
    image: Any  # the decoded picture (PIL), for the thumbnail

    @property
    def timings(self) -> Any: ...  # its inference_ms

    def top(self, k: int) -> tuple[TopClass, ...]: ...


# "unusable": not a photo to judge or teach from (blurred, empty, the wrong picture): kept so
# that it leaves the review queue (`review`), and apart from right and wrong.
FEEDBACK_VALUES = ("correct", "wrong", "unusable")
FEEDBACK_FILTERS = ("any", "correct", "wrong", "unusable", "unrated")
SORTS = ("newest", "oldest", "confidence_desc", "confidence_asc")
MAX_LABEL_LENGTH = 200  # corrected labels are typed by users and indexed; also label filters
# Control characters (NUL, tab, newlines, C1) and unpaired surrogates: never in a
# label, and a NUL is refused by PostgreSQL, a surrogate by every UTF-8 encoder.
_UNSEARCHABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]+")

# The columns of an export, in order: the CSV header and the keys of each JSON object.
EXPORT_FIELDS = (
    "id",
    "public_id",  # its name in links and in the API
    "created_at",
    "file_name",
    "sha256",
    "width",
    "height",
    "image_format",
    "model",
    "top_k",
    "top1_label",
    "top1_probability",
    "inference_ms",
    "feedback",
    "corrected_label",
    "has_photo",  # whether a photo to teach from was kept with it (true or false)
    "source",
)
SOURCES = ("app", "api", "cli")  # where a prediction was classified (a job's: where it was sent)
# All of Record: the export's fields, its pictures, owner and job.
RECORD_FIELDS = (*EXPORT_FIELDS, "thumbnail", "overlay", "owner", "job_id", "photo")


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"Expected a timezone-aware datetime for {name}. Received: {value!r} (naive)."
        )


def search_text(text: str) -> str:
    """Return a label filter as the store searches for it, whoever typed it.

    Control characters (NUL, newlines, ...) and unpaired surrogates are dropped,
    spaces trimmed, and the text cut to MAX_LABEL_LENGTH characters: no longer
    label is stored (corrected labels are refused beyond it; ImageNet's are short),
    and a text of thousands of characters would make SQLite's LIKE refuse the
    pattern ("LIKE or GLOB pattern too complex").
    """
    return _UNSEARCHABLE.sub("", text).strip()[:MAX_LABEL_LENGTH].strip()


@dataclass(frozen=True)
class NewRecord:
    """One successful classification, as a caller adds it to the history.

    `top_k` takes any sequence of TopClass, highest probability first (the first
    one is the top-1), and is kept as a tuple.
    """

    file_name: str
    sha256: str
    width: int
    height: int
    image_format: str
    model: str
    top_k: tuple[TopClass, ...]
    inference_ms: float
    thumbnail: bytes | None = None  # None when the user opted out of saving thumbnails
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    overlay: bytes | None = None  # "where it looked" for the top class, kept with thumbnails
    source: str | None = "app"  # one of SOURCES; None: saved before sources were kept
    job_id: int | None = None  # the batch job that classified it (`classifier.jobs`)
    # A reduced copy of the photo to teach from (`images.reduced_copy`); None: the thumbnail
    # alone is kept (the person did not ask for one).
    photo: bytes | None = None

    @classmethod
    def from_prediction(
        cls,
        prediction: Classified,
        file_name: str,
        sha256: str,
        top_k: int,
        *,
        with_thumbnail: bool = True,
        source: str = "app",
    ) -> NewRecord:
        """Return the history row of a prediction, keeping its `top_k` best classes.

        Args:
            sha256: The digest of the classified bytes (`images.content_digest`).
            with_thumbnail: keep a small copy of the picture (off: the labels only).
            source: where it was classified, one of SOURCES.
        """
        from classifier import images

        return cls(
            file_name=file_name,
            sha256=sha256,
            width=prediction.width,
            height=prediction.height,
            image_format=prediction.image_format,
            model=prediction.model,
            top_k=prediction.top(top_k),
            inference_ms=prediction.timings.inference_ms,
            thumbnail=images.make_thumbnail(prediction.image) if with_thumbnail else None,
            source=source,
        )

    def __post_init__(self) -> None:
        object.__setattr__(self, "top_k", tuple(self.top_k))
        if not self.top_k:
            raise ValueError("Expected at least one entry in top_k. Received: an empty list.")
        for entry in self.top_k:
            if not isinstance(entry, TopClass):
                raise TypeError(
                    f"Expected top_k to hold labels.TopClass entries. Received: {entry!r}"
                )
        probabilities = [entry.probability for entry in self.top_k]
        if probabilities != sorted(probabilities, reverse=True):
            raise ValueError(
                f"Expected top_k sorted by probability, highest first. Received: {probabilities}"
            )
        _require_aware(self.created_at, "created_at")
        if self.source not in SOURCES:
            raise ValueError(f"Expected source to be one of {SOURCES}. Received: {self.source!r}")


@dataclass(frozen=True, kw_only=True)
class Record(NewRecord):
    """A stored prediction. `thumbnail` is None if none was saved or none was asked for.

    `has_photo` says whether a photo to teach from was kept with it; the photo itself is read
    with `HistoryStore.photo` (`photo` is None here, but in what `HistoryStore.remove` returns).

    `created_at` is timezone-aware, in UTC. A stored row is read back as it is:
    only NewRecord checks its values.
    """

    id: int
    top1_label: str
    top1_probability: float
    feedback: str | None  # "correct", "wrong", "unusable" or None (not rated)
    corrected_label: str | None
    owner: str | None = None  # who saved it (see `owners.owner_id`); None: nobody
    public_id: str | None = None  # its name in links; set on every row the store saved
    has_photo: bool = False  # a photo to teach from was kept with it

    def __post_init__(self) -> None:
        object.__setattr__(self, "top_k", tuple(self.top_k))


@dataclass(frozen=True)
class Removed:
    """Predictions `HistoryStore.remove` deleted, whole, for `HistoryStore.restore`."""

    records: tuple[Record, ...]
    job_places: tuple[tuple[int, int, int], ...]  # (job id, position, prediction id)

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class Filters:
    """Which predictions to show; the defaults select all of them.

    `label` matches a case-insensitive substring of the top-1 label or of the
    corrected label. It is kept as searched (see `search_text`): without control
    characters, trimmed, and cut to MAX_LABEL_LENGTH characters. Confidence bounds
    are inclusive; `start` is inclusive and `end` exclusive, so a day is
    `start=midnight, end=next midnight`.
    """

    label: str = ""
    models: tuple[str, ...] = ()  # empty: every model
    min_confidence: float | None = None
    max_confidence: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    feedback: str = "any"  # one of FEEDBACK_FILTERS
    job: int | None = None  # only the answers of this batch job (`jobs.id`)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str):
            raise ValueError(f"Expected the label filter as a string. Received: {self.label!r}")
        object.__setattr__(self, "label", search_text(self.label))
        if self.feedback not in FEEDBACK_FILTERS:
            raise ValueError(
                f"Expected feedback to be one of {FEEDBACK_FILTERS}. Received: {self.feedback!r}"
            )
        if isinstance(self.models, str):
            raise ValueError(f"Expected a tuple of model names. Received: {self.models!r}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                _require_aware(value, name)


NO_FILTERS = Filters()


def to_row(record: NewRecord) -> dict[str, Any]:
    """Turn a NewRecord into column values, with plain Python types (not numpy's)."""
    top_k = [TopClass.from_dict(entry.as_dict()).as_dict() for entry in record.top_k]
    return {
        "created_at": record.created_at,
        "file_name": record.file_name,
        "sha256": record.sha256,
        "width": int(record.width),
        "height": int(record.height),
        "image_format": record.image_format,
        "model": record.model,
        "top_k": top_k,  # the JSON column: a list of {"label", "index", "probability"}
        "top1_label": top_k[0]["label"],
        "top1_probability": top_k[0]["probability"],
        "inference_ms": float(record.inference_ms),
        "source": record.source,
        "job_id": record.job_id,
    }


def from_row(row: Mapping[str, Any]) -> Record:
    """Turn a row of the predictions table (thumbnail optional) into a Record."""
    values = dict(row)
    values.setdefault("thumbnail", None)  # not selected: read without thumbnails
    values.setdefault("overlay", None)
    values.setdefault("photo", None)  # read only to be put back (`HistoryStore.remove`)
    values["has_photo"] = bool(values.get("has_photo"))  # SQLite says 0 or 1
    values["top_k"] = tuple(TopClass.from_dict(entry) for entry in values["top_k"])
    return Record(**values)


def to_export_row(record: Record) -> dict[str, Any]:
    """Return a record's EXPORT_FIELDS as JSON types: ISO 8601 time, top_k as a list of dicts."""
    row = {name: getattr(record, name) for name in EXPORT_FIELDS}
    row["created_at"] = record.created_at.isoformat()
    row["top_k"] = [entry.as_dict() for entry in record.top_k]
    return row
