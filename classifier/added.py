"""Models people add: Teachable Machine exports, Keras files and LiteRT files.

Adding a model takes two steps, so a page can show a test answer in between:

    candidate = added.read_model(data, labels_data)      # checked and converted, not kept
    prediction = classify(picture, candidate.loaded("minus_one_to_one"))
    added.save(name, candidate, "minus_one_to_one")       # now in the picker, CLI and history

`read_model` never opens the file in this process: a child process
(`classifier.convert`) checks it, converts Keras models to LiteRT and runs it once.
`save` keeps the LiteRT file in the database with the model's row (one transaction),
so every server sharing the database has it; each copies it into
`<data dir>/models/<sha256>.tflite` on first use and checks its digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from classifier import engine, history, zoo
from classifier.config import get_settings
from classifier.history import registry
from classifier.history.owners import EVERYONE, Scope
from classifier.modelfiles import (
    FORMAT_TITLES,
    SCALINGS,
    ModelFile,
    ModelFileError,
    read_upload,
    scaling,
)

log = logging.getLogger(__name__)
CONVERT_TIMEOUT_SECONDS = 600
MAX_NAME_LENGTH = 60
TEACHABLE_MACHINE_SCALING = "minus_one_to_one"
WHOLE_PICTURE = 1.0  # added models see the whole picture's centre square, as Teachable Machine's


RETRY_AFTER_SECONDS = 300  # a failed export is not tried again sooner
_export_locks: dict[Path, threading.Lock] = {}
_export_failures: dict[Path, tuple[float, str]] = {}
_exported: dict[Path, engine.LiteRTEngine] = {}  # opened once per process
_exports_lock = threading.Lock()


def is_open(path: Path) -> bool:
    """Tell whether `open_exported` has opened this file in this process."""
    return path in _exported


def open_exported(path: Path, *arguments: str) -> engine.LiteRTEngine:
    """Return the engine of a file a child process exports (`classifier.convert ARGUMENTS
    PATH`): a feature extractor, a map model. Exported once if the file is missing or
    damaged, opened once per process.

    One export per file at a time (others asking wait for it, not for other files); a
    failure is remembered for RETRY_AFTER_SECONDS, so repeated requests do not each start
    a TensorFlow child.

    Raises:
        ModelFileError: the export failed (one sentence).
    """
    with _exports_lock:
        if path in _exported:
            return _exported[path]
        lock = _export_locks.setdefault(path, threading.Lock())
    with lock:
        _export_once(path, arguments)
        with _exports_lock:
            if path not in _exported:
                _exported[path] = engine.LiteRTEngine(path, get_settings().num_threads)
            return _exported[path]


def _export_once(path: Path, arguments: tuple[str, ...]) -> None:
    """Run the child unless `path` holds a verified file (the caller holds the file's lock)."""
    if engine.verify_engine_file(path) is None:
        return
    failed = _export_failures.get(path)
    if failed is not None and time.monotonic() - failed[0] < RETRY_AFTER_SECONDS:
        raise ModelFileError(failed[1])
    try:
        _run_child(*arguments, str(path))
        problem = engine.verify_engine_file(path)
        if problem is not None:
            raise ModelFileError(f"The file made for it cannot be used: {problem}.")
    except ModelFileError as exc:
        _export_failures[path] = (time.monotonic(), str(exc))
        raise
    _export_failures.pop(path, None)


@dataclass(frozen=True)
class ChildLimits:
    """What one child process may spend before it is stopped."""

    memory_mb: int  # resident memory, watched while it runs
    cpu_seconds: int  # processor time (RLIMIT_CPU, set by the child on itself)
    wall_seconds: int


# Checking a file someone added: LiteRT alone takes ~40 MB, and TensorFlow, imported only
# to convert a Keras file that passed its checks, ~700 MB.
INSPECT_LIMITS = ChildLimits(memory_mb=512, cpu_seconds=60, wall_seconds=120)
CONVERT_LIMITS = ChildLimits(memory_mb=2048, cpu_seconds=300, wall_seconds=CONVERT_TIMEOUT_SECONDS)
# Exports of the app's own networks (feature extractors, map models, fused models).
BUILD_LIMITS = ChildLimits(memory_mb=4096, cpu_seconds=1800, wall_seconds=CONVERT_TIMEOUT_SECONDS)
_LIMITS = {"inspect": INSPECT_LIMITS, "convert": CONVERT_LIMITS}
WATCH_SECONDS = 0.02  # how often a child's memory is looked at
# Children that import TensorFlow (~700 MB each: converting a Keras file, the app's own
# exports) run one at a time; checking a LiteRT file (~40 MB, never TensorFlow) has a lock
# of its own, so a slow check of someone's file never holds up the app's exports.
_checking = threading.Lock()
_building = threading.Lock()


def _run_child(*arguments: str) -> dict[str, Any]:
    """Run `classifier.convert` in a child process, within its limits; return its report.

    Raises:
        ModelFileError: the child refused the file, failed, or went past a limit.
    """
    limits = _LIMITS.get(arguments[0], BUILD_LIMITS)
    environment = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="-1",
        CLASSIFIER_CHILD_CPU_SECONDS=str(limits.cpu_seconds),
    )
    # Lower priority, so visitors' pages keep answering while a model converts.
    nice = [path, "-n", "10"] if (path := shutil.which("nice")) else []
    command = [*nice, sys.executable, "-m", "classifier.convert", *arguments]
    with _checking if limits is INSPECT_LIMITS else _building:
        finished = _watched(command, environment, limits)
    lines = finished.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        report = None
    reported = report.get("peak_mb", 0) if isinstance(report, dict) else 0
    log.info(
        "classifier.convert %s: %s, peak %d MB, %.1f s of processor time",
        arguments[0], finished.outcome, max(finished.peak_mb, int(reported)),
        finished.cpu_seconds,
    )  # fmt: skip
    if finished.outcome == "memory":
        raise ModelFileError(
            f"Reading this model needed more than {limits.memory_mb:,} MB of memory; it was "
            "stopped."
        )
    if finished.outcome == "time":
        raise ModelFileError(
            f"Reading this model took longer than {_duration(limits.wall_seconds)}; it was stopped."
        )
    if finished.returncode == -signal.SIGXCPU or (
        finished.returncode == -signal.SIGKILL and finished.cpu_seconds >= limits.cpu_seconds
    ):
        raise ModelFileError(
            f"Reading this model took more than {_duration(limits.cpu_seconds)} of processor "
            "time; it was stopped."
        )
    if finished.returncode == -signal.SIGKILL:
        raise ModelFileError(
            "Reading this model was stopped by the system, perhaps for want of memory."
        )
    if not isinstance(report, dict):
        # The child died (a crafted file can crash a parser) or printed nothing useful.
        raise ModelFileError(
            "This file could not be opened as a model: the program reading it stopped "
            f"(exit status {finished.returncode})."
        )
    if not report.get("ok"):
        log.info("classifier.convert %s said: %s", arguments[0], finished.stderr_tail.strip())
        raise ModelFileError(str(report.get("message", "This model cannot be added.")))
    return report


