"""The review queue: saved predictions worth a second look, the least sure first.

A prediction is in the queue while nobody has reviewed it (not rated, or rated wrong with no
correction yet) and at least one of these holds: its top-1 answer is below the confidence
threshold, it was rated wrong without a correction, or another model answered the same
photo (the same sha256) with another top-1 label. One rated right, corrected, or said to be
not a usable photo has been reviewed and leaves the queue.

The queue is ordered by the margin between the top two classes of `top_k`, smallest
first: the answers the model was least sure between two classes come first. A
prediction saved with one class only has a runner-up of at most what is left (1 - p)
and at most p, so its margin is taken as max(0, 2p - 1), the smallest it can be.

Like `stats`, it takes an open HistoryStore and the same Filters as `HistoryStore.find`
and reads through `store.conditions`, so a scoped store's queue is its owner's own; the
other answers to a photo are looked for in the same scope, whatever the filters.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, not_, or_, select, tuple_

from classifier.history.records import NO_FILTERS, Filters
from classifier.history.store import NOT_REVIEWED, HistoryStore
from classifier.history.tables import predictions


@dataclass(frozen=True)
class Entry:
    """One prediction in the queue, and why it is there."""

    id: int
    created_at: datetime
    file_name: str
    model: str
    top1_label: str
    top1_probability: float
    margin: float  # between the top two classes: 0 is a tie
    unsure: bool  # the top-1 answer is below the confidence threshold
    rated_wrong: bool  # rated wrong, with no correction yet
    others: tuple[tuple[str, str], ...] = ()  # (model, top-1 label) of other models that differ

    @property
    def disagreed(self) -> bool:
        """Whether another model answered the same photo with another top-1 label."""
        return bool(self.others)


MAX_READ = 2_000  # candidates read per page run: the least confident first
CHUNK = 500  # photos per query of their other answers


@dataclass(frozen=True)
class Queue:
    """The entries to review, least sure first (`more`: the history holds more candidates
    than were read; they come once these are reviewed)."""

    entries: tuple[Entry, ...]
    unsure_below: float
    more: bool = False

    def __len__(self) -> int:
        return len(self.entries)

    def labels(self) -> list[tuple[str, int]]:
        """Return the top-1 labels in the queue with how many entries each has, the most
        frequent first (then by name)."""
        counts = Counter(entry.top1_label for entry in self.entries)
        return _most_first(counts.items())

    def of_label(self, label: str | None) -> Queue:
        """Return the entries whose top-1 label is `label` (all of them for None)."""
        if label is None:
            return self
        kept = tuple(entry for entry in self.entries if entry.top1_label == label)
        return Queue(kept, self.unsure_below, self.more)

    def without(self, ids: Iterable[int]) -> Queue:
        """Return the queue without these predictions (those skipped on this visit)."""
        left_out = set(ids)
        kept = tuple(entry for entry in self.entries if entry.id not in left_out)
        return Queue(kept, self.unsure_below, self.more)

    def find(self, record_id: int | None) -> Entry | None:
        """Return the entry of a prediction, or None if it is not in the queue."""
        return next((entry for entry in self.entries if entry.id == record_id), None)


def margin(probabilities: Sequence[float]) -> float:
    """Return the margin between the two most probable classes (best first).

    With one class only, the runner-up is at most what is left and at most the first,
    so the margin is the smallest it can be: max(0, 2p - 1).
    """
    first = float(probabilities[0])
    second = float(probabilities[1]) if len(probabilities) > 1 else min(first, 1.0 - first)
    return max(0.0, first - second)


def queue(
    store: HistoryStore,
    filters: Filters = NO_FILTERS,
    unsure_below: float = 0.25,
    *,
    label: str | None = None,
    skipped: Collection[int] = (),
) -> Queue:
    """Return the predictions worth a second look among those the filters select.

    Args:
        filters: Which predictions to consider (model, dates, ...); the store's scope
            always applies.
        unsure_below: The confidence threshold: a top-1 answer below it is unsure.
        label: Only the predictions whose top-1 label is this one.
        skipped: Leave these predictions out (those skipped on a visit). Both are applied
            before the MAX_READ least sure are read, so the next ones come in their place.
    """
    columns = predictions.c
    candidates = select(
        columns.id,
        columns.created_at,
        columns.file_name,
        columns.sha256,
        columns.model,
        columns.top_k,
        columns.top1_label,
        columns.top1_probability,
        columns.feedback,
    ).where(*_worth_a_look(store, filters, unsure_below, label, skipped))
    # Every answer to the photos read (another model's may disagree), and the photos and
    # models already reviewed: the same photo saved again with the same model is one entry,
    # the newest row, and none once any of its rows was reviewed. Only of the photos read.
    reviewed = not_(NOT_REVIEWED).label("reviewed")
    answers = select(columns.sha256, columns.model, columns.top1_label, reviewed)
    answers = answers.where(*store.conditions(NO_FILTERS)).distinct()
    least_sure = candidates.order_by(columns.top1_probability, columns.id.desc())
    by_photo: dict[str, set[tuple[str, str]]] = defaultdict(set)
    seen: set[tuple[str, str]] = set()
    with store.connect() as conn:
        rows = conn.execute(least_sure.limit(MAX_READ + 1)).mappings().all()
        digests = sorted({row["sha256"] for row in rows[:MAX_READ]})
        for start in range(0, len(digests), CHUNK):
            chunk = digests[start : start + CHUNK]
            for answer in conn.execute(answers.where(columns.sha256.in_(chunk))):
                by_photo[answer.sha256].add((answer.model, answer.top1_label))
                if answer.reviewed:
                    seen.add((answer.sha256, answer.model))
    more = len(rows) > MAX_READ
    newest: dict[tuple[str, str], Any] = {}
    for row in rows[:MAX_READ]:
        photo = (row["sha256"], row["model"])
        if photo not in seen and (photo not in newest or row["id"] > newest[photo]["id"]):
            newest[photo] = row
    entries = [
        _entry(row, by_photo.get(row["sha256"], set()), unsure_below) for row in newest.values()
    ]
    kept = [entry for entry in entries if entry.unsure or entry.rated_wrong or entry.disagreed]
    kept.sort(key=lambda entry: (entry.margin, entry.id))
    return Queue(tuple(kept), unsure_below, more)


def skipped_among(
    store: HistoryStore,
    skipped: Collection[int],
    filters: Filters = NO_FILTERS,
    unsure_below: float = 0.25,
    label: str | None = None,
) -> list[int]:
    """Return the predictions among `skipped` that the queue of these filters (and class)
    would hold were they not skipped."""
    if not skipped:
        return []
    query = select(predictions.c.id).where(
        predictions.c.id.in_(list(skipped)), *_worth_a_look(store, filters, unsure_below, label)
    )
    with store.connect() as conn:
        found = set(conn.execute(query).scalars())
    return [row for row in skipped if row in found]


def label_counts(
    store: HistoryStore, filters: Filters = NO_FILTERS, unsure_below: float = 0.25
) -> list[tuple[str, int]]:
    """Return the top-1 labels of every entry to review (not only among the MAX_READ read
    at a time) with how many each has, the most frequent first (then by name): one entry
    per photo and model, as in the queue."""
    columns = predictions.c
    entries = (
        select(columns.top1_label, columns.sha256, columns.model)
        .where(*_worth_a_look(store, filters, unsure_below, None))
        .distinct()
        .subquery()
    )
    query = select(entries.c.top1_label, func.count()).group_by(entries.c.top1_label)
    with store.connect() as conn:
        counts = conn.execute(query).all()
    return _most_first(counts)


def _most_first(counts: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """Return labels with their counts, the most frequent first (then by name)."""
    return sorted(counts, key=lambda item: (-item[1], item[0].casefold(), item[0]))


def _worth_a_look(
    store: HistoryStore,
    filters: Filters,
    unsure_below: float,
    label: str | None,
    skipped: Collection[int] = (),
) -> list[ColumnElement[bool]]:
    """The conditions of a prediction in the queue: selected; no row of its photo and model
    reviewed (nor skipped); and unsure, rated wrong without a correction, or answered
    otherwise by another model."""
    columns = predictions.c
    other = predictions.alias("other")
    mine = store.scope.condition(other.c.owner)
    photo = tuple_(columns.sha256, columns.model)
    reviewed = select(other.c.sha256, other.c.model).where(
        *mine,
        other.c.feedback.is_not(None),
        or_(other.c.feedback != "wrong", other.c.corrected_label.is_not(None)),
    )  # (not NOT_REVIEWED)
    # Photos two models answered with two labels (subqueries read once, not row by row).
    disagreed = (
        select(other.c.sha256)
        .where(*mine)
        .group_by(other.c.sha256)
        .having(func.count(other.c.model.distinct()) > 1)
        .having(func.count(other.c.top1_label.distinct()) > 1)
    )
    kept = [
        *store.conditions(filters),
        NOT_REVIEWED,
        photo.not_in(reviewed),
        or_(
            columns.top1_probability < unsure_below,
            columns.feedback == "wrong",  # with no correction: see NOT_REVIEWED
            columns.sha256.in_(disagreed),
        ),
    ]
    if skipped:  # (the photo and model of each: an older row of it is the same entry)
        same = select(other.c.sha256, other.c.model).where(other.c.id.in_(list(skipped)))
        kept.append(photo.not_in(same))
    return kept if label is None else [*kept, columns.top1_label == label]


def _entry(row: Any, answers: set[tuple[str, str]], unsure_below: float) -> Entry:
    """Return a queue entry from a row of the predictions table and the photo's answers."""
    others = tuple(
        sorted(
            (model, label)
            for model, label in answers
            if model != row["model"] and label != row["top1_label"]
        )
    )
    probabilities = [float(entry["probability"]) for entry in row["top_k"]]
    return Entry(
        id=row["id"],
        created_at=row["created_at"],
        file_name=row["file_name"],
        model=row["model"],
        top1_label=row["top1_label"],
        top1_probability=float(row["top1_probability"]),
        margin=margin(probabilities),
        unsure=row["top1_probability"] < unsure_below,
        rated_wrong=row["feedback"] == "wrong",
        others=others,
    )
