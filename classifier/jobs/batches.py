"""A new job put together (`NewJob`), its results as a file (`export`), and this server's
runner started (`start_runner`); `classifier.jobs` is the door to them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import BinaryIO

from classifier.config import get_settings
from classifier.history import HistoryStore
from classifier.jobs import inputs, queue
from classifier.jobs.inputs import BatchInputError, Picture
from classifier.jobs.queue import Job, items
from classifier.jobs.runner import get_runner, job_folder, wake

EXPORT_FIELDS = ("position", "file_name", "status", "label", "probability", "error", "public_id")


class NewJob:
    """A job being put together: each picture is written to disk as it arrives, counted
    against the batch limits (`CLASSIFIER_BATCH_MAX_PICTURES`, `_MAX_BYTES`)."""

    def __init__(self, data_dir: Path | None = None) -> None:
        settings = get_settings()
        self.data_dir = data_dir or settings.data_dir
        self.public_id = queue.new_public_id_for_job()
        self.folder_name, self.folder = job_folder(self.data_dir, self.public_id)
        self.limits = {
            "max_pictures": settings.batch_max_pictures,
            "max_bytes": settings.batch_max_bytes,
            "max_picture_bytes": settings.max_bytes,
        }
        self._intake = inputs.Intake(self.folder, **self.limits)
        self.pictures: list[Picture] = []

    def add(self, name: str, data: bytes | BinaryIO) -> Picture:
        """Write one picture; raises BatchInputError past a limit (then `discard`)."""
        picture = self._intake.add(name, data)
        self.pictures = list(self._intake.pictures)
        return picture

    def unpack_zip(self, path: Path) -> list[Picture]:
        """Write a zip's pictures; raises BatchInputError for a zip refused whole."""
        if self.pictures:
            raise BatchInputError("A job takes one zip, or pictures one by one, not both.")
        self.pictures = inputs.unpack_zip(path, self.folder, **self.limits)
        return self.pictures

    def submit(
        self,
        store: HistoryStore,
        *,
        title: str,
        model: str,
        top_k: int,
        thumbnails: bool,
        source: str,
    ) -> Job:
        """Keep the job (the store's owner's) and wake this server's runner."""
        if not self.pictures:
            raise BatchInputError("There are no pictures to classify in what was sent.")
        try:
            job = queue.create(
                store,
                title=title,
                model=model,
                pictures=self.pictures,
                folder=self.folder_name,
                public_id=self.public_id,
                top_k=top_k,
                thumbnails=thumbnails,
                source=source,
            )
        except BaseException:
            self.discard()
            raise
        wake(get_settings().history_url(), self.data_dir)
        return job

    def discard(self) -> None:
        """Delete what was written (a refused or abandoned job)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def start_runner() -> None:
    """Start this server's runner (at server start: it takes up unfinished jobs)."""
    settings = get_settings()
    get_runner(settings.history_url(), settings.data_dir)


def export(store: HistoryStore, job: Job, fmt: str) -> bytes:
    """Return a job's results as CSV or JSON: one row per picture, by name."""
    rows = [
        {
            "position": item.position,
            "file_name": item.file_name,
            "status": item.status,
            "label": item.label,
            "probability": None if item.probability is None else round(item.probability, 6),
            "error": item.error,
            "public_id": item.public_id,
            **({"top_k": _rounded(item.top_k)} if fmt == "json" else {}),
        }
        for item in items(store, job)
    ]
    if fmt == "json":
        return json.dumps({"job": job.as_dict(), "results": rows}, indent=2).encode()
    from classifier.history.store import safe_csv

    return safe_csv(rows, EXPORT_FIELDS)


def _rounded(top_k: list[dict] | None) -> list[dict] | None:
    """The top classes as the API gives them everywhere: probabilities to 6 decimals."""
    if top_k is None:
        return None
    return [{**entry, "probability": round(float(entry["probability"]), 6)} for entry in top_k]
