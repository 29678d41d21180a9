"""Batch jobs in the database: create, list, cancel, and take over one to run.

A job is a row of `tables.jobs` and one row of `tables.job_items` per picture. Every
query goes through a `HistoryStore` and keeps to its scope (a person sees only their own
jobs in a private history), as the history does. The runner (`classifier.jobs.runner`)
uses `take`, `pending`, `record` and `finish` with the store's whole scope.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, exists, func, insert, select, update

from classifier import files
from classifier.history import HistoryStore, NewRecord
from classifier.history.owners import Scope
from classifier.history.tables import (
    evaluations,
    is_public_id,
    job_items,
    jobs,
    new_public_id,
    predictions,
    thumbnails,
)
from classifier.jobs.inputs import Picture

ENDED = ("done", "cancelled", "failed")
STALE_AFTER = timedelta(seconds=60)  # a job whose process has said nothing for this long
HEARTBEAT = timedelta(seconds=5)  # how often a running job says it is alive, at least


def worker_id() -> str:
    """Name this process as a job's worker: "host pid"."""
    return f"{socket.gethostname()} {os.getpid()}"


@dataclass(frozen=True)
class Job:
    """A batch job as a person sees it."""

    id: int
    public_id: str
    owner: str | None
    title: str
    model: str
    top_k: int
    thumbnails: bool
    source: str
    status: str
    total: int
    done: int
    failed: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    worker: str | None
    heartbeat_at: datetime | None
    folder: str
    models_of_anyone: bool | None  # whose added models its sender could use (`tables.jobs`)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    @property
    def model_scope(self) -> Scope:
        """Whose added models its model is looked up among when it runs: those its sender
        could use when they sent it, so a model of the same name that someone else added
        since never answers."""
        if self.models_of_anyone is False:
            return _owner_scope(self)
        return Scope(self.owner, everyone=True)

    @property
    def handled(self) -> int:
        """Pictures classified or failed so far."""
        return self.done + self.failed

    def photos_per_second(self, now: datetime | None = None) -> float | None:
        """Pictures handled per second since it started; None before there is a rate."""
        if self.started_at is None or self.handled == 0:
            return None
        end = self.finished_at or now or datetime.now(UTC)
        seconds = (end - self.started_at).total_seconds()
        return self.handled / seconds if seconds > 0 else None

    def seconds_left(self, now: datetime | None = None) -> float | None:
        """How long the rest should take at the rate so far; None if it cannot be told."""
        if self.ended:
            return 0.0
        rate = self.photos_per_second(now)
        return None if not rate else (self.total - self.handled) / rate

    def as_dict(self) -> dict[str, Any]:
        """The job as the API and the JSON download describe it."""
        rate = self.photos_per_second()
        left = self.seconds_left()
        return {
            "id": self.public_id,
            "title": self.title,
            "model": self.model,
            "status": self.status,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "photos_per_second": None if rate is None else round(rate, 2),
            "seconds_left": None if left is None else round(left, 1),
            "error": self.error,
        }


@dataclass(frozen=True)
class Item:
    """One picture of a job and what became of it."""

    position: int
    file_name: str
    status: str  # "pending", "done", "failed", or "skipped" (its job ended first)
    error: str | None
    prediction_id: int | None
    label: str | None = None  # the top class, once classified (and while its row is kept)
    probability: float | None = None
    public_id: str | None = None  # its prediction's name in links
    thumbnail: bytes | None = None
    top_k: list[dict] | None = None


def _job(row: Any) -> Job:
    return Job(**{column.name: row._mapping[column.name] for column in jobs.c})


def _mine(store: HistoryStore) -> list:
    return store.scope.condition(jobs.c.owner)


