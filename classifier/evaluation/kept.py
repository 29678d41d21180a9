"""Evaluations in the database (`tables.evaluations`): started, completed, listed, edited.

Every query goes through a `HistoryStore` and keeps to its scope, as the history and the
jobs do: in a private history a person sees only their own evaluations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import insert, select, update

from classifier.evaluation import metrics
from classifier.evaluation.metrics import Answer, SetClass
from classifier.history import HistoryStore
from classifier.history.connecting import lock_rows
from classifier.history.tables import evaluations, is_public_id, job_items, new_public_id


@dataclass(frozen=True)
class Setup:
    """A set as matched to one model, before any picture is read."""

    classes: tuple[SetClass, ...]
    num_classes: int  # the model's
    unmatched: tuple[tuple[str, str, int], ...] = ()  # (label, why, pictures left out)
    left_out: tuple[tuple[str, str], ...] = ()  # files that are not labelled pictures
    notes: tuple[str, ...] = ()  # sentences about the set (one class, an empty class)

    def as_json(self) -> str:
        return json.dumps(
            {
                "classes": [c.as_dict() for c in self.classes],
                "num_classes": self.num_classes,
                "unmatched": [list(u) for u in self.unmatched],
                "left_out": [list(x) for x in self.left_out],
                "notes": list(self.notes),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Setup:
        value = json.loads(text)
        return cls(
            classes=tuple(
                SetClass(c["label"], int(c["index"]), c["name"]) for c in value["classes"]
            ),
            num_classes=int(value["num_classes"]),
            unmatched=tuple((str(a), str(b), int(n)) for a, b, n in value["unmatched"]),
            left_out=tuple((str(a), str(b)) for a, b in value["left_out"]),
            notes=tuple(str(n) for n in value.get("notes", ())),
        )

    def label_of(self, truth: int) -> str:
        return next(c.label for c in self.classes if c.index == truth)


@dataclass(frozen=True)
class Evaluation:
    """One model's evaluation on one set, as kept."""

    id: int
    public_id: str
    run_id: str
    owner: str | None
    title: str
    set_digest: str | None
    model: str
    model_title: str
    status: str
    job_id: int | None
    created_at: datetime
    finished_at: datetime | None
    photos: int | None
    accuracy: float | None
    error: str | None
    setup_json: str = field(repr=False)
    report_json: str | None = field(repr=False)
    answers_json: str | None = field(repr=False)

    # Read from their JSON once per object (a 10,000-photo evaluation's answers take seconds).
    @cached_property
    def setup(self) -> Setup:
        return Setup.from_json(self.setup_json)

    @cached_property
    def report(self) -> dict[str, Any]:
        return json.loads(self.report_json) if self.report_json else {}

    @cached_property
    def _answered(self) -> dict[str, Any]:
        return json.loads(self.answers_json) if self.answers_json else {}

    @cached_property
    def answers(self) -> list[Answer]:
        return [Answer.from_dict(a) for a in self._answered.get("answers", ())]

    @property
    def unreadable(self) -> list[tuple[str, str]]:
        return [(str(a), str(b)) for a, b in self._answered.get("unreadable", ())]

    @property
    def set_aside(self) -> list[Answer]:
        """Answers left out of the numbers since a label fix gave their photo a label this
        model has no class for (their `label`), or dropped it from the set (label "");
        a later fix to a label it has brings them back."""
        return [Answer.from_dict(a) for a in self._answered.get("set_aside", ())]

    @property
    def set_aside_why(self) -> list[tuple[str, str]]:
        """Each set-aside photo, and why it counts in no number."""
        return [
            (a.file, f"labelled “{a.label}”, which this model has no class for" if a.label
             else "dropped from the set")
            for a in self.set_aside
        ]  # fmt: skip

    def as_dict(self, *, whole: bool = True) -> dict[str, Any]:
        """The evaluation as the JSON download, the API and `evaluate --json` give it."""
        value: dict[str, Any] = {
            "id": self.public_id or None,  # None: not kept
            "run": self.run_id or None,
            "set": self.title,
            "set_digest": self.set_digest,
            "model": self.model,
            "model_title": self.model_title,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "photos": self.photos,
            "accuracy": self.accuracy,
            "error": self.error,
        }
        if whole:
            setup, report = self.setup, self.report
            value |= {
                "top5_accuracy": report.get("top5_accuracy"),
                "per_class": report.get("per_class", []),
                "confusion": report.get("confusion"),
                "calibration": report.get("calibration"),
                "mistakes": report.get("mistakes", []),
                "label_issues": report.get("label_issues", []),
                "label_issues_note": report.get("label_issues_note"),
                "in_training": report.get("in_training", 0),
                "notes": list(setup.notes),
                "unmatched": [
                    {"label": label, "why": why, "pictures": n} for label, why, n in setup.unmatched
                ],
                "left_out": [{"file": f, "why": why} for f, why in setup.left_out],
                "unreadable": [{"file": f, "why": why} for f, why in self.unreadable],
                "set_aside": [{"file": f, "why": why} for f, why in self.set_aside_why],
                "answers": [
                    {
                        "file": a.file,
                        "label": a.label,
                        "correct": a.correct,
                        "top_k": a.as_dict()["top"],
                    }
                    for a in self.answers
                ],
            }
        return value


