"""The background runner: this server process's batch jobs, one at a time, in a thread.

A job's pictures wait in `<data folder>/jobs/<public id>/` (written by `start_job`). The
runner takes a queued job (or one whose process is gone: a server killed mid-job and
restarted), classifies its pending pictures through the pipeline, and saves each run of
answers with the pictures' new status in one transaction (`queue.record`): a crash loses
at most the run in hand, which is classified again, never twice. Cancelling stops it after
the run in hand. A job's files are deleted as their answers are saved, and its folder
when it ends.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
import time
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from classifier import history, models
from classifier.history import NewRecord
from classifier.history.errors import DISK_FULL
from classifier.jobs import inputs, pipeline, queue

log = logging.getLogger(__name__)

FOLDER = "jobs"  # under the data folder
RUN = 64  # answers saved together, at most
RUN_SECONDS = 1.0  # or this often, whichever comes first
IDLE_SECONDS = 5.0  # how often an idle runner looks for jobs other processes left
LEFTOVER_SECONDS = 86_400  # a job folder or upload of no job, this old, was left by a crash


def job_folder(data_dir: Path, public_id: str) -> tuple[str, Path]:
    """Return a job's folder as the jobs table names it, and where it is on this server."""
    name = f"{FOLDER}/{public_id}"
    return name, data_dir / name