def create(
    store: HistoryStore,
    *,
    title: str,
    model: str,
    pictures: Sequence[Picture],
    folder: str,
    public_id: str,
    top_k: int,
    thumbnails: bool,
    source: str,
    truths: Sequence[int] | None = None,
    also: Callable[[Connection, int], None] | None = None,
) -> Job:
    """Keep a new job (the store's owner's), its pictures already written to `folder`.

    A picture that arrived with an error (too large) is kept as failed at once.

    Args:
        truths: An evaluation's job: each picture's class index in the model (its label).
        also: Called with the transaction and the job's row id before it commits (an
            evaluation keeps its row with the job's, so no runner sees one without the other).
    """
    now = datetime.now(UTC)
    failed = sum(picture.error is not None for picture in pictures)
    with store.begin() as conn:
        job_id = conn.execute(
            insert(jobs).returning(jobs.c.id),
            {
                "public_id": public_id,
                "owner": store.scope.owner,
                "title": title,
                "model": model,
                "top_k": top_k,
                "thumbnails": thumbnails,
                "source": source,
                "status": "queued" if failed < len(pictures) else "done",
                "total": len(pictures),
                "done": 0,
                "failed": failed,
                "created_at": now,
                "finished_at": None if failed < len(pictures) else now,
                "folder": folder,
                "models_of_anyone": store.scope.everyone,
            },
        ).scalar_one()
        if pictures:
            conn.execute(
                insert(job_items),
                [
                    {
                        "job_id": job_id,
                        "position": position,
                        "file_name": picture.name,
                        "status": "pending" if picture.error is None else "failed",
                        "error": picture.error,
                        "truth": None if truths is None else truths[position],
                    }
                    for position, picture in enumerate(pictures)
                ],
            )
        if also is not None:
            also(conn, job_id)
    found = by_id(store, job_id)
    assert found is not None
    return found


def new_public_id_for_job() -> str:
    """Return a new job's public id (as a prediction's: random, never starting with "-")."""
    return new_public_id()


def get(store: HistoryStore, public_id: str) -> Job | None:
    """Return a batch job in the store's scope by its public id, or None (also for an
    evaluation's job: its run is the way to it, `classifier.evaluation`)."""
    if not is_public_id(public_id):  # (an address may hold anything)
        return None
    of_evaluation = exists().where(evaluations.c.job_id == jobs.c.id)
    query = select(jobs).where(jobs.c.public_id == public_id, *_mine(store), ~of_evaluation)
    with store.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _job(row)


def by_id(store: HistoryStore, job_id: int) -> Job | None:
    """Return a job in the store's scope by its row id, or None."""
    query = select(jobs).where(jobs.c.id == job_id, *_mine(store))
    with store.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _job(row)


def newest(store: HistoryStore, limit: int = 50) -> list[Job]:
    """Return the store's scope's batch jobs (not an evaluation's), newest first."""
    of_evaluation = exists().where(evaluations.c.job_id == jobs.c.id)
    query = (
        select(jobs)
        .where(*_mine(store), ~of_evaluation)
        .order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
    )
    with store.connect() as conn:
        return [_job(row) for row in conn.execute(query.limit(limit))]


def cancel(store: HistoryStore, public_id: str) -> Job | None:
    """Stop a job that has not ended (its runner stops after the pictures in hand).

    Returns the job as it is now, or None if there is no such job in scope.
    """
    now = datetime.now(UTC)
    with store.begin() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.public_id == public_id, jobs.c.status.in_(("queued", "running")))
            .where(*_mine(store))
            .values(status="cancelled", finished_at=now)
        )
    return get(store, public_id)


def items(
    store: HistoryStore, job: Job, *, with_thumbnails: bool = False, limit: int | None = None
) -> list[Item]:
    """Return a job's pictures by name, each with its answer once classified."""
    columns = [
        job_items.c.position,
        job_items.c.file_name,
        job_items.c.status,
        job_items.c.error,
        job_items.c.prediction_id,
        predictions.c.top1_label.label("label"),
        predictions.c.top1_probability.label("probability"),
        predictions.c.public_id,
        predictions.c.top_k,
    ]
    joined = job_items.outerjoin(predictions, predictions.c.id == job_items.c.prediction_id)
    if with_thumbnails:
        columns.append(thumbnails.c.image.label("thumbnail"))
        joined = joined.outerjoin(thumbnails, thumbnails.c.prediction_id == predictions.c.id)
    query = (
        select(*columns)
        .select_from(joined)
        .where(job_items.c.job_id == job.id)
        # By name: a folder's pictures arrive in any order, a zip's in its names' order.
        .order_by(job_items.c.file_name, job_items.c.position)
    )
    if limit is not None:
        query = query.limit(limit)
    with store.connect() as conn:
        found = [Item(**row._mapping) for row in conn.execute(query)]
    if job.status in ENDED:  # cancelled or failed first: never to be classified
        found = [replace(i, status="skipped") if i.status == "pending" else i for i in found]
    return found