def _duration(seconds: int) -> str:
    return f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"


@dataclass(frozen=True)
class _Finished:
    returncode: int
    stdout: str
    stderr_tail: str  # the end of what it said on stderr: for the server log
    outcome: str  # "exited", or the limit it was stopped at: "memory", "time"
    peak_mb: int  # its peak resident memory, as seen while watching it
    cpu_seconds: float


def _watched(command: list[str], environment: dict[str, str], limits: ChildLimits) -> _Finished:
    """Run a child while a thread watches its memory and time, and stops it past a limit.

    The child leads a process group of its own, so whatever it starts is stopped with it;
    its output is read in chunks, and only its end is kept.
    """
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        start_new_session=True,
    )
    output, errors = _Tail(MAX_REPORT_BYTES), _Tail(2000)
    readers = [
        threading.Thread(target=output.read_all, args=(process.stdout,), daemon=True),
        threading.Thread(target=errors.read_all, args=(process.stderr,), daemon=True),
    ]
    for reader in readers:
        reader.start()
    stopped: list[str] = []
    seen = [0]  # the most resident memory seen
    done = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + limits.wall_seconds
        while not done.wait(WATCH_SECONDS):
            seen[0] = max(seen[0], _resident_mb(process.pid))
            if seen[0] > limits.memory_mb:
                stopped.append("memory")
            elif time.monotonic() > deadline:
                stopped.append("time")
            else:
                continue
            _kill_group(process.pid)  # never Popen.kill: its poll() could reap the child
            return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # wait4 reaps the child with its own processor time. (Its ru_maxrss would include the
    # server's memory, shared from the fork until the child runs Python: the child reports
    # its own peak instead.)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    watcher.join()
    _kill_group(process.pid)  # anything it started, which would hold its output open
    for reader in readers:
        reader.join(timeout=5)
    return _Finished(
        process.returncode,
        output.text(),
        errors.text(),
        stopped[0] if stopped else "exited",
        seen[0],
        usage.ru_utime + usage.ru_stime,
    )


