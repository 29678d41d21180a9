"""Inference runtime: LiteRT (XNNPACK) on a .tflite exported once, Keras as fallback.

The first load of a model builds it with Keras, answers with a compiled
`tf.function` at once, and exports it with `model.export(path, format="litert")`
into the cache directory in the background; every later load, in any process,
opens that file with LiteRT alone and never imports TensorFlow. The file name
carries a key of the model, its weights file (name, size, modification time) and
ENGINE_FORMAT, so new weights build a new file.

Where LiteRT is not installed (e.g. Windows), a compiled `tf.function` runs the
Keras model instead.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from classifier import zoo
from classifier.config import get_settings

ENGINE_FORMAT = 1
log = logging.getLogger(__name__)


class Engine(Protocol):
    """Runs a preprocessed float32 batch (N, size, size, 3) to probabilities (N, 1000)."""

    backend: str

    def run(self, batch: np.ndarray) -> np.ndarray: ...


class LiteRTEngine:
    """A LiteRT interpreter over one .tflite file; safe to share between threads.

    Images run one per invoke: XNNPACK gains nothing from batching on a CPU, and
    some exported graphs (MobileNetV3's) cannot be resized to another batch size.
    """

    backend = "LiteRT"

    def __init__(self, path: Path, num_threads: int):
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        # One interpreter holds one set of buffers: calls from Streamlit's threads take turns.
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        out = np.empty((len(batch), 1000), dtype=np.float32)
        with self._lock:
            for i in range(len(batch)):
                self._interpreter.set_tensor(self._input, batch[i : i + 1])
                self._interpreter.invoke()
                out[i] = self._interpreter.get_tensor(self._output)[0]
        return out


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


class ExportingEngine:
    """Answers with Keras at once, exports the LiteRT file, then answers with LiteRT.

    Used on a model's first-ever load, so the first answer costs no more than a
    plain Keras start: the model runs eagerly (tracing a `tf.function` would cost
    more than the few calls made before the file is ready), and the export starts
    only after the first answer, so the two do not share the CPU. The export
    thread is not a daemon: a short-lived process (the CLI) finishes writing the
    file before it exits, and the next process starts warm.
    """

    backend_while_exporting = "Keras"

    def __init__(self, model, path: Path, num_threads: int):
        self._model = model
        self._settled: LiteRTEngine | KerasEngine | None = None  # answers once the export is over
        self._thread = threading.Thread(
            target=self._export, args=(path, num_threads), name=f"export {path.name}"
        )
        self._start_lock = threading.Lock()

    def _export(self, path: Path, num_threads: int) -> None:
        try:
            self._settled = LiteRTEngine(export_litert(self._model, path), num_threads)
        except Exception:  # a compiled Keras model answers instead; the next process retries
            log.exception("Exporting %s failed; answering with Keras", path.name)
            self._settled = KerasEngine(self._model)
        self._model = None  # set after _settled, so run() never sees neither; frees the model

    def _start_export(self) -> None:
        with self._start_lock:
            if self._thread.ident is None:  # not started yet
                self._thread.start()

    @property
    def backend(self) -> str:
        return self._settled.backend if self._settled else self.backend_while_exporting

    def run(self, batch: np.ndarray) -> np.ndarray:
        model = self._model  # read first: once it is None, _settled is set
        if model is None or self._settled is not None:
            return self._settled.run(batch)
        probabilities = np.asarray(model(np.asarray(batch, np.float32), training=False))
        self._start_export()
        return probabilities

    def wait(self) -> None:
        """Start the export if no answer has yet, and block until it has finished (or failed)."""
        self._start_export()
        self._thread.join()


@dataclass(frozen=True)
class LoadedModel:
    """A ready engine and what a person should know about it."""

    spec: zoo.ModelSpec
    engine: Engine
    requested: str
    weights_source: str
    notice: str
    load_seconds: float

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
    """Return the model's cached .tflite if it exists for its current weights, else None."""
    spec = zoo.get_spec(name)
    weights_file = spec.weights_file()
    if not weights_file.is_file():
        return None
    path = engine_path(name, weights_file, cache_dir or get_settings().cache_dir)
    return path if path.is_file() else None


def export_litert(model, path: Path) -> Path:
    """Export a Keras model to a .tflite file, atomically so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tflite")
    try:
        model.export(str(partial), format="litert", verbose=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def load_model(
    name: str, *, cache_dir: Path | None = None, num_threads: int | None = None
) -> LoadedModel:
    """Load a zoo model with ImageNet weights, falling back to EfficientNet-Lite0 with a notice.

    Raises:
        ModelError: neither the model nor the fallback can be loaded.
    """
    started = time.perf_counter()
    settings = get_settings()
    cache_dir = cache_dir or settings.cache_dir
    num_threads = num_threads or settings.num_threads
    spec = zoo.get_spec(name)
    status = zoo.weights_status(name)
    notice = ""
    if not status.available:
        if spec.name == zoo.FALLBACK_MODEL:
            raise zoo.ModelError(f"{spec.title} cannot be loaded: {status.reason}.")
        fallback = zoo.get_spec(zoo.FALLBACK_MODEL)
        notice = (
            f"{spec.title} is not available here: {status.reason}. Using {fallback.title} instead."
        )
        spec, status = fallback, zoo.weights_status(fallback.name)
        if not status.available:
            raise zoo.ModelError(
                f"{notice} But {fallback.title} cannot be loaded: {status.reason}."
            )
    try:
        engine = _shared_engine(spec, status.path, cache_dir, num_threads)
    except zoo.ModelError:
        raise
    except Exception as exc:  # a failed build or download must reach the person as one message
        raise zoo.ModelError(f"{spec.title} could not be loaded: {exc}") from exc
    return LoadedModel(
        spec=spec,
        engine=engine,
        requested=name,
        weights_source=status.source,
        notice=notice,
        load_seconds=time.perf_counter() - started,
    )


_engines: dict[tuple[str, Path, int], Engine] = {}
_engine_locks: dict[tuple[str, Path, int], threading.Lock] = {}
_engines_lock = threading.Lock()


def _shared_engine(
    spec: zoo.ModelSpec, weights_file: Path, cache_dir: Path, threads: int
) -> Engine:
    """Open each model's engine once per process, whichever names asked for it.

    Every model that falls back asks for EfficientNet-Lite0: they share one engine.
    """
    key = (spec.name, cache_dir, threads)
    with _engines_lock:  # held briefly; a slow build holds only its own model's lock
        lock = _engine_locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _engines:
            _engines[key] = _open_engine(spec, weights_file, cache_dir, threads)
        return _engines[key]


def _open_engine(spec: zoo.ModelSpec, weights_file: Path, cache_dir: Path, threads: int) -> Engine:
    if litert_available() and weights_file.is_file():
        path = engine_path(spec.name, weights_file, cache_dir)
        if path.is_file():
            return LiteRTEngine(path, threads)
    model = spec.build(weights_file)  # Keras models download their weights here if needed
    # Keras makes Streamlit clear its session after every script run, and each clear
    # runs a full garbage collection over TensorFlow's many objects (~0.2 s a rerun).
    # Freezing what exists now keeps those collections small.
    gc.freeze()
    if not litert_available() or not weights_file.is_file():
        # No LiteRT here, or Keras cached the weights under a name this code does not
        # know (so there is no key for an engine file): a compiled Keras model answers.
        return KerasEngine(model)
    return ExportingEngine(model, engine_path(spec.name, weights_file, cache_dir), threads)


def wait_for_export(loaded: LoadedModel) -> None:
    """Block until a model's first-ever LiteRT export has finished, if one is running."""
    if isinstance(loaded.engine, ExportingEngine):
        loaded.engine.wait()