def class_counts(store: HistoryStore, job: Job) -> dict[str, int]:
    """Return how many of a job's pictures each top class got, most first."""
    query = (
        select(predictions.c.top1_label, func.count())
        .where(predictions.c.job_id == job.id, *store.scope.condition(predictions.c.owner))
        .group_by(predictions.c.top1_label)
        .order_by(func.count().desc(), predictions.c.top1_label)
    )
    with store.connect() as conn:
        return {label: count for label, count in conn.execute(query)}


# The runner's side: the store's whole scope (every owner's jobs).


def take(store: HistoryStore, worker: str, here: set[str]) -> Job | None:
    """Take a job to run: queued, or running in a process that is gone (one on this host
    that no longer runs, or any that has said nothing for STALE_AFTER). Only jobs whose
    folder is on this server (`here`) are taken. Returns it, now this worker's, or None.
    """
    now = datetime.now(UTC)
    host = worker.split(" ")[0]
    candidates = select(jobs).where(
        jobs.c.status.in_(("queued", "running")), jobs.c.folder.in_(sorted(here))
    )
    with store.connect() as conn:
        rows = [_job(row) for row in conn.execute(candidates.order_by(jobs.c.id))]
    for job in rows:
        if job.status == "running" and job.worker is not None and not _gone(job, host, now):
            continue
        with store.begin() as conn:
            taken = conn.execute(
                update(jobs)
                .where(
                    jobs.c.id == job.id,
                    jobs.c.status == job.status,
                    jobs.c.worker.is_(None) if job.worker is None else jobs.c.worker == job.worker,
                )
                .values(
                    status="running",
                    worker=worker,
                    heartbeat_at=now,
                    started_at=job.started_at or now,
                )
            ).rowcount
        if taken == 1:
            return by_id(store, job.id)
    return None


def _gone(job: Job, host: str, now: datetime) -> bool:
    """Tell whether the process running a job is gone."""
    assert job.worker is not None
    their_host, _, pid = job.worker.partition(" ")
    same_host = their_host == host and pid.isdigit() and int(pid) != os.getpid()
    if same_host and not files.process_running(int(pid)):
        return True  # a restart: at once
    # A live process keeps its heartbeat fresh (every HEARTBEAT): one that has not said
    # anything for STALE_AFTER is gone, whatever holds its process id now.
    return job.heartbeat_at is None or now - job.heartbeat_at > STALE_AFTER


def pending(store: HistoryStore, job: Job, limit: int | None = None) -> list[tuple[int, str]]:
    """Return the positions and names of a job's pictures not yet classified, in order."""
    query = (
        select(job_items.c.position, job_items.c.file_name)
        .where(job_items.c.job_id == job.id, job_items.c.status == "pending")
        .order_by(job_items.c.position)
    )
    if limit is not None:
        query = query.limit(limit)
    with store.connect() as conn:
        return [(row.position, row.file_name) for row in conn.execute(query)]


class Lost(RuntimeError):
    """The job is no longer this worker's (cancelled, or taken over): stop."""