MAX_REPORT_BYTES = 1024 * 1024  # the end of a child's output kept: its report is one line


class _Tail:
    """The last bytes of a stream, read a chunk at a time."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.data = b""

    def read_all(self, stream) -> None:
        while chunk := stream.read1(64 * 1024):
            self.data = (self.data + chunk)[-self.keep :]
        stream.close()

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing of it is left
        os.killpg(pid, signal.SIGKILL)


def _resident_mb(pid: int) -> int:
    """Return a process's resident memory in MB (0 where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as file:
            pages = int(file.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024**2


@dataclass(frozen=True)
class Candidate:
    """A model that was read, checked and converted, but not kept yet."""

    source: str  # what the person added, e.g. "Teachable Machine zip (keras_model.h5)"
    tflite: bytes
    class_names: tuple[str, ...]
    details: dict[str, Any]  # the child's report: input size, dtypes, outputs, ...
    detected_scaling: str | None  # None: the person must choose

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.tflite).hexdigest()

    def spec(self, scaling_name: str, name: str = "new model") -> zoo.ModelSpec:
        """Return the spec this candidate would have, to classify a test picture."""
        details = self.details | {"scaling": scaling_name}
        return _spec(name, details, self.class_names, None, self.source, self.sha256)

    def loaded(self, scaling_name: str) -> engine.LoadedModel:
        """Return the candidate as a loaded model, for a test answer before it is kept."""
        spec = self.spec(scaling_name)
        runner = engine.LiteRTEngine(self.tflite, get_settings().num_threads, softmax=spec.softmax)
        return engine.LoadedModel(spec, runner, spec.name, spec.weights_origin, "")


def read_model(data: bytes, labels_data: bytes | None = None) -> Candidate:
    """Check a model file (and its labels), convert it to LiteRT if needed, run it once.

    Raises:
        ModelFileError: one sentence on why it cannot be added.
    """
    scratch = _scratch_folder()  # first: what an earlier, killed check left is deleted
    found: ModelFile = read_upload(data, labels_data, get_settings().max_model_bytes)
    if found.labels is None:
        raise ModelFileError(
            f"A {FORMAT_TITLES[found.format]} needs a labels file: one class name per line, "
            "or a JSON list."
        )
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=scratch) as folder:
        source = Path(folder) / f"source.{found.format}"
        source.write_bytes(found.data)
        if found.format == "tflite":
            report = _run_child("inspect", str(source))
            tflite = found.data
        else:
            output = Path(folder) / "model.tflite"
            report = _run_child("convert", found.format, str(source), str(output))
            tflite = output.read_bytes()
    if report["classes"] != len(found.labels):
        raise ModelFileError(
            f"The model gives {report['classes']:,} class scores but the labels name "
            f"{len(found.labels):,} class{'' if len(found.labels) == 1 else 'es'}; they must "
            "match."
        )
    # A quantized input says its range itself; otherwise Teachable Machine's is known.
    detected = report.get("scaling_hint") or (
        TEACHABLE_MACHINE_SCALING if found.teachable_machine else None
    )
    return Candidate(
        source=found.described_as,
        tflite=tflite,
        class_names=found.labels,
        details=report,
        detected_scaling=detected,
    )


