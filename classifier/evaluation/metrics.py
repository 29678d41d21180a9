"""The numbers of an evaluation, from each picture's answer: accuracy, the per-class table,
the confusion matrix, calibration, the most confident mistakes and the likely label errors.

Everything is computed from `Answer`s (what one model said of each readable picture of a
set, with the picture's label), so an evaluation run here, on the server's runner or read
back from the database gives the same report. The per-class table and the matrix are
scikit-learn's; the likely label errors cleanlab's `find_label_issues`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ANOTHER_CLASS = "(another class)"  # the matrix's column for answers outside the set's classes
CALIBRATION_BINS = 10
MISTAKES_SHOWN = 24
TOP_K = 5


@dataclass(frozen=True)
class SetClass:
    """One class of the set: its label as the set writes it, and the model's class."""

    label: str
    index: int  # in the model's output
    name: str  # the model's name for it

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "index": self.index, "name": self.name}


@dataclass(frozen=True)
class Answer:
    """What a model said of one readable picture of the set."""

    file: str
    label: str  # the picture's label, as the set writes it
    truth: int  # the model's class index for that label
    top: tuple[tuple[int, str, float], ...]  # (index, name, probability), best first
    scores: tuple[float, ...]  # the probability of each of the set's classes, in their order
    digest: str = ""

    @property
    def predicted(self) -> int:
        return self.top[0][0]

    @property
    def correct(self) -> bool:
        return self.predicted == self.truth

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "label": self.label,
            "truth": self.truth,
            "top": [
                {"index": i, "label": name, "probability": round(p, 6)} for i, name, p in self.top
            ],
            "scores": [round(s, 6) for s in self.scores],
            "digest": self.digest,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Answer:
        return cls(
            file=str(value["file"]),
            label=str(value["label"]),
            truth=int(value["truth"]),
            top=tuple(
                (int(t["index"]), str(t["label"]), float(t["probability"])) for t in value["top"]
            ),
            scores=tuple(float(s) for s in value["scores"]),
            digest=str(value.get("digest", "")),
        )


def answer_of(
    file: str,
    label: str,
    truth: int,
    probabilities: np.ndarray,
    names: Sequence[str],
    classes: Sequence[SetClass],
    digest: str = "",
) -> Answer:
    """Return a picture's Answer from the model's whole probability vector."""
    k = min(TOP_K, len(probabilities))
    order = np.argsort(-probabilities, kind="stable")[:k]
    return Answer(
        file=file,
        label=label,
        truth=truth,
        top=tuple((int(i), names[i], float(probabilities[i])) for i in order),
        scores=tuple(float(probabilities[c.index]) for c in classes),
        digest=digest,
    )


def report(
    classes: Sequence[SetClass],
    answers: Sequence[Answer],
    *,
    num_model_classes: int,
    in_training: int = 0,
) -> dict[str, Any]:
    """Return an evaluation's numbers (JSON-ready) from its answers.

    Args:
        classes: The set's classes as matched to the model, in the set's order.
        answers: One per readable picture whose label matched a class.
        num_model_classes: How many classes the model has (top-5 is given past 5).
        in_training: How many of the pictures are among a taught model's training photos:
            its answers on them are not out of sample, and label errors are not looked for.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    indices = [c.index for c in classes]
    outside = num_model_classes > len(set(indices))
    y_true = np.array([a.truth for a in answers], dtype=int)
    y_pred = np.array([a.predicted for a in answers], dtype=int)
    values: dict[str, Any] = {
        "photos": len(answers),
        "classes": [c.as_dict() for c in classes],
        "accuracy": None,
        "top5_accuracy": None,
        "per_class": [],
        "confusion": {"classes": [c.label for c in classes], "matrix": []},
        "calibration": None,
        "mistakes": [],
        "label_issues": [],
        "label_issues_note": None,
        "in_training": in_training,
    }
    if not answers:
        return values
    values["accuracy"] = float(accuracy_score(y_true, y_pred))
    if num_model_classes > TOP_K:
        values["top5_accuracy"] = float(
            np.mean([a.truth in [i for i, _, _ in a.top[:TOP_K]] for a in answers])
        )
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=indices, zero_division=0
    )
    values["per_class"] = [
        {
            "class": c.label,
            "precision": float(precision[n]),
            "recall": float(recall[n]),
            "f1": float(f1[n]),
            "support": int(support[n]),
        }
        for n, c in enumerate(classes)
    ]
    # Rows: the set's classes (truth); columns: the same, then any other class the model has.
    other = -1
    y_pred_shown = np.where(np.isin(y_pred, indices), y_pred, other)
    columns = [*indices, other] if outside else indices
    matrix = confusion_matrix(y_true, y_pred_shown, labels=columns)[: len(indices)]
    values["confusion"] = {
        "classes": [c.label for c in classes],
        "columns": [c.label for c in classes] + ([ANOTHER_CLASS] if outside else []),
        "matrix": matrix.tolist(),
    }
    values["calibration"] = calibration(answers)
    mistakes = sorted((a for a in answers if not a.correct), key=lambda a: -a.top[0][2])
    values["mistakes"] = [
        {"file": a.file, "label": a.label, "answer": a.top[0][1], "probability": a.top[0][2]}
        for a in mistakes[:MISTAKES_SHOWN]
    ]
    issues, note = label_issues(classes, answers, in_training)
    values["label_issues"], values["label_issues_note"] = issues, note
    return values


def calibration(answers: Sequence[Answer], bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Return the expected calibration error of the top answers and the reliability bins
    (equal widths of confidence; each with its count, mean confidence and accuracy)."""
    confidence = np.array([a.top[0][2] for a in answers])
    correct = np.array([a.correct for a in answers], dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        if count:
            mean_confidence = float(confidence[inside].mean())
            accuracy = float(correct[inside].mean())
            ece += count / len(answers) * abs(accuracy - mean_confidence)
        else:
            mean_confidence = accuracy = None
        rows.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": count,
                "confidence": mean_confidence,
                "accuracy": accuracy,
            }
        )
    return {"ece": float(ece), "bins": rows}