def record(
    store: HistoryStore,
    job: Job,
    worker: str,
    answers: Sequence[tuple[int, NewRecord]],
    failures: Sequence[tuple[int, str]],
) -> None:
    """Save a run of answers and failures in one transaction, with the job's counts.

    Each answer becomes a history row of the job's owner and marks its picture done; each
    failure marks its picture failed with the reason. All of it, or none.

    Raises:
        Lost: the job was cancelled or another worker holds it; nothing was saved.
    """
    owned = store.scoped(_owner_scope(job))
    with store.begin() as conn:
        _count(conn, job, worker, len(answers), failures)
        ids = owned.insert(conn, [answer for _, answer in answers])
        for (position, _), prediction_id in zip(answers, ids, strict=True):
            _mark(conn, job, position, status="done", prediction_id=prediction_id)


def record_evaluated(
    store: HistoryStore,
    job: Job,
    worker: str,
    answers: Sequence[tuple[int, str, bytes | None]],
    failures: Sequence[tuple[int, str]],
) -> None:
    """As `record`, for an evaluation's job: each answer (JSON, and a thumbnail or None)
    is kept in its picture's row, not in the history."""
    with store.begin() as conn:
        _count(conn, job, worker, len(answers), failures)
        for position, answer, thumbnail in answers:
            _mark(conn, job, position, status="done", answer=answer, thumbnail=thumbnail)


def truths(store: HistoryStore, job: Job) -> dict[int, int]:
    """Return an evaluation job's pictures' class indices (their labels), by position."""
    query = select(job_items.c.position, job_items.c.truth).where(
        job_items.c.job_id == job.id, job_items.c.truth.is_not(None)
    )
    with store.connect() as conn:
        return {row.position: row.truth for row in conn.execute(query)}


def _count(conn, job: Job, worker: str, answered: int, failures: Sequence[tuple[int, str]]) -> None:
    """Count a run in the job's row (only while this worker holds it), and mark its failures."""
    still = conn.execute(
        update(jobs)
        .where(jobs.c.id == job.id, jobs.c.worker == worker, jobs.c.status == "running")
        .values(
            done=jobs.c.done + answered,
            failed=jobs.c.failed + len(failures),
            heartbeat_at=datetime.now(UTC),
        )
    ).rowcount
    if still != 1:
        raise Lost(job.public_id)
    for position, reason in failures:
        _mark(conn, job, position, status="failed", error=reason)


def _mark(conn, job: Job, position: int, **values: Any) -> None:
    changed = conn.execute(
        update(job_items)
        .where(
            job_items.c.job_id == job.id,
            job_items.c.position == position,
            job_items.c.status == "pending",
        )
        .values(**values)
    ).rowcount
    if changed != 1:  # already handled: roll the whole run back rather than count it twice
        raise Lost(job.public_id)


def _owner_scope(job: Job) -> Scope:
    return Scope(job.owner, everyone=False, unowned=job.owner is None)


def heartbeat(store: HistoryStore, job: Job, worker: str) -> bool:
    """Say the job's worker is alive; False if the job is no longer this worker's to run."""
    with store.begin() as conn:
        return (
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job.id, jobs.c.worker == worker, jobs.c.status == "running")
                .values(heartbeat_at=datetime.now(UTC))
            ).rowcount
            == 1
        )


def finish(store: HistoryStore, job: Job, worker: str, error: str | None = None) -> None:
    """End a job this worker runs: done, or failed with the reason."""
    with store.begin() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job.id, jobs.c.worker == worker, jobs.c.status == "running")
            .values(
                status="failed" if error else "done",
                error=error,
                finished_at=datetime.now(UTC),
            )
        )


def ended_folders(store: HistoryStore, folders: set[str]) -> set[str]:
    """Return which of these job folders belong to jobs that ended."""
    if not folders:
        return set()
    query = select(jobs.c.folder).where(
        jobs.c.folder.in_(sorted(folders)), jobs.c.status.in_(ENDED)
    )
    with store.connect() as conn:
        return {row.folder for row in conn.execute(query)}


def known_folders(store: HistoryStore, folders: set[str]) -> set[str]:
    """Return which of these job folders belong to a job at all."""
    if not folders:
        return set()
    query = select(jobs.c.folder).where(jobs.c.folder.in_(sorted(folders)))
    with store.connect() as conn:
        return {row.folder for row in conn.execute(query)}