def _evaluation(row: Any) -> Evaluation:
    m = row._mapping
    return Evaluation(
        **{
            c.name: m[c.name] for c in evaluations.c if c.name not in ("setup", "report", "answers")
        },
        setup_json=m["setup"],
        report_json=m.get("report"),
        answers_json=m.get("answers"),
    )


# A list needs no evaluation's report or answers (a 1,000-photo one's are about 1 MB).
_SUMMARY = [c for c in evaluations.c if c.name not in ("report", "answers")]


def _mine(store: HistoryStore) -> list:
    return store.scope.condition(evaluations.c.owner)


def new_run_id() -> str:
    return new_public_id()


def _insert(
    conn,
    store: HistoryStore,
    *,
    run_id: str,
    title: str,
    model: str,
    model_title: str,
    setup: Setup,
    job_id: int | None = None,
    **values: Any,
) -> str:
    """Insert an evaluation's row in a transaction; return its public id."""
    public_id = new_public_id()
    conn.execute(
        insert(evaluations),
        {
            "public_id": public_id,
            "run_id": run_id,
            "owner": store.scope.owner,
            "title": title,
            "model": model,
            "model_title": model_title,
            "status": "running",
            "job_id": job_id,
            "created_at": datetime.now(UTC),
            "setup": setup.as_json(),
            **values,  # a whole evaluation's numbers, status and digest
        },
    )
    return public_id


def start(store: HistoryStore, conn, *, job_id: int, **given: Any) -> str:
    """Keep an evaluation that starts with its job (in the job's transaction): its answers
    come from the job. Returns its public id."""
    return _insert(conn, store, job_id=job_id, **given)


def keep_whole(
    store: HistoryStore,
    *,
    run_id: str,
    title: str,
    model: str,
    model_title: str,
    setup: Setup,
    set_digest: str,
    answers: Sequence[Answer],
    unreadable: Sequence[tuple[str, str]],
    in_training: int = 0,
) -> Evaluation:
    """Keep an evaluation whose answers are all here (the command line's), whole: its
    numbers are worked out first, so no row is ever left half made."""
    values = _values(setup, answers, unreadable, in_training)
    with store.begin() as conn:
        public_id = _insert(
            conn, store, run_id=run_id, title=title, model=model, model_title=model_title,
            setup=setup, **values, status="done", set_digest=set_digest,
            finished_at=datetime.now(UTC),
        )  # fmt: skip
    found = get(store, public_id)
    assert found is not None
    return found


