"""The runner's side of an evaluation's job (`classifier.jobs.runner` calls it): each answer
kept in its picture's row, and the evaluation's numbers worked out once the job has ended.
It knows nothing of how jobs are started (`classifier.evaluation.jobs`)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from classifier.evaluation import kept, runs
from classifier.evaluation.kept import Evaluation
from classifier.evaluation.metrics import SetClass, answer_of
from classifier.history import HistoryStore
from classifier.history.tables import job_items
from classifier.jobs.queue import Job, by_id, truths


@dataclass
class Answering:
    """The runner's side of an evaluation's job: each answer as kept in its picture's row."""

    evaluation: Evaluation
    truths: dict[int, int]
    class_names: tuple[str, ...]
    classes: tuple[SetClass, ...]

    def refusal(self, loaded) -> str | None:
        """Say why this job cannot be answered by the model as loaded now, or None: another
        model answered for it, or it was taught again since the evaluation started and its
        classes are no longer those the set was matched to."""
        if loaded.name != self.evaluation.model:
            return f"{self.evaluation.model} cannot be loaded here."
        setup = self.evaluation.setup
        names = self.class_names
        if len(names) != setup.num_classes or any(
            c.index >= len(names) or names[c.index] != c.name for c in setup.classes
        ):
            return (
                "The model changed after this evaluation started (its classes are not the "
                "same); evaluate it again."
            )
        return None

    def answer(self, position: int, name: str, outcome) -> tuple[int, str, bytes | None]:
        truth = self.truths[position]
        label = next(c.label for c in self.classes if c.index == truth)
        answer = answer_of(
            name,
            label,
            truth,
            outcome.prediction.probabilities,
            self.class_names,
            self.classes,
            outcome.digest,
        )
        return position, json.dumps(answer.as_dict()), outcome.thumbnail


def answering(store: HistoryStore, job: Job, class_names: tuple[str, ...]) -> Answering | None:
    """Return how a job's answers are kept if it is an evaluation's, else None."""
    evaluation = kept.for_job(store, job.id)
    if evaluation is None:
        return None
    return Answering(evaluation, truths(store, job), class_names, evaluation.setup.classes)


def complete(store: HistoryStore, job: Job, spec=None) -> None:
    """Work out the numbers of the evaluation a job answers for, once the job has ended."""
    evaluation = kept.for_job(store, job.id)
    current = by_id(store, job.id)
    if evaluation is None or current is None or not current.ended:
        return
    if evaluation.status != "running":
        return
    taught = runs.training_digests(spec) if spec is not None else frozenset()
    in_training = 0
    if taught:
        query = select(job_items.c.answer).where(
            job_items.c.job_id == job.id, job_items.c.answer.is_not(None)
        )
        with store.connect() as conn:
            digests = [json.loads(row.answer).get("digest") for row in conn.execute(query)]
        in_training = sum(d in taught for d in digests)
    kept.complete_from_job(store, evaluation, current.status, current.error, in_training)
