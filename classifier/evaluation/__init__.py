"""Evaluations: how right a model is on a labelled set, and where it goes wrong.

    from classifier import evaluation

    labelled = evaluation.read_folder(root)            # a folder per class, or labels.csv
    done = evaluation.evaluate_folder(root, labelled, ["efficientnet_lite0"], store=store)
    done[0].evaluation.accuracy / .report / .answers   # kept in `tables.evaluations`
    evaluation.newest(store) / evaluation.run(store, run_id) / evaluation.relabel(...)

Rooms: `labelled` (reading a set, matching its labels to a model's classes), `metrics`
(the numbers, from each picture's answer), `kept` (evaluations in the database), `runs`
(a run in this process: the command line's), `jobs` (a run as batch jobs: the app's and
the API's).
"""

from __future__ import annotations

from classifier.evaluation.kept import (
    Evaluation,
    Setup,
    get,
    latest_by_model,
    newest,
    relabel,
    run,
)
from classifier.evaluation.labelled import (
    LabelledSet,
    Matched,
    Photo,
    SetError,
    from_names,
    match,
    read_folder,
)
from classifier.evaluation.metrics import ANOTHER_CLASS, Answer, SetClass, mcnemar
from classifier.evaluation.runs import Done, Plan, evaluate_folder, plan

__all__ = [
    "ANOTHER_CLASS",
    "Answer",
    "Done",
    "Evaluation",
    "LabelledSet",
    "Matched",
    "Photo",
    "Plan",
    "SetClass",
    "SetError",
    "Setup",
    "evaluate_folder",
    "from_names",
    "get",
    "latest_by_model",
    "match",
    "mcnemar",
    "newest",
    "plan",
    "read_folder",
    "relabel",
    "run",
]