def _values(
    setup: Setup,
    answers: Sequence[Answer],
    unreadable: Sequence[tuple[str, str]],
    in_training: int,
    set_aside: Sequence[Answer] = (),
) -> dict[str, Any]:
    """The columns an evaluation's answers decide: its numbers, and the answers themselves
    (with those `Evaluation.set_aside`, which count in no number)."""
    report = metrics.report(
        setup.classes, answers, num_model_classes=setup.num_classes, in_training=in_training
    )
    kept: dict[str, Any] = {
        "answers": [a.as_dict() for a in answers],
        "unreadable": [list(u) for u in unreadable],
    }
    if set_aside:
        kept["set_aside"] = [a.as_dict() for a in set_aside]
    return {
        "photos": report["photos"],
        "accuracy": report["accuracy"],
        "report": json.dumps(report),
        "answers": json.dumps(kept),
    }


def unsaved(
    *,
    title: str,
    model: str,
    model_title: str,
    setup: Setup,
    set_digest: str,
    answers: Sequence[Answer],
    unreadable: Sequence[tuple[str, str]],
    in_training: int = 0,
) -> Evaluation:
    """Return an evaluation as it would be kept, without keeping it."""
    values = _values(setup, answers, unreadable, in_training)
    now = datetime.now(UTC)
    return Evaluation(
        id=0, public_id="", run_id="", owner=None, title=title, set_digest=set_digest,
        model=model, model_title=model_title, status="done", job_id=None, created_at=now,
        finished_at=now, photos=values["photos"], accuracy=values["accuracy"], error=None,
        setup_json=setup.as_json(), report_json=values["report"], answers_json=values["answers"],
    )  # fmt: skip


def _update(
    conn,
    evaluation: Evaluation,
    setup: Setup,
    answers: Sequence[Answer],
    unreadable: Sequence[tuple[str, str]],
    set_digest: str | None,
    in_training: int,
    status: str = "done",
    error: str | None = None,
    while_running: bool = False,
    set_aside: Sequence[Answer] = (),
) -> bool:
    """Work an evaluation's numbers out from its answers and keep them (in `conn`'s
    transaction); with `while_running`, only if it still runs. Returns whether it changed."""
    values = _values(setup, answers, unreadable, in_training, set_aside)
    running = [evaluations.c.status == "running"] if while_running else []
    changed = conn.execute(
        update(evaluations)
        .where(evaluations.c.id == evaluation.id, *running)
        .values(
            status=status,
            error=error,
            finished_at=evaluation.finished_at or datetime.now(UTC),
            set_digest=set_digest,
            **values,
        )
    ).rowcount
    return changed == 1


def get(store: HistoryStore, public_id: str) -> Evaluation | None:
    query = select(evaluations).where(evaluations.c.public_id == public_id, *_mine(store))
    with store.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _evaluation(row)


def run(store: HistoryStore, run_id: str) -> list[Evaluation]:
    """Return the evaluations of one run (the models evaluated together), in model order."""
    if not is_public_id(run_id):  # (an address may hold anything)
        return []
    query = (
        select(evaluations)
        .where(evaluations.c.run_id == run_id, *_mine(store))
        .order_by(evaluations.c.id)
    )
    with store.connect() as conn:
        return [_evaluation(row) for row in conn.execute(query)]


def newest(store: HistoryStore, limit: int = 200, model: str | None = None) -> list[Evaluation]:
    """Return the scope's evaluations, newest first (of one model, if named), without their
    reports and answers (`get` and `run` give those)."""
    query = select(*_SUMMARY).where(*_mine(store))
    if model is not None:
        query = query.where(evaluations.c.model == model)
    query = query.order_by(evaluations.c.created_at.desc(), evaluations.c.id.desc()).limit(limit)
    with store.connect() as conn:
        return [_evaluation(row) for row in conn.execute(query)]


def latest_by_model(store: HistoryStore) -> dict[str, Evaluation]:
    """Return each model's newest finished evaluation (for the Models page)."""
    found: dict[str, Evaluation] = {}
    for evaluation in newest(store, limit=500):
        if evaluation.status == "done" and evaluation.accuracy is not None:
            found.setdefault(evaluation.model, evaluation)
    return found


def for_job(store: HistoryStore, job_id: int) -> Evaluation | None:
    """Return the evaluation a job answers for, in any scope (the runner's), or None."""
    query = select(evaluations).where(evaluations.c.job_id == job_id)
    with store.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _evaluation(row)


