"""Pictures on their way from a browser to a batch job, written to disk as they arrive.

The Batch page opens an upload (`open_upload`): a new job's folder and a secret ticket.
The page's folder picker sends each picture in its own request to the server's upload
address with that ticket (`receive`), so the server never holds more than one picture's
chunk of each request in memory, whatever the folder's size; a zip is sent whole the same
way and unpacked once it is on disk. The page then submits the job (`NewJob.submit`).
An upload lives in this server process only: the page and its uploads reach the same one.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from classifier.jobs import inputs
from classifier.jobs.batches import NewJob
from classifier.jobs.inputs import BatchInputError, Picture

FORGET_AFTER_SECONDS = 86_400  # an upload nobody submitted is forgotten (its folder swept)


@dataclass
class Upload:
    """One job's pictures arriving; safe to share between the requests that send them."""

    ticket: str
    job: NewJob
    opened: float = field(default_factory=time.monotonic)
    error: str | None = None  # why it was refused: the page says so and starts again
    title: str = ""  # the zip's name, or the folder's (from its pictures' names)
    labels_csv: bytes | None = None  # a zip's labels.csv (a labelled set's, for evaluations)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def pictures(self) -> list[Picture]:
        return self.job.pictures

    def add(self, name: str, data: BinaryIO) -> None:
        """Write one picture (refused ones are remembered: `error`)."""
        with self.lock:
            if self.error is None:
                self.title = self.title or (name.split("/")[0] if "/" in name else "")
                try:
                    self.job.add(name, data)
                except BatchInputError as exc:
                    self.refuse(str(exc))

    def unpack(self, path: Path, name: str) -> None:
        """Unpack a zip that arrived whole (refused whole, with `error`, if it must be)."""
        with self.lock:
            if self.error is None:
                self.title = name
                try:
                    self.job.unpack_zip(path)
                    self.labels_csv = inputs.labels_csv(path, [p.name for p in self.job.pictures])
                except BatchInputError as exc:
                    self.refuse(str(exc))

    def refuse(self, reason: str) -> None:
        self.error = reason
        self.job.discard()


_open: dict[str, Upload] = {}
_lock = threading.Lock()


def open_upload(data_dir: Path | None = None) -> Upload:
    """Open an upload for a new job; its ticket is the only way to send to it."""
    upload = Upload(secrets.token_urlsafe(24), NewJob(data_dir))
    with _lock:
        now = time.monotonic()
        for ticket in [t for t, u in _open.items() if now - u.opened > FORGET_AFTER_SECONDS]:
            del _open[ticket]
        _open[upload.ticket] = upload
    return upload


def find(ticket: str) -> Upload | None:
    """Return the open upload a ticket names, or None."""
    with _lock:
        return _open.get(ticket)


def close(ticket: str) -> None:
    """Forget an upload (submitted, or abandoned: then its folder is deleted too)."""
    with _lock:
        _open.pop(ticket, None)
