"""Batch jobs: a model and a folder or zip of pictures, run in the background.

    from classifier import jobs

    new = jobs.NewJob(data_dir)                  # pictures go to disk as they arrive
    new.add("cat.jpg", data)  or  new.unpack_zip(path)
    job = new.submit(store, title=..., model=..., top_k=5, thumbnails=True, source="app")
    jobs.get(store, job.public_id)               # progress, as the person may see it
    jobs.cancel(store, public_id)
    jobs.items(store, job) / jobs.class_counts(store, job) / jobs.export(store, job, "csv")

Rooms: `inputs` (a zip or files written to the job's folder, checked), `queue` (the jobs
and their pictures in the database, in the store's scope), `pipeline` (decoding overlapped
with inference, shared with the command line), `runner` (the server's background thread
that runs them, resuming after a restart).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Where each name lives. Imported on first use: a command line classifying a folder through
# `classifier.jobs.pipeline` never pays for the database (SQLAlchemy) the jobs are kept in.
_WHERE = {
    "NewJob": "batches",
    "EXPORT_FIELDS": "batches",
    "export": "batches",
    "start_runner": "batches",
    "BatchInputError": "inputs",
    "Picture": "inputs",
    "ENDED": "queue",
    "Item": "queue",
    "Job": "queue",
    "cancel": "queue",
    "class_counts": "queue",
    "get": "queue",
    "items": "queue",
    "newest": "queue",
}

if TYPE_CHECKING:
    from classifier.jobs.batches import EXPORT_FIELDS, NewJob, export, start_runner
    from classifier.jobs.inputs import BatchInputError, Picture
    from classifier.jobs.queue import ENDED, Item, Job, cancel, class_counts, get, items, newest


_ROOMS = ("batches", "inputs", "pipeline", "queue", "ray_runner", "runner", "uploads")


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"classifier.jobs.{_WHERE[name]}"), name)
    if name in _ROOMS:
        return importlib.import_module(f"classifier.jobs.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ENDED",
    "EXPORT_FIELDS",
    "BatchInputError",
    "Item",
    "Job",
    "NewJob",
    "Picture",
    "cancel",
    "class_counts",
    "export",
    "get",
    "items",
    "newest",
    "start_runner",
]