SCRATCH_PREFIX = "added-model-"
STALE_SCRATCH_SECONDS = 24 * 3600  # checks waiting their turn are long done by then


def _scratch_folder() -> Path | None:
    """Return the folder where an added file waits while it is checked (`<data dir>/tmp`, or
    the system's where that cannot be made), after deleting what a killed server left there."""
    folder = get_settings().data_dir / "tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    now = time.time()
    for left in folder.glob(f"{SCRATCH_PREFIX}*"):
        try:
            if now - left.stat().st_mtime > STALE_SCRATCH_SECONDS:
                shutil.rmtree(left, ignore_errors=True)
        except OSError:  # another server removed it first
            continue
    return folder


def check_name(name: str) -> str:
    """Return a model name tidied up, or raise ModelFileError saying what is wrong with it."""
    name = unicodedata.normalize("NFC", " ".join(name.split()))
    if not name:
        raise ModelFileError("Give the model a name.")
    if len(name) > MAX_NAME_LENGTH:
        raise ModelFileError(f"A model name has at most {MAX_NAME_LENGTH} characters.")
    if not all(ch.isprintable() for ch in name):
        raise ModelFileError("A model name cannot hold control characters.")
    built_in = {n.casefold() for spec in zoo.MODELS.values() for n in (spec.name, spec.title)}
    if name.casefold() in built_in:
        raise ModelFileError(f"“{name}” is the name of a built-in model; pick another name.")
    return name


@dataclass(frozen=True)
class AddedModel:
    """A kept model, as the picker, the engine and the history see it."""

    entry: registry.ModelEntry

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.entry.details["class_names"])

    @property
    def scaling(self) -> str | None:
        """The preprocessing's name (SCALINGS); None for a taught model, scaled as its base."""
        return self.entry.details.get("scaling")

    @property
    def base(self) -> str | None:
        """The built-in network a taught model stands on; None for an added model."""
        return self.entry.details.get("base") if self.taught else None

    @property
    def taught(self) -> bool:
        return self.entry.details.get("kind") == "taught"

    @property
    def preprocessing(self) -> str:
        """Say how pixels are scaled, for a person."""
        if self.base is not None:
            return f"as {zoo.title_of(self.base)}"
        return SCALINGS[self.scaling].title if self.scaling in SCALINGS else str(self.scaling)

    @property
    def input_size(self) -> int:
        return int(self.entry.details["size"])

    @property
    def quantized(self) -> bool:
        return self.entry.details.get("input_dtype") != "float32"

    def path(self) -> Path:
        """Return where this server keeps the model's file (copied there on demand)."""
        return file_path(self.entry)

    def spec(self) -> zoo.ModelSpec:
        """Return the spec that runs this model, its file copied from the database if needed."""
        path = materialize(self.entry)
        # The cache key of its answers: the same file re-added with other labels differs.
        version = f"{self.entry.sha256}:{self.entry.created_at.isoformat()}"
        if self.base is not None:
            base = zoo.get_spec(self.base)
            return zoo.ModelSpec(
                name=self.name,
                title=self.name,
                input_size=base.input_size,
                parameters=self.entry.details.get("parameters"),
                preprocess=base.preprocess,
                weights_file=lambda: path,
                build=None,
                weights_origin=self.entry.source,  # "Taught from 40 photos on ..."
                class_names=self.class_names,
                crop_fraction=WHOLE_PICTURE,
                engine_file=path,
                version=version,
                base=self.base,
            )
        return _spec(
            self.name, self.entry.details, self.class_names, path, self.entry.source, version
        )