def complete_from_job(
    store: HistoryStore,
    evaluation: Evaluation,
    job_status: str,
    job_error: str | None,
    in_training: int = 0,
) -> None:
    """Turn an ended job's kept answers into the evaluation's report."""
    query = (
        select(job_items.c.file_name, job_items.c.status, job_items.c.error, job_items.c.answer)
        .where(job_items.c.job_id == evaluation.job_id)
        .order_by(job_items.c.file_name, job_items.c.position)
    )
    with store.connect() as conn:
        rows = list(conn.execute(query))
    answers = [Answer.from_dict(json.loads(r.answer)) for r in rows if r.answer is not None]
    unreadable = [(r.file_name, r.error or "") for r in rows if r.status == "failed"]
    complete = job_status == "done" and all(r.status != "pending" for r in rows)
    digest = None
    if complete:
        from classifier.evaluation.labelled import set_digest

        digest = set_digest(answers)
    status = {"done": "done", "cancelled": "cancelled"}.get(job_status, "failed")
    with store.begin() as conn:
        # Only while it still runs: the runner and a page's refresh may both complete it, and
        # the one that comes second finds the answers already moved out of the job's rows.
        if not _update(
            conn, evaluation, evaluation.setup, answers, unreadable, digest, in_training,
            status=status, error=job_error, while_running=True,
        ):  # fmt: skip
            return
        # The answers now live in the evaluation's row; its pictures keep their thumbnails.
        conn.execute(
            update(job_items).where(job_items.c.job_id == evaluation.job_id).values(answer=None)
        )


def fail(store: HistoryStore, evaluation: Evaluation, error: str) -> None:
    """End an evaluation that cannot finish, with the reason."""
    with store.begin() as conn:
        conn.execute(
            update(evaluations)
            .where(evaluations.c.id == evaluation.id, evaluations.c.status == "running")
            .values(status="failed", error=error, finished_at=datetime.now(UTC))
        )


def relabel(store: HistoryStore, run_id: str, file: str, label: str | None) -> int:
    """Give one picture of a run's set another of the set's labels (None: drop it from the
    set), and work out each of the run's evaluations again, all in one transaction. A
    model that has no class for the new label (or every model, for a photo dropped) sets
    the picture's answer aside, out of its numbers (`Evaluation.set_aside`); a later fix to
    a label it has brings it back. Returns how many changed.

    Raises:
        ValueError: the label is none of the run's labels.
    """
    from classifier.evaluation.labelled import set_digest

    # Read in the transaction that writes, once the run's rows are locked: a fix made
    # meanwhile, in another tab or by another person, is built on, not written over.
    of_run = [evaluations.c.run_id == run_id, *_mine(store)]
    with store.begin() as conn:
        lock_rows(conn, evaluations.c.status, *of_run)
        query = select(evaluations).where(*of_run).order_by(evaluations.c.id)
        found = [_evaluation(row) for row in conn.execute(query)]
        found = [e for e in found if e.status in ("done", "cancelled")]
        if label is not None and not any(c.label == label for e in found for c in e.setup.classes):
            raise ValueError(f"{label} is not one of the set's labels.")
        changed = 0
        for evaluation in found:
            setup = evaluation.setup
            truth = next((c.index for c in setup.classes if c.label == label), None)
            theirs = [a for a in (*evaluation.answers, *evaluation.set_aside) if a.file == file]
            counted = any(a.file == file for a in evaluation.answers)
            if not theirs or (truth is None and not counted):
                continue  # not one of the pictures it answered, or still set aside
            answers = [a for a in evaluation.answers if a.file != file]
            aside = [a for a in evaluation.set_aside if a.file != file]
            if truth is not None:
                answers += [replace(a, label=label, truth=truth) for a in theirs]
            else:  # kept with the label it was given ("": dropped from the set)
                aside += [replace(a, label=label or "") for a in theirs]
            _update(
                conn, evaluation, setup, answers, evaluation.unreadable, set_digest(answers),
                int(evaluation.report.get("in_training", 0)), status=evaluation.status,
                error=evaluation.error, set_aside=aside,
            )  # fmt: skip
            changed += 1
    return changed
