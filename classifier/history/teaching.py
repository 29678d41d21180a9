"""Photos to teach a model from, gathered from the history: what people corrected.

A prediction rated wrong with the right class given (`corrected_label`) is a photo of that
class. A prediction rated right is a photo of the class its answer named: it joins the
classes the corrections name (more photos of them, confirmed by a person), and, among the
predictions someone picked by id, also brings its own class (they chose it to teach from).
Rows rated wrong with no class given, and rows nobody rated, say nothing and are left out;
so is every row of a photo someone said is no use ("Not a usable photo", under any model).

Each photo is the reduced copy kept to teach from (`images.reduced_copy`) where there is
one, and the thumbnail otherwise (small: 256 pixels at most); a row with neither is left
out. A photo saved more than once (the same sha256, such as one answered by two models)
is taken once, from its newest row. At most `limit` photos are read (by default the most
one model is taught from, CLASSIFIER_TEACH_MAX_PHOTOS): the corrections first, the newest
first.

Like `review` and `stats`, it takes an open HistoryStore and reads through
`store.conditions`, so a scoped store gives its owner's rows only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select

from classifier.history.records import NO_FILTERS, Filters
from classifier.history.store import HistoryStore
from classifier.history.tables import photos as photo_table
from classifier.history.tables import predictions, thumbnails

CHUNK = 500  # row ids per query (SQLite takes at most 32,766 parameters)


@dataclass(frozen=True)
class Labelled:
    """One photo to teach from, the class a person gave it, and where it came from."""

    id: int  # the prediction's row
    label: str  # the corrected label, or the answer rated right
    file_name: str
    data: bytes = field(repr=False)  # a JPEG (the kept photo) or the thumbnail (WebP or JPEG)
    thumbnail_only: bool  # no photo was kept to teach from: this is the small thumbnail
    corrected: bool  # False: the prediction was rated right

    @property
    def name(self) -> str:
        """The photo as the Teach page and the command line name it."""
        return f"history #{self.id} ({self.file_name})"


@dataclass(frozen=True)
class Gathered:
    """The photos gathered, and what was left out and why."""

    photos: tuple[Labelled, ...]
    corrections: int  # corrected predictions found, with a picture or not
    without_picture: int = 0  # rated rows with neither a photo nor a thumbnail
    repeated: int = 0  # rows of a photo taken from a newer row already
    left_out: int = 0  # photos past the limit
    set_aside: int = 0  # rated rows of a photo someone said is no use (under any model)

    def nothing_to_teach(self) -> str | None:
        """Say why there is no photo to teach from, when there is none but some were rated
        (None otherwise: photos, or no rated prediction at all)."""
        if self.photos:
            return None
        if self.corrections:
            return (
                f"None of the {self.corrections:,} corrected predictions has a picture kept, "
                "so there is nothing to teach from."
            )
        if self.set_aside == 1:
            return (
                "The photo of the rated prediction found was set aside as no usable photo, so "
                "there is nothing to teach from."
            )
        if self.set_aside:
            return (
                f"The photos of the {self.set_aside:,} rated predictions found were set aside "
                "as no usable photo, so there is nothing to teach from."
            )
        return None

    @property
    def corrected(self) -> int:
        """How many of the photos come from corrected predictions."""
        return sum(photo.corrected for photo in self.photos)

    @property
    def rated_right(self) -> int:
        """How many of the photos come from predictions rated right."""
        return len(self.photos) - self.corrected

    @property
    def thumbnail_only(self) -> int:
        """How many of the photos are only the small thumbnail."""
        return sum(photo.thumbnail_only for photo in self.photos)

    def classes(self) -> dict[str, list[Labelled]]:
        """Return the photos by class, the class with most photos first (then by name)."""
        by_class: dict[str, list[Labelled]] = {}
        for photo in self.photos:
            by_class.setdefault(photo.label, []).append(photo)
        order = sorted(by_class, key=lambda label: (-len(by_class[label]), label.casefold()))
        return {label: by_class[label] for label in order}


def class_key(label: str) -> str:
    """Return how two spellings of one class compare: spaces collapsed, case ignored."""
    return _tidy(label).casefold()


def labelled_photos(
    store: HistoryStore,
    ids: Sequence[int] | None = None,
    model: str | None = None,
    since: datetime | None = None,
    *,
    limit: int | None = None,
) -> Gathered:
    """Return the photos of the corrected (and confirmed) predictions, each with its class.

    Args:
        ids: Only these predictions (those a person picked); None: every one in scope.
        model: Only the predictions of this model (its name as saved).
        since: Only the predictions saved at or after this time (timezone-aware).
        limit: At most this many photos (default: CLASSIFIER_TEACH_MAX_PHOTOS).
    """
    if limit is None:
        from classifier.config import get_settings

        limit = get_settings().teach_max_photos
    filters = Filters(models=(model,) if model is not None else (), start=since)
    picked = None if ids is None else sorted({int(i) for i in ids})
    columns = predictions.c
    corrected = and_(columns.feedback == "wrong", columns.corrected_label.is_not(None))
    rows = _rows(store, filters, picked, corrected)
    set_aside = sum(row["set_aside"] for row in rows)
    rows = [row for row in rows if not row["set_aside"]]
    spelling: dict[str, str] = {}  # one spelling per class: the newest correction's
    for row in rows:
        spelling.setdefault(class_key(row["corrected_label"]), _tidy(row["corrected_label"]))
    right = columns.feedback == "correct"
    if picked is None:  # only the classes the corrections name: their labels as answered
        answered = _answered_labels(store, filters, right)
        named = [label for label in answered if class_key(label) in spelling]
        right = and_(right, columns.top1_label.in_(named)) if named else None
    confirmed = [] if right is None else _rows(store, filters, picked, right)
    set_aside += sum(row["set_aside"] for row in confirmed)
    confirmed = [row for row in confirmed if not row["set_aside"]]
    chosen: list[tuple[Any, str, bool]] = []  # (row, class, corrected)
    seen: set[str] = set()
    without_picture = repeated = 0
    for row, is_correction in [*((r, True) for r in rows), *((r, False) for r in confirmed)]:
        label = row["corrected_label"] if is_correction else row["top1_label"]
        if not (row["has_photo"] or row["has_thumbnail"]):
            without_picture += 1
        elif row["sha256"] in seen:
            repeated += 1
        else:
            seen.add(row["sha256"])
            chosen.append((row, spelling.setdefault(class_key(label), _tidy(label)), is_correction))
    kept, left_out = chosen[:limit], max(0, len(chosen) - limit)
    pictures = _photos(store, [row["id"] for row, _, _ in kept if row["has_photo"]])
    small = _thumbnails(store, [row["id"] for row, _, _ in kept if row["id"] not in pictures])
    gathered = []
    for row, label, is_correction in kept:
        data = pictures.get(row["id"]) or small.get(row["id"])
        if data is None:  # deleted meanwhile
            without_picture += 1
            continue
        gathered.append(
            Labelled(
                id=row["id"],
                label=label,
                file_name=row["file_name"],
                data=data,
                thumbnail_only=row["id"] not in pictures,
                corrected=is_correction,
            )
        )
    return Gathered(
        photos=tuple(gathered),
        corrections=len(rows),
        without_picture=without_picture,
        repeated=repeated,
        left_out=left_out,
        set_aside=set_aside,
    )


@dataclass(frozen=True)
class Choice:
    """A saved prediction offered to pick a photo to teach from (its thumbnail shown)."""

    id: int
    file_name: str
    label: str  # its answer (top-1)
    thumbnail: bytes = field(repr=False)


def choices(store: HistoryStore, filters: Filters, limit: int) -> list[Choice]:
    """Return the newest `limit` rows in scope that match, have a thumbnail and are not of a
    photo someone said is no use (under any model): those that may be picked to teach from."""
    columns = predictions.c
    query = (
        select(columns.id, columns.file_name, columns.top1_label)
        .where(*store.conditions(filters), _has(thumbnails), ~_set_aside(store))
        .order_by(columns.created_at.desc(), columns.id.desc())
        .limit(limit)
    )
    with store.connect() as conn:
        rows = conn.execute(query).all()
    pictures = _thumbnails(store, [row.id for row in rows])
    return [
        Choice(row.id, row.file_name, row.top1_label, pictures[row.id])
        for row in rows
        if row.id in pictures  # (deleted meanwhile)
    ]


def usable(store: HistoryStore, ids: Sequence[int]) -> set[int]:
    """Return which of these rows are in scope and not of a photo someone said is no use
    (under any model): those that may be taught from."""
    found: set[int] = set()
    with store.connect() as conn:
        for start in range(0, len(ids), CHUNK):
            query = select(predictions.c.id).where(
                predictions.c.id.in_(ids[start : start + CHUNK]),
                *store.conditions(NO_FILTERS),
                ~_set_aside(store),
            )
            found.update(conn.execute(query).scalars())
    return found


def _has(table: Any) -> Any:
    """Whether a row (of `predictions`) has a picture in `table` (photos or thumbnails)."""
    return exists().where(table.c.prediction_id == predictions.c.id).correlate(predictions)


def _set_aside(store: HistoryStore) -> Any:
    """Whether the photo of a row (of `predictions`) was said to be no use, "unusable",
    in any of its rows in scope (under any model)."""
    other = predictions.alias("other")
    return (
        exists()
        .where(
            other.c.sha256 == predictions.c.sha256,
            other.c.feedback == "unusable",
            *store.scope.condition(other.c.owner),
        )
        .correlate(predictions)
    )


def _tidy(label: str) -> str:
    """Return a label as a class is named: spaces collapsed, Unicode in NFC form."""
    return unicodedata.normalize("NFC", " ".join(label.split()))


def _rows(store: HistoryStore, filters: Filters, ids: list[int] | None, which: Any) -> list[Any]:
    """Return the rows in scope that match (no pictures, only whether each has one, and
    whether someone said its photo is no use, "unusable", under any model), the newest
    first."""
    columns = predictions.c
    set_aside = _set_aside(store)
    query = select(
        columns.id,
        columns.created_at,
        columns.file_name,
        columns.sha256,
        columns.top1_label,
        columns.corrected_label,
        _has(photo_table).label("has_photo"),
        _has(thumbnails).label("has_thumbnail"),
        set_aside.label("set_aside"),
    ).where(*store.conditions(filters), which)
    chunks = [None] if ids is None else [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
    rows = []
    with store.connect() as conn:
        for chunk in chunks:
            limited = query if chunk is None else query.where(columns.id.in_(chunk))
            rows += conn.execute(limited).mappings().all()
    rows.sort(key=lambda row: (row["created_at"], row["id"]), reverse=True)
    return rows


def _answered_labels(store: HistoryStore, filters: Filters, which: Any) -> list[str]:
    """Return the distinct top-1 labels of the rows in scope that match."""
    query = select(predictions.c.top1_label).where(*store.conditions(filters), which).distinct()
    with store.connect() as conn:
        return list(conn.execute(query).scalars())


def _photos(store: HistoryStore, ids: list[int]) -> dict[int, bytes]:
    """Return the photos kept to teach from with these rows in scope, by id."""
    found: dict[int, bytes] = {}
    for start in range(0, len(ids), CHUNK):
        found.update(store.photos(ids[start : start + CHUNK]))
    return found


def _thumbnails(store: HistoryStore, ids: list[int]) -> dict[int, bytes]:
    """Return the thumbnails of these rows in scope, by id."""
    found: dict[int, bytes] = {}
    with store.connect() as conn:
        for start in range(0, len(ids), CHUNK):
            query = (
                select(thumbnails.c.prediction_id, thumbnails.c.image)
                .join(predictions, predictions.c.id == thumbnails.c.prediction_id)
                .where(
                    thumbnails.c.prediction_id.in_(ids[start : start + CHUNK]),
                    *store.conditions(NO_FILTERS),
                )
            )
            found.update({row.prediction_id: bytes(row.image) for row in conn.execute(query)})
    return found
