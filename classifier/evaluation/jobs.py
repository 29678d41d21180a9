"""An evaluation run as batch jobs: the app's and the API's way.

A set's pictures arrive as a batch job's do (`jobs.NewJob`, written to disk as they come).
`start` then makes one job per model, each with the pictures whose label is one of that
model's classes (hard links: the files are on disk once) and each picture's class index,
and keeps an evaluation row with each job in the job's own transaction. The server's runner
runs them like any job, keeping each answer in its picture's row (`Answering`) rather than
in the history, and the evaluation's numbers are worked out when its job ends (`refresh`
does it too, for a runner stopped in between).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

from sqlalchemy import select

from classifier.evaluation import kept, runs
from classifier.evaluation.answering import complete
from classifier.evaluation.kept import Evaluation
from classifier.evaluation.labelled import LabelledSet, SetError
from classifier.history import HistoryStore
from classifier.history.owners import Scope
from classifier.history.tables import job_items
from classifier.jobs import inputs, queue
from classifier.jobs.batches import NewJob
from classifier.jobs.runner import job_folder, wake


def start(
    store: HistoryStore,
    new: NewJob,
    labelled: LabelledSet,
    model_names: Sequence[str],
    *,
    source: str,
    empty: Sequence[str] = (),
    thumbnails: bool = True,
) -> str:
    """Start evaluating each model on a set whose pictures `new` holds; return the run's id.

    Raises:
        SetError: the set does not suit a model (nothing is started).
        ModelError: a model is unknown or cannot be had.
    """
    if not model_names:
        raise SetError("Pick at least one model to evaluate.")
    plans = [runs.plan(labelled, name, store.scope, empty) for name in model_names]
    position = {picture.name: n for n, picture in enumerate(new.pictures)}
    refused = {picture.name: picture.error for picture in new.pictures if picture.error}
    run_id = kept.new_run_id()
    try:
        for plan in plans:
            public_id = queue.new_public_id_for_job()
            folder_name, folder = job_folder(new.data_dir, public_id)
            folder.mkdir(parents=True)
            pictures = []
            for k, photo in enumerate(plan.photos):
                if photo.name in refused:
                    pictures.append(inputs.Picture(photo.name, refused[photo.name]))
                    continue
                _link(inputs.file_for(new.folder, position[photo.name]), inputs.file_for(folder, k))
                pictures.append(inputs.Picture(photo.name))
            queue.create(
                store,
                title=labelled.title,
                model=plan.model,
                pictures=pictures,
                folder=folder_name,
                public_id=public_id,
                top_k=5,
                thumbnails=thumbnails,  # each job's: a model may answer pictures others do not
                source=source,
                truths=[plan.truth(photo) for photo in plan.photos],
                also=_keeper(store, run_id, labelled.title, plan),
            )
    finally:
        new.discard()
    from classifier.config import get_settings

    wake(get_settings().history_url(), new.data_dir)
    return run_id


def _link(source, target) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, target)


def _keeper(store: HistoryStore, run_id: str, title: str, plan: runs.Plan):
    def keep(conn, job_id: int) -> None:
        kept.start(
            store, conn, job_id=job_id, run_id=run_id, title=title, model=plan.model,
            model_title=plan.title, setup=plan.setup,
        )  # fmt: skip

    return keep


def refresh(store: HistoryStore, run_id: str) -> list[Evaluation]:
    """Return a run's evaluations, completing any whose job ended meanwhile; one whose job
    is gone ends as failed."""
    found = kept.run(store, run_id)
    changed = False
    for evaluation in found:
        if evaluation.status != "running":
            continue
        job = None if evaluation.job_id is None else queue.by_id(store, evaluation.job_id)
        if job is None:
            kept.fail(store, evaluation, "It stopped before its answers were kept.")
            changed = True
        elif job.ended:
            complete(store, job, _spec_of(evaluation.model, job.model_scope))
            changed = True
    return kept.run(store, run_id) if changed else found


def _spec_of(model: str, scope: Scope):
    """The spec of a job's model, looked up as its runner does (`Job.model_scope`)."""
    from classifier import models

    try:
        return models.choose(model, scope).spec
    except models.ModelError:
        return None


def jobs_of(store: HistoryStore, run_id: str) -> list[queue.Job]:
    """Return the jobs of a run's evaluations (their progress), in model order."""
    found = []
    for evaluation in kept.run(store, run_id):
        job = None if evaluation.job_id is None else queue.by_id(store, evaluation.job_id)
        if job is not None:
            found.append(job)
    return found


def cancel(store: HistoryStore, run_id: str) -> None:
    """Stop a run's jobs; its evaluations end as cancelled, with the numbers of what was
    answered before (the runner saves nothing more once its job is cancelled). One whose
    job had already ended ends as that job did."""
    for job in jobs_of(store, run_id):
        queue.cancel(store, job.public_id)
    refresh(store, run_id)  # every job has ended now: each evaluation ends as its job did


def thumbnails(store: HistoryStore, run_id: str, names: Sequence[str]) -> dict[str, bytes]:
    """Return the thumbnails of some of a run's pictures, by name (those its jobs kept)."""
    ids = [e.job_id for e in kept.run(store, run_id) if e.job_id is not None]
    if not ids or not names:
        return {}
    query = select(job_items.c.file_name, job_items.c.thumbnail).where(
        job_items.c.job_id.in_(ids),
        job_items.c.file_name.in_(sorted(set(names))),
        job_items.c.thumbnail.is_not(None),
    )
    with store.connect() as conn:
        return {row.file_name: row.thumbnail for row in conn.execute(query)}