def label_issues(
    classes: Sequence[SetClass], answers: Sequence[Answer], in_training: int = 0
) -> tuple[list[dict[str, Any]], str | None]:
    """Return the pictures whose label is likely wrong, most likely first, by cleanlab's
    `find_label_issues` on the model's probabilities of the set's classes; or why not."""
    if in_training:
        return [], (
            "Likely label errors are not looked for: some of these pictures taught this model, "
            "so its answers on them are not out of sample."
        )
    present = {a.truth for a in answers}  # a class whose photos were all dropped is none
    distinct = list(dict.fromkeys(c.index for c in classes if c.index in present))
    if len(distinct) < 2:
        return [], "Likely label errors need at least two classes in the set."
    column = {index: n for n, index in enumerate(distinct)}
    labels = np.array([column[a.truth] for a in answers], dtype=int)
    per_class = np.bincount(labels, minlength=len(distinct))
    if per_class.min() < 2:
        return [], "Likely label errors need at least two pictures of each class."
    probs = np.zeros((len(answers), len(distinct)))
    for row, answer in enumerate(answers):
        for c, score in zip(classes, answer.scores, strict=True):
            if c.index in column:
                probs[row, column[c.index]] = score
    totals = probs.sum(axis=1, keepdims=True)
    probs = np.where(totals > 0, probs / np.where(totals > 0, totals, 1), 1 / len(distinct))
    try:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        ranked = find_label_issues(
            labels, probs, return_indices_ranked_by="self_confidence", n_jobs=1
        )
        quality = get_label_quality_scores(labels, probs)
    except Exception as exc:  # cleanlab refuses some small or lopsided sets
        log.info("cleanlab found no label issues: %s", exc)
        return [], f"Likely label errors could not be looked for ({exc})."
    names = {c.index: c.label for c in classes}
    found = []
    for row in ranked:
        answer = answers[int(row)]
        suggested = distinct[int(np.argmax(probs[row]))]
        found.append(
            {
                "file": answer.file,
                "label": answer.label,
                "suggested": names[suggested],
                "quality": float(quality[row]),
            }
        )
    return found, None


def mcnemar(first: Sequence[Answer], second: Sequence[Answer]) -> dict[str, Any]:
    """Compare two models on the pictures both answered: how many each got right alone,
    and the exact McNemar test's p-value (a binomial test on those two counts)."""
    from scipy.stats import binomtest

    a = {x.file: x.correct for x in first}
    b = {x.file: x.correct for x in second}
    both = sorted(set(a) & set(b))
    only_first = [f for f in both if a[f] and not b[f]]
    only_second = [f for f in both if b[f] and not a[f]]
    n = len(only_first) + len(only_second)
    p_value = 1.0 if n == 0 else float(binomtest(len(only_first), n, 0.5).pvalue)
    return {
        "photos": len(both),
        "only_first_right": only_first,
        "only_second_right": only_second,
        "p_value": p_value,
    }
