"""Inference runtime: LiteRT (XNNPACK) on a .tflite exported once, Keras as fallback.

The first load of a model builds it with Keras, answers with a compiled
`tf.function` at once, and exports it with `model.export(path, format="litert")`
into the cache directory in the background; every later load, in any process,
opens that file with LiteRT alone and never imports TensorFlow. The file name
carries a key of the model, its weights file (name, size, modification time) and
ENGINE_FORMAT, so new weights build a new file.

Each export records the file's size and sha256 beside it (`<stem>.json`, written
before the file is moved into place), and every load checks them first: a file
that is damaged (truncated, overwritten, bit-flipped), has no record, or that
LiteRT cannot open is moved aside to `<name>.corrupt` and rebuilt like a first
load. Hashing EfficientNet-Lite0's 18.6 MB file costs about 12 ms (2-core
machine, file in the page cache), once per process. Opening an engine also
deletes the temporary files that killed or crashed exports left behind. A cache
folder that cannot be written is replaced by a per-user temporary folder. A
repair or a replaced folder is logged once and told to the person once, in
`LoadedModel.cache_notice`.

Where LiteRT is not installed (e.g. Windows), a compiled `tf.function` runs the
Keras model instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from classifier import zoo
from classifier.config import APP_NAME, get_settings

ENGINE_FORMAT = 1
STALE_AFTER_SECONDS = 3600  # a temporary file this old is left over, whoever wrote it
NO_CHECKSUM = "there is no checksum file beside it"
# What an export writes before moving it into place: `.<name>.<pid>.<thread id>.tflite|tmp`.
_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)\.\d+\.(?:tflite|tmp)$")
log = logging.getLogger(__name__)


class Engine(Protocol):
    """Runs a preprocessed float32 batch (N, size, size, 3) to probabilities (N, classes)."""

    backend: str

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def wait(self) -> None:
        """Block until the engine that will keep answering is ready (at once for most)."""


_quiet_native = False


def quiet_native_logs() -> None:
    """Keep LiteRT's C++ start-up lines ("INFO: Created ... XNNPACK delegate") off stderr.

    For a command line, whose stderr is for the person. Not for a server: while an
    engine opens, the process's stderr goes nowhere, whatever thread writes to it.
    """
    global _quiet_native
    _quiet_native = True


@contextlib.contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at the null device, where C++ code writes its logs."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class LiteRTEngine:
    """A LiteRT interpreter over one .tflite file; safe to share between threads.

    Images run one per invoke: XNNPACK gains nothing from batching on a CPU, and
    some exported graphs (MobileNetV3's) cannot be resized to another batch size.
    Added models may take uint8/int8 input and give uint8/int8 output: the float
    batch is quantized with the input's scale and zero point, and the output is
    dequantized, `(q - zero_point) * scale`. A channels-first input gets the batch
    transposed; `softmax` turns logits into probabilities.
    """

    backend = "LiteRT"

    def __init__(self, model: Path | bytes, num_threads: int, *, softmax: bool = False):
        from ai_edge_litert.interpreter import Interpreter

        self.path = model if isinstance(model, Path) else None
        source = (
            {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
        )
        with _native_stderr_silenced() if _quiet_native else contextlib.nullcontext():
            self._interpreter = Interpreter(**source, num_threads=num_threads)
            self._interpreter.allocate_tensors()
        given = self._interpreter.get_input_details()[0]
        answer = self._interpreter.get_output_details()[0]
        self._input, self._output = given["index"], answer["index"]
        shape = given["shape"]
        self._channels_first = shape[1] == 3 and shape[3] != 3
        self._input_dtype = np.dtype(given["dtype"])
        self._input_quantization = given["quantization"]
        self._output_quantization = (
            None if np.dtype(answer["dtype"]) == np.float32 else answer["quantization"]
        )
        self.classes = int(np.prod(answer["shape"][1:]))
        self.output_shape = tuple(int(d) for d in answer["shape"][1:])  # before flattening
        self._softmax = softmax
        # One interpreter holds one set of buffers: calls from Streamlit's threads take turns.
        self._lock = threading.Lock()

    def _quantize(self, batch: np.ndarray) -> np.ndarray:
        """Quantize as q = x / scale + zero_point, rounded to the nearest integer (halves
        up), in float32 and in place: about 0.1 ms for a 224x224 picture."""
        scale, zero_point = self._input_quantization
        limits = np.iinfo(self._input_dtype)
        values = batch * np.float32(1 / scale)
        values += np.float32(zero_point + 0.5)
        np.floor(values, out=values)
        np.clip(values, limits.min, limits.max, out=values)
        return values.astype(self._input_dtype)

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        if self._channels_first:
            batch = batch.transpose(0, 3, 1, 2)
        if self._input_dtype == np.float32:
            batch = np.ascontiguousarray(batch)
        else:
            batch = self._quantize(batch)
        out = np.empty((len(batch), self.classes), dtype=np.float32)
        with self._lock:
            for i in range(len(batch)):
                try:
                    self._interpreter.set_tensor(self._input, batch[i : i + 1])
                    self._interpreter.invoke()
                except (RuntimeError, ValueError) as exc:  # an added model can fail on a picture
                    raise zoo.ModelError(
                        f"The model failed on this picture ({' '.join(str(exc).split())[:200]})."
                    ) from None
                out[i] = self._interpreter.get_tensor(self._output).reshape(-1)
        if self._output_quantization is not None:
            scale, zero_point = self._output_quantization
            out = (out - np.float32(zero_point)) * np.float32(scale)
        if not np.all(np.isfinite(out)):
            raise zoo.ModelError(
                "The model gave no usable answer for this picture: its scores are not numbers "
                "(NaN or infinity)."
            )
        if self._softmax:
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        return out

    def wait(self) -> None:
        return None


class KerasEngine:
    """A Keras model behind one compiled `tf.function`; never `model.predict` per image."""

    backend = "Keras"

    def __init__(self, model):
        import tensorflow as tf

        size = model.input_shape[1]
        self._call = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)],
        )

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self._call(np.asarray(batch, dtype=np.float32)).numpy()

    def wait(self) -> None:
        return None


class EagerKerasEngine:
    """A Keras model called eagerly: for the few answers before an export is ready."""

    backend = "Keras"

    def __init__(self, model):
        self.model = model

    def run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(np.asarray(batch, np.float32), training=False))

    def wait(self) -> None:
        return None


class ExportingEngine:
    """Answers with Keras at once, exports the LiteRT file, then answers with LiteRT.

    Used on a model's first-ever load, so the first answer costs no more than a
    plain Keras start: the model runs eagerly (tracing a `tf.function` would cost
    more than the few calls made before the file is ready), and the export starts
    only after the first answer, so the two do not share the CPU. The export
    thread is not a daemon: a short-lived process (the CLI) finishes writing the
    file before it exits, and the next process starts warm.

    `_current` is the one engine that answers; the export thread replaces it once,
    with LiteRT (or, if the export fails, compiled Keras), which also drops the
    eager model.
    """

    def __init__(self, model, path: Path, num_threads: int, title: str = ""):
        self._current: Engine = EagerKerasEngine(model)
        self._thread = threading.Thread(
            target=self._export,
            args=(model, path, num_threads, title or path.name),
            name=f"export {path.name}",
        )
        self._start_lock = threading.Lock()

    def _export(self, model, path: Path, num_threads: int, title: str) -> None:
        try:
            settled: Engine = LiteRTEngine(export_litert(model, path, title), num_threads)
        except ExportAbandoned:  # the process is exiting without it
            return
        except Exception:  # a compiled Keras model answers instead; the next process retries
            log.exception("Exporting %s failed; answering with Keras", path.name)
            settled = KerasEngine(model)
        self._current = settled

    def _start_export(self) -> None:
        with self._start_lock:
            if self._thread.ident is None:  # not started yet
                self._thread.start()

    @property
    def backend(self) -> str:
        return self._current.backend

    def run(self, batch: np.ndarray) -> np.ndarray:
        probabilities = self._current.run(batch)
        self._start_export()
        return probabilities

    def wait(self) -> None:
        """Start the export if no answer has yet, and block until it has finished (or failed)."""
        self._start_export()
        self._thread.join()

    def finish(self) -> None:
        """Block until the export has finished, if it has started."""
        with self._start_lock:
            started = self._thread.ident is not None
        if started:
            self._thread.join()


@dataclass(frozen=True)
class LoadedModel:
    """A ready engine and what a person should know about it."""

    spec: zoo.ModelSpec
    engine: Engine
    requested: str
    weights_source: str
    notice: str
    # Told once per process, by the load that opened the engine: a damaged engine file
    # was rebuilt, or the cache folder cannot be written and another is used.
    cache_notice: str = ""

    @property
    def name(self) -> str:
        return self.spec.name


def litert_available() -> bool:
    """Tell whether the LiteRT runtime is installed."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def engine_path(name: str, weights_file: Path, cache_dir: Path) -> Path:
    """Return the cache file of a model exported from one weights file."""
    stat = weights_file.stat()
    identity = f"{name}|{weights_file.name}|{stat.st_size}|{stat.st_mtime_ns}|{ENGINE_FORMAT}"
    return cache_dir / f"{name}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.tflite"


def cached_engine_path(name: str, cache_dir: Path | None = None) -> Path | None:
    """Return the model's cached .tflite if it exists for its current weights, else None.

    Without `cache_dir`, the configured cache folder, or the per-user temporary folder
    that replaces it when it cannot be written.
    """
    spec = zoo.get_spec(name)
    weights_file = spec.weights_file()
    if not weights_file.is_file():
        return None
    if cache_dir is not None:
        folders = [cache_dir]
    else:
        configured = get_settings().cache_dir
        folders = [configured]
        if not _looks_writable(configured):
            folders.append(fallback_cache_dir())
    for folder in folders:
        path = engine_path(name, weights_file, folder)
        if path.is_file():
            return path
    return None


def checksum_path(path: Path) -> Path:
    """Return the file that records an engine file's size and sha256."""
    return path.with_suffix(".json")


def verify_engine_file(path: Path) -> str | None:
    """Return why an engine file cannot be trusted, or None when its size and sha256 match.

    A file without its checksum file (an export cut short, an older version's cache)
    is not trusted either: its reason is NO_CHECKSUM.
    """
    try:
        record = json.loads(checksum_path(path).read_text(encoding="utf-8"))
        size, digest = int(record["size"]), str(record["sha256"])
    except FileNotFoundError:
        return NO_CHECKSUM
    except (OSError, ValueError, KeyError, TypeError):
        return "its checksum file cannot be read"
    try:
        actual = path.stat().st_size
        if actual != size:
            return f"it holds {actual:,} bytes instead of {size:,}"
        if _sha256(path) != digest:
            return "its sha256 does not match the one recorded when it was exported"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    return None


class ExportAbandoned(Exception):
    """An export whose partial file was deleted by `abandon_exports`."""


# Exports under way in this process: partial file -> the model's title.
_running: dict[Path, str] = {}
_running_lock = threading.Lock()


def export_litert(model, path: Path, title: str = "") -> Path:
    """Export a Keras model to a .tflite file with its checksum file.

    The file is written under a temporary name and moved into place, so readers
    never see half a file; its checksum file is in place first, so a file without
    one is never the result of a finished export. The partial file exists from the
    start, so `abandon_exports` and the clean-up of stale files can find it.

    Raises:
        ExportAbandoned: `abandon_exports` was called while this export ran.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tflite")
    partial.write_bytes(b"")
    with _running_lock:
        _running[partial] = title or path.name
    try:
        model.export(str(partial), format="litert", verbose=False)
        size, digest = partial.stat().st_size, _sha256(partial)
        with _running_lock:  # abandoned, or moved into place: never half of each
            if _running.pop(partial, None) is None:
                raise ExportAbandoned(f"the export of {path.name} was abandoned")
            _write_atomically(checksum_path(path), _checksum_record(path, size, digest))
            os.replace(partial, path)
    finally:
        with _running_lock:
            _running.pop(partial, None)
        partial.unlink(missing_ok=True)
    return path


def abandon_exports() -> list[str]:
    """Delete the partial files of the exports under way; return their models' titles.

    For a process that exits at once instead of waiting for them (the command line
    on Ctrl-C): nothing they wrote stays behind, and the next start exports again.
    """
    with _running_lock:
        running = dict(_running)
        _running.clear()
        _abandoned.extend(running)
    for partial in running:
        partial.unlink(missing_ok=True)
    return list(dict.fromkeys(running.values()))


_abandoned: list[Path] = []


def sweep_abandoned() -> None:
    """Delete the abandoned exports' partial files again, right before the process exits.

    An export thread cannot be stopped: one that was finishing may have written its file
    after `abandon_exports` deleted it.
    """
    with _running_lock:
        abandoned = list(_abandoned)
    for partial in abandoned:
        partial.unlink(missing_ok=True)


def wait_for_exports() -> None:
    """Block until every export this process started has finished.

    A short-lived process calls this before it exits, where Ctrl-C can still be
    handled, rather than leave the interpreter to wait for the export threads.
    """
    for engine in list(_engines.values()):
        if isinstance(engine, ExportingEngine):
            engine.finish()


def remove_stale_files(folder: Path) -> list[Path]:
    """Delete the temporary files that killed or crashed exports left in a cache folder.

    A temporary file is stale when the process named in it is not running, or
    when it is over an hour old. Returns what was deleted.
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no folder (yet), or not one
        return []
    now, removed = time.time(), []
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                continue
            fresh = now - info.st_mtime < STALE_AFTER_SECONDS
            if fresh and _process_running(int(match["pid"])):
                continue
            os.unlink(entry.path)
        except OSError:  # removed meanwhile, or a folder we may not write to
            continue
        removed.append(Path(entry.path))
    if removed:
        log.info("Removed %d stale temporary file(s) from %s", len(removed), folder)
    return removed


def fallback_cache_dir() -> Path:
    """Return the per-user temporary folder used when the cache folder cannot be written."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"{APP_NAME}-{user}"


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _checksum_record(path: Path, size: int, digest: str) -> bytes:
    record = {"file": path.name, "size": size, "sha256": digest, "engine_format": ENGINE_FORMAT}
    return json.dumps(record, indent=2).encode() + b"\n"


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _process_running(pid: int) -> bool:
    if os.name != "posix":  # no cheap, harmless check: only the age counts
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running, as another user
        return True
    except (OSError, OverflowError):
        return False
    return True


def _looks_writable(folder: Path) -> bool:
    """Tell, without writing anything, whether files could be created in a folder."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            return False
        existing = existing.parent
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def _why_unwritable(folder: Path) -> str | None:
    """Return why files cannot be created in a folder (made if missing), or None if they can."""
    if folder.exists() and not folder.is_dir():
        return "it is a file, not a folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _why_not_private(folder: Path) -> str | None:
    """Return why a folder in the shared temporary folder cannot hold our engines, or None.

    Anyone may create folders there: one that is not ours alone could hand us
    someone else's engine file.
    """
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        return "it belongs to another user, or others may write to it"
    return _why_unwritable(folder)


def load_model(name: str | None = None) -> LoadedModel:
    """Return the model that answers for a name, opening its engine once per process.

    The zoo decides which model answers (`zoo.choose`: the model itself, or
    EfficientNet-Lite0 with a notice, or a model someone added); every name that
    falls back shares one engine.

    Raises:
        ModelError: neither the model nor the fallback can be loaded.
    """
    choice = zoo.choose(name or get_settings().default_model)
    spec = choice.spec
    try:
        engine, cache_notice = _shared_engine(spec, choice.status.path)
    except zoo.ModelError:
        raise
    except Exception as exc:  # a failed build or download must reach the person as one message
        raise zoo.ModelError(f"{spec.title} could not be loaded: {exc}") from exc
    return LoadedModel(
        spec=spec,
        engine=engine,
        requested=choice.requested,
        weights_source=choice.status.source,
        notice=choice.notice,
        cache_notice=cache_notice,
    )


def is_loaded(name: str) -> bool:
    """Tell whether the engine that answers for a name is already open in this process."""
    try:
        spec = zoo.choose(name).spec
    except zoo.ModelError:
        return False
    return _engine_key(spec) in _engines


EngineKey = tuple[str, str, Path, int]
_engines: dict[EngineKey, Engine] = {}
_engine_locks: dict[EngineKey, threading.Lock] = {}
_engines_lock = threading.Lock()
_replaced_folders: set[Path] = set()  # cache folders already said to be unwritable


def _engine_key(spec: zoo.ModelSpec) -> EngineKey:
    settings = get_settings()
    return spec.name, spec.version, settings.cache_dir, settings.num_threads


def forget(name: str) -> None:
    """Close this process's engines of a model (an added model that was removed)."""
    with _engines_lock:
        for key in [key for key in _engines if key[0] == name]:
            del _engines[key]


def _shared_engine(spec: zoo.ModelSpec, weights_file: Path) -> tuple[Engine, str]:
    """Open each model's engine once per process, whichever names asked for it.

    Returns the engine and, for the call that opened it only, its cache notice.
    """
    key = _engine_key(spec)
    with _engines_lock:  # held briefly; a slow build holds only its own model's lock
        lock = _engine_locks.setdefault(key, threading.Lock())
    with lock:
        if key in _engines:
            return _engines[key], ""
        _, _, cache_dir, threads = key
        if spec.base is not None:  # a taught model: a base's features, then its head
            from classifier import teach

            engine: Engine = teach.open_engine(spec)
            _engines[key] = engine
            return engine, ""
        if spec.engine_file is not None:  # an added model: its LiteRT file runs as it is
            engine = LiteRTEngine(spec.engine_file, threads, softmax=spec.softmax)
            _engines[key] = engine
            return engine, ""
        engine, notice = _open_engine(spec, weights_file, cache_dir, threads)
        _engines[key] = engine
        return engine, notice


def _open_engine(
    spec: zoo.ModelSpec, weights_file: Path, cache_dir: Path, threads: int
) -> tuple[Engine, str]:
    """Open a model's engine; return it with what the person should hear about the cache."""
    if not litert_available():
        return KerasEngine(spec.build("imagenet")), ""
    notices: list[str] = []
    if weights_file.is_file():
        engine = _open_cached(
            spec, engine_path(spec.name, weights_file, cache_dir), threads, notices
        )
        if engine is not None:
            return engine, ""
        folder = _export_folder(cache_dir, notices)
        if folder is not None and folder != cache_dir:
            path = engine_path(spec.name, weights_file, folder)
            engine = _open_cached(spec, path, threads, notices)
            if engine is not None:
                return engine, " ".join(notices)
        if folder is not None and _child_exports:
            path = engine_path(spec.name, weights_file, folder)
            return _export_in_child(spec, path), " ".join(notices)
        model = spec.build("imagenet")
    else:
        model = spec.build("imagenet")  # Keras models download their weights here if needed
        if not weights_file.is_file():
            # Keras cached the weights under a name this code does not know (so there
            # is no key for an engine file): a compiled Keras model answers.
            return KerasEngine(model), ""
        folder = _export_folder(cache_dir, notices)
    if folder is None:
        return KerasEngine(model), " ".join(notices)
    path = engine_path(spec.name, weights_file, folder)
    return ExportingEngine(model, path, threads, spec.title), " ".join(notices)


_child_exports = False


def export_in_child_processes(on: bool = True) -> None:
    """Make a built-in model's first-ever export run in a child process (the server's way).

    The child (`python -m classifier.convert classifier NAME FILE`) imports TensorFlow,
    builds the network and writes its engine file; this process then only opens that file
    with LiteRT, so it never holds TensorFlow (about 700 MB at its peak). The first answer
    waits for the export. Off (the command line's way), the first answer comes from Keras
    in this process at once and the export follows in a thread.
    """
    global _child_exports
    _child_exports = on


def _export_in_child(spec: zoo.ModelSpec, path: Path) -> LiteRTEngine:
    """Export a built-in model's engine file in a child process and open it."""
    from classifier import added  # added imports this module
    from classifier.modelfiles import ModelFileError

    try:
        return added.open_exported(path, "classifier", spec.name)
    except ModelFileError as exc:
        raise zoo.ModelError(f"{spec.title} could not be prepared on this server: {exc}") from exc


def _open_cached(
    spec: zoo.ModelSpec, path: Path, threads: int, notices: list[str]
) -> LiteRTEngine | None:
    """Open a verified engine file; set a damaged one aside (saying so) and return None."""
    remove_stale_files(path.parent)
    if not path.is_file():
        return None
    problem = verify_engine_file(path)
    if problem is None:
        try:
            return LiteRTEngine(path, threads)
        except Exception as exc:  # its checksum matches, yet this LiteRT refuses it
            problem = f"LiteRT cannot open it ({' '.join(str(exc).split())})"  # one line
    aside = path.with_name(f"{path.name}.corrupt")
    try:
        os.replace(path, aside)
        checksum_path(path).unlink(missing_ok=True)
    except FileNotFoundError:  # another process set it aside first
        pass
    except OSError as exc:
        log.warning(
            "The cached engine file %s cannot be used (%s) nor moved aside (%s)",
            path,
            problem,
            exc.strerror or exc,
        )
        notices.append(
            f"The cached engine file for {spec.title} is damaged and cannot be replaced."
        )
        return None
    log.warning(
        "The cached engine file %s cannot be used (%s): moved it to %s; rebuilding %s",
        path,
        problem,
        aside.name,
        spec.title,
    )
    damage = "could not be verified" if problem == NO_CHECKSUM else "was damaged"
    notices.append(f"The cached engine file for {spec.title} {damage} and has been rebuilt.")
    return None


def writable_cache_dir() -> Path | None:
    """Return the folder new engine files go to: the cache folder, or the private temporary
    folder that replaces it when it cannot be written; None when neither can be."""
    return _export_folder(get_settings().cache_dir, [])


def _export_folder(cache_dir: Path, notices: list[str]) -> Path | None:
    """Return where a new engine file goes: the cache folder, or a temporary one if it
    cannot be written, or None if neither can (then nothing is exported).

    An unwritable cache folder is logged and told once per process.
    """
    reason = _why_unwritable(cache_dir)
    if reason is None:
        return cache_dir
    fallback = fallback_cache_dir()
    problem = _why_not_private(fallback)
    first_time = cache_dir not in _replaced_folders
    _replaced_folders.add(cache_dir)
    if problem is None:
        if first_time:
            log.warning(
                "The engine cache folder %s cannot be written (%s); using %s",
                cache_dir,
                reason,
                fallback,
            )
            notices.append(
                f"The engine cache folder {cache_dir} cannot be written; using {fallback}."
            )
        return fallback
    if first_time:
        log.warning(
            "The engine cache folder %s cannot be written (%s), nor %s (%s); "
            "models are prepared anew on every start",
            cache_dir,
            reason,
            fallback,
            problem,
        )
        notices.append(
            f"The engine cache folder {cache_dir} cannot be written, nor {fallback}: "
            "models are prepared anew on every start."
        )
    return None


@dataclass(frozen=True)
class Latency:
    """One measurement: which model answered, on which runtime, how fast."""

    model_title: str
    backend: str
    median_ms: float
    runs: int


def measure_latency(loaded: LoadedModel, runs: int = 20) -> Latency:
    """Time the engine that will keep serving a model, on one random picture, after a warm-up."""
    loaded.engine.wait()  # time the engine that will serve, not the interim one
    size = loaded.spec.input_size
    batch = loaded.spec.batch(np.random.default_rng(0).uniform(0, 255, (size, size, 3)))
    loaded.engine.run(batch)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        loaded.engine.run(batch)
        times.append((time.perf_counter() - started) * 1000)
    return Latency(loaded.spec.title, loaded.engine.backend, float(np.median(times)), runs)