def _spec(
    name: str,
    details: dict[str, Any],
    class_names: tuple[str, ...],
    path: Path | None,
    source: str,
    version: str,
) -> zoo.ModelSpec:
    """Return the spec of an added model (`path` None: not kept yet, run from memory)."""
    return zoo.ModelSpec(
        name=name,
        title=name,
        input_size=int(details["size"]),
        parameters=details.get("parameters"),
        preprocess=scaling(details["scaling"]).scale,
        weights_file=lambda: path or Path(),
        build=None,
        weights_origin=f"Added model: {source}",
        class_names=class_names,
        crop_fraction=WHOLE_PICTURE,
        engine_file=path or Path(),
        softmax=details.get("outputs") == "logits",
        version=version,
    )


def models_folder() -> Path:
    return get_settings().data_dir / "models"


def file_path(entry: registry.ModelEntry) -> Path:
    """Return where this server keeps a model's file: LiteRT, or a taught model's head."""
    suffix = ".npz" if entry.details.get("kind") == "taught" else ".tflite"
    return models_folder() / f"{entry.sha256}{suffix}"


def teachable_machine_zip_path(entry: registry.ModelEntry) -> Path:
    """Return where a taught model's download (Teachable Machine's LiteRT layout) is kept."""
    return models_folder() / f"{entry.sha256}-teachable-machine.zip"


_materialize_lock = threading.Lock()
_verified: dict[Path, tuple[int, int]] = {}  # files whose digest matched: (size, mtime)


def materialize(entry: registry.ModelEntry) -> Path:
    """Copy an added model's file from the database into the data folder, once.

    A file already there is used when its sha256 matches; otherwise it is written
    again (atomically), so a damaged copy is repaired from the database.

    Raises:
        ModelError: the model was removed meanwhile.
    """
    path = file_path(entry)
    with _materialize_lock:
        try:
            info = path.stat()
            seen = (info.st_size, info.st_mtime_ns)
        except OSError:
            seen = None
        if seen is not None and _verified.get(path) == seen:  # hashed once per process
            return path
        if seen is not None and _digest(path) == entry.sha256:
            _verified[path] = seen
            return path
        data = registry.model_data(store(), entry.name)
        if data is None:
            raise zoo.ModelError(f"The model “{entry.name}” was removed.")
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise zoo.ModelError(f"The stored file of the model “{entry.name}” is damaged.")
        path.parent.mkdir(parents=True, exist_ok=True)
        history.write_atomically(path, data)
        info = path.stat()
        _verified[path] = (info.st_size, info.st_mtime_ns)
    return path