class Runner:
    """Runs the jobs whose pictures are on this server; safe to share between threads."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.data_dir = data_dir
        self.worker = queue.worker_id()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the runner's thread, once."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._loop, name="batch-jobs", daemon=True)
                self._thread.start()

    def wake(self) -> None:
        """Look for work now (a job was just created)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the run of pictures in hand."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                ran = self.run_next()
            except Exception as exc:  # a database that is down for a moment: try again later
                log.warning(
                    "The batch job runner tries again shortly: %s",
                    history.log_message(exc, self.url),
                )
                ran = False
            if not ran:
                self._wake.wait(IDLE_SECONDS)
                self._wake.clear()

    def store(self) -> history.HistoryStore:
        return history.shared_store(self.url)

    def run_next(self) -> bool:
        """Take one job and run it to its end; False if there was none to take."""
        store = self.store()
        root = self.data_dir / FOLDER
        entries = list(root.iterdir()) if root.is_dir() else []
        here = {f"{FOLDER}/{path.name}" for path in entries if not path.name.startswith(".")}
        self._sweep(store, here, entries)
        job = queue.take(store, self.worker, here)
        if job is None:
            return False
        log.info("Running batch job %s (%d pictures)", job.public_id, job.total)
        self._run(store, job)
        return True

    def _sweep(self, store: history.HistoryStore, here: set[str], entries: list[Path]) -> None:
        """Delete the folders of jobs that ended (cancelled, or ended in another process),
        and what a killed process left: a folder of no job, an unfinished upload, after a
        day (a job being put together has a folder and no row yet)."""
        for name in queue.ended_folders(store, here):
            shutil.rmtree(self.data_dir / name, ignore_errors=True)
        known = queue.known_folders(store, here)
        for path in entries:
            name = f"{FOLDER}/{path.name}"
            if name in known or not _older_than(path, LEFTOVER_SECONDS):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def _run(self, store: history.HistoryStore, job: queue.Job) -> None:
        beating = threading.Event()

        def beat() -> None:  # the job's heartbeat, also while a model loads or a run is long
            while not beating.wait(queue.HEARTBEAT.total_seconds()):
                try:
                    queue.heartbeat(store, job, self.worker)
                except Exception as exc:  # the database away: the job pauses anyway
                    log.warning("No heartbeat for job %s: %s", job.public_id, type(exc).__name__)

        heart = threading.Thread(target=beat, name=f"job-{job.public_id}", daemon=True)
        heart.start()
        try:
            self._run_job(store, job)
        finally:
            beating.set()
            heart.join()

    def _run_job(self, store: history.HistoryStore, job: queue.Job) -> None:
        from classifier.evaluation import answering as evaluating

        folder = self.data_dir / job.folder
        try:
            loaded = models.load(models.choose(job.model, job.model_scope), in_child=True)
        except models.ModelError as exc:
            reason = (
                f"The model “{job.model}” is no longer here: it was removed before it could "
                "answer these photos."
                if isinstance(exc, models.UnknownModel)  # (a job's model existed when sent)
                else f"The model could not be loaded: {exc}"
            )
            queue.finish(store, job, self.worker, reason)
            shutil.rmtree(folder, ignore_errors=True)
            evaluating.complete(store, job)  # an evaluation's ends failed, with the reason
            return

        # An evaluation's job keeps each answer in its picture's row, not in the history.
        evaluation = evaluating.answering(store, job, loaded.spec.class_names)
        refused = None if evaluation is None else evaluation.refusal(loaded)
        if refused is not None:  # never another model's numbers, nor other classes'
            queue.finish(store, job, self.worker, refused)
            shutil.rmtree(folder, ignore_errors=True)
            evaluating.complete(store, job, loaded.spec)
            return
        todo = queue.pending(store, job)
        paths = [inputs.file_for(folder, position) for position, _ in todo]
        answers: list = []  # (position, NewRecord); an evaluation: (position, answer, thumbnail)
        failures: list[tuple[int, str]] = []
        saved_at = time.monotonic()

        def save() -> None:
            nonlocal saved_at
            if evaluation is None:
                queue.record(store, job, self.worker, answers, failures)
            else:
                queue.record_evaluated(store, job, self.worker, answers, failures)
            for position, *_ in (*answers, *failures):
                inputs.file_for(folder, position).unlink(missing_ok=True)
            answers.clear()
            failures.clear()
            saved_at = time.monotonic()

        error = None
        try:
            outcomes = pipeline.classify_files(loaded, paths, thumbnails=job.thumbnails)
            try:
                for outcome in outcomes:
                    position, name = todo[outcome.index]
                    if outcome.prediction is None:
                        failures.append((position, outcome.error or "It could not be classified."))
                    elif evaluation is not None:
                        answers.append(evaluation.answer(position, name, outcome))
                    else:
                        record = NewRecord.from_prediction(
                            outcome.prediction,
                            name,
                            outcome.digest,
                            job.top_k,
                            with_thumbnail=False,
                            source=job.source,
                        )
                        record = _with(record, outcome.thumbnail, job.id)
                        answers.append((position, record))
                    due = time.monotonic() - saved_at > RUN_SECONDS
                    if len(answers) + len(failures) >= RUN or due:
                        save()
                    if self._stopping.is_set():
                        return  # the job stays running: the next start takes it over
                save()
            finally:
                outcomes.close()
        except queue.Lost:
            log.info("Batch job %s was cancelled or taken over", job.public_id)
            evaluating.complete(store, job, loaded.spec)  # a cancelled one's
            return
        except OSError as exc:
            error = _disk_sentence(exc)
        except (history.HistoryError, SQLAlchemyError) as exc:
            if history.public_message(exc) != DISK_FULL:
                # The database is away: the job stays this worker's, taken up once stale.
                log.warning(
                    "Batch job %s paused: %s", job.public_id, history.log_message(exc, None)
                )
                return
            error = f"{DISK_FULL} The job stopped; the answers saved before are kept."
        except Exception as exc:
            log.exception("Batch job %s failed", job.public_id)
            error = f"The job stopped on an unexpected error ({type(exc).__name__})."
        queue.finish(store, job, self.worker, error)
        shutil.rmtree(folder, ignore_errors=True)
        if evaluation is not None:
            evaluating.complete(store, job, loaded.spec)
        log.info("Batch job %s ended%s", job.public_id, f": {error}" if error else "")


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def _with(record: NewRecord, thumbnail: bytes | None, job_id: int) -> NewRecord:
    from dataclasses import replace

    return replace(record, thumbnail=thumbnail, job_id=job_id)


def _disk_sentence(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "The server's disk is full; the job stopped, and the answers saved before are kept."
    return f"The job's pictures could not be read ({exc.strerror or exc})."


_runners: dict[tuple[str, Path], Runner] = {}
_runners_lock = threading.Lock()


def get_runner(url: str, data_dir: Path) -> Runner:
    """Return this process's runner for a database and data folder, started."""
    with _runners_lock:
        found = _runners.get((url, data_dir))
        if found is None:
            found = _runners[(url, data_dir)] = Runner(url, data_dir)
    found.start()
    return found


def wake(url: str, data_dir: Path) -> None:
    """Wake this process's runner for a database and data folder, if it runs (the server
    starts it; a job kept elsewhere waits for the server that holds its pictures)."""
    with _runners_lock:
        found = _runners.get((url, data_dir))
    if found is not None:
        found.wake()
