"""Running models over a labelled set: what each model is asked (`plan`), and the whole
run in this process (`evaluate_folder`, the command line's) through the batch pipeline.

The app and the API run the same plan as batch jobs instead (`classifier.evaluation.jobs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from classifier import models
from classifier.evaluation.kept import Evaluation, Setup, keep_whole, new_run_id, unsaved
from classifier.evaluation.labelled import LabelledSet, Photo, SetError, match, set_digest
from classifier.evaluation.metrics import Answer, SetClass, answer_of
from classifier.models import Choice, Kind, ModelSpec


@dataclass(frozen=True)
class Plan:
    """One model's part of an evaluation: the set's classes in its terms, and the pictures
    whose label is one of them."""

    model: str
    title: str
    choice: Choice  # the model as resolved once, for the planning and the run alike
    setup: Setup
    photos: tuple[Photo, ...]

    @property
    def spec(self) -> ModelSpec:
        return self.choice.spec

    def truth(self, photo: Photo) -> int:
        return next(c.index for c in self.setup.classes if c.label == photo.label)


def plan(labelled: LabelledSet, model: str, scope=None, empty: Sequence[str] = ()) -> Plan:
    """Match a set's labels to a model's classes.

    Args:
        scope: whose own models the name is looked up among (None: anyone's).
        empty: class folders that hold no pictures (a sentence each).

    Raises:
        SetError: the model answers with another model, or none of its classes is in the set.
        ModelError: the model is unknown or cannot be had.
    """
    choice = models.choose(model, scope)
    if choice.spec.name != model:  # another model would answer in its place: never that
        why = choice.status.reason or "it cannot be loaded on this server"
        raise SetError(f"{models.title_of(model)} cannot be evaluated here: {why}.")
    spec = choice.spec
    names = spec.class_names
    matched = match(labelled.labels(), names)
    counts = labelled.counts()
    # Two labels naming one class ("Egyptian cat" and n02124075): the first keeps it, the
    # other is left out with a sentence, never merged behind the person's back.
    first_of: dict[int, str] = {}
    unmatched = list(matched.unmatched)
    for label, index in list(matched.classes.items()):
        if index in first_of:
            del matched.classes[label]
            unmatched.append(
                (label, f"names the same class as “{first_of[index]}” ({names[index]}): "
                 "put their photos in one folder")
            )  # fmt: skip
        else:
            first_of[index] = label
    if not matched.classes:
        shown = ", ".join(labelled.labels()[:8])
        raise SetError(
            f"None of the set's labels ({shown}) is one of {spec.title}'s classes: name each "
            "folder after a class."
        )
    classes = tuple(
        SetClass(label, index, names[index]) for label, index in matched.classes.items()
    )
    notes = [f'The class folder "{name}" has no pictures.' for name in empty]
    if len({c.index for c in classes}) == 1:
        notes.append(
            "The set has one class, so the accuracy is that class's recall: no confusion "
            "between classes can be seen."
        )
    setup = Setup(
        classes=classes,
        num_classes=len(names),
        unmatched=tuple((label, why, counts[label]) for label, why in unmatched),
        left_out=labelled.left_out,
        notes=tuple(notes),
    )
    photos = tuple(p for p in labelled.photos if p.label in matched.classes)
    return Plan(model, spec.title, choice, setup, photos)


def training_digests(spec: ModelSpec) -> frozenset[str]:
    """Return the content digests of a taught model's training photos (empty for others)."""
    if spec.kind is not Kind.TAUGHT or spec.engine_file is None or spec.base is None:
        return frozenset()
    from classifier import teach

    return frozenset(teach.read_head(spec.engine_file, spec.base).examples.digests)


@dataclass(frozen=True)
class Done:
    """One model's answers on the set, kept or not."""

    plan: Plan
    answers: tuple[Answer, ...]
    unreadable: tuple[tuple[str, str], ...]
    in_training: int
    digest: str
    evaluation: Evaluation  # as kept (or as it would be, when not kept)


def evaluate_folder(
    root: Path,
    labelled: LabelledSet,
    model_names: Sequence[str],
    *,
    store=None,
    empty: Sequence[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> list[Done]:
    """Run each model once over a set on this computer; keep each evaluation in `store`
    (None: not kept). Plans are made for every model before any picture is read."""
    from classifier.jobs.pipeline import classify_files

    plans = [plan(labelled, name, empty=empty) for name in model_names]
    run_id = new_run_id()
    total = sum(len(p.photos) for p in plans)
    handled = 0
    results = []
    hashed: dict[str, str] = {}  # each file's content digest, from the first model to read it
    for each in plans:
        loaded = models.load(each.choice)
        names = each.spec.class_names
        taught = training_digests(each.spec)
        answers: list[Answer] = []
        unreadable: list[tuple[str, str]] = []
        paths = [root / photo.name for photo in each.photos]
        # A file is hashed once, whatever the number of models reading it.
        outcomes = classify_files(
            loaded, paths, digests=not all(p.name in hashed for p in each.photos)
        )
        try:
            for outcome in outcomes:
                photo = each.photos[outcome.index]
                digest = hashed.setdefault(photo.name, outcome.digest) or outcome.digest
                if outcome.prediction is None:
                    unreadable.append((photo.name, outcome.error or "It could not be read."))
                else:
                    answers.append(
                        answer_of(
                            photo.name,
                            photo.label,
                            each.truth(photo),
                            outcome.prediction.probabilities,
                            names,
                            each.setup.classes,
                            digest,
                        )
                    )
                handled += 1
                if progress is not None:
                    progress(handled, total)
        finally:
            outcomes.close()
        in_training = sum(a.digest in taught for a in answers)
        digest = set_digest(answers)
        given = {
            "title": labelled.title,
            "model": each.model,
            "model_title": each.title,
            "setup": each.setup,
            "set_digest": digest,
            "answers": answers,
            "unreadable": unreadable,
            "in_training": in_training,
        }
        if store is None:
            evaluation = unsaved(**given)
        else:
            evaluation = keep_whole(store, run_id=run_id, **given)
        results.append(
            Done(each, tuple(answers), tuple(unreadable), in_training, digest, evaluation)
        )
    return results