def _digest(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


_stores: dict[str, history.HistoryStore] = {}
_stores_lock = threading.Lock()


def store() -> history.HistoryStore:
    """Return this process's store for the configured database (the history's)."""
    url = get_settings().history_url()
    with _stores_lock:
        if url not in _stores:
            _stores[url] = history.HistoryStore.open_readable(url)
        return _stores[url]


def close_stores() -> None:
    """Close the stores `store()` opened (tests that switch databases)."""
    with _stores_lock:
        for opened in _stores.values():
            opened.dispose()
        _stores.clear()


def all_models(scope: Scope = EVERYONE) -> list[AddedModel]:
    """Return every added model in a scope (whoever owns them by default), oldest first."""
    return [AddedModel(entry) for entry in registry.list_models(store().scoped(scope))]


ORPHAN_GRACE_SECONDS = 600  # a file this new may belong to a model being kept right now


def drop_orphaned_files() -> int:
    """Delete the files in this server's models folder that no kept model has (removed or
    retrained since, maybe by another server on the same database); return how many were
    deleted. A file a model still needs is copied from the database again. For a server,
    now and then: a command line may be pointed at another database."""
    kept = {entry.sha256 for entry in registry.list_models(store())}
    deleted, now = 0, time.time()
    for path in models_folder().glob("*"):
        digest = path.name[:64]
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            continue
        try:
            old = now - path.stat().st_mtime > ORPHAN_GRACE_SECONDS
        except OSError:  # deleted meanwhile
            continue
        if digest not in kept and old and path.is_file():
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def find(name: str) -> AddedModel:
    """Return an added model by name.

    Raises:
        ModelError: no model, built in or added, has this name.
    """
    try:
        entry = registry.get_model(store(), name)
    except (history.HistoryError, SQLAlchemyError) as exc:
        log.exception("Looking up the added model %r failed", name)
        raise zoo.ModelError(
            f"The model “{name}” cannot be loaded: the database of added models cannot be read."
        ) from exc
    if entry is None:
        raise zoo.UnknownModel(
            f"Expected one of the models {', '.join(zoo.MODELS)} or an added model. "
            f"Received: {name!r}"
        )
    return AddedModel(entry)


def exists(name: str, scope: Scope = EVERYONE) -> bool:
    """Tell whether an added model in a scope has this name."""
    return registry.get_model(store().scoped(scope), name) is not None


def save(name: str, candidate: Candidate, scaling_name: str, scope: Scope = EVERYONE) -> AddedModel:
    """Keep a candidate under a name: its row and file in the database, the file copied here.

    It belongs to the scope's owner (nobody by default).

    Raises:
        ModelFileError: the name is not usable.
        ModelNameTaken: another model has this name.
        HistoryReadOnlyError: the database cannot be written.
    """
    name = check_name(name)
    chosen = scaling(scaling_name)  # a known scaling, or ModelFileError
    if scaling_name in candidate.details.get("failing_scalings", ()):
        raise ModelFileError(
            "This model gives non-numbers (NaN or infinity) for pictures preprocessed as "
            f"{chosen.title}; pick another preprocessing."
        )
    details = dict(candidate.details)
    details.update(class_names=list(candidate.class_names), scaling=scaling_name)
    details.pop("ok", None)
    return keep(name, candidate.source, details, candidate.tflite, scope=scope)


def keep(
    name: str,
    source: str,
    details: dict[str, Any],
    data: bytes,
    replacing: registry.ModelEntry | None = None,
    scope: Scope = EVERYONE,
) -> AddedModel:
    """Write a model's row and file to the database (replacing `replacing`, same name, in the
    same transaction) and copy the file into this server's data folder. It belongs to the
    scope's owner, and only a model in the scope can be replaced.

    Raises:
        ModelNameTaken: another model has this name (and none is being replaced).
        HistoryReadOnlyError: the database cannot be written.
    """
    digest = hashlib.sha256(data).hexdigest()
    entry = registry.add_model(
        store().scoped(scope), name, source, digest, details, data, replace=replacing is not None
    )
    if replacing is not None:
        engine.forget(name)
        drop_files(replacing)  # the old file (and its download), unless shared
    try:
        materialize(entry)  # now, so the first answer does not wait for it
    except (OSError, zoo.ModelError):  # kept all the same: copied again on first use
        log.exception("Copying the model %r into the data folder failed", name)
    return AddedModel(entry)


def remove(name: str, scope: Scope = EVERYONE) -> bool:
    """Forget an added model in a scope (its predictions stay in the history); return whether
    it existed there.

    Its file leaves the data folder unless another added model is the same file.
    """
    mine = store().scoped(scope)
    entry = registry.get_model(mine, name)
    if entry is None or not registry.remove_model(mine, name):
        return False
    engine.forget(name)
    drop_files(entry)
    return True


def drop_files(entry: registry.ModelEntry) -> None:
    """Delete a model's files from this server's data folder, unless a kept model is the same
    file (the next server to need them copies them from the database again)."""
    if all(other.sha256 != entry.sha256 for other in registry.list_models(store())):
        file_path(entry).unlink(missing_ok=True)
        teachable_machine_zip_path(entry).unlink(missing_ok=True)


__all__ = [
    "AddedModel",
    "Candidate",
    "ModelFileError",
    "all_models",
    "check_name",
    "find",
    "read_model",
    "remove",
    "save",
]
