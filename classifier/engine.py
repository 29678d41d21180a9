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

    def wait(self) -> None:
        """Block until the engine that will keep answering is ready (at once for most)."""


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

    def __init__(self, model, path: Path, num_threads: int):
        self._current: Engine = EagerKerasEngine(model)
        self._thread = threading.Thread(
            target=self._export, args=(model, path, num_threads), name=f"export {path.name}"
        )
        self._start_lock = threading.Lock()

    def _export(self, model, path: Path, num_threads: int) -> None:
        try:
            settled: Engine = LiteRTEngine(export_litert(model, path), num_threads)
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


@dataclass(frozen=True)
class LoadedModel:
    """A ready engine and what a person should know about it."""

    spec: zoo.ModelSpec
    engine: Engine
    requested: str
    weights_source: str
    notice: str

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


def load_model(name: str | None = None) -> LoadedModel:
    """Return the model that answers for a zoo name, opening its engine once per process.

    The zoo decides which model answers (`zoo.choose`: the model itself, or
    EfficientNet-Lite0 with a notice); every name that falls back shares one engine.

    Raises:
        ModelError: neither the model nor the fallback can be loaded.
    """
    choice = zoo.choose(name or get_settings().default_model)
    spec = choice.spec
    try:
        engine = _shared_engine(spec, choice.status.path)
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
    )


def is_loaded(name: str) -> bool:
    """Tell whether the engine that answers for a name is already open in this process."""
    try:
        spec = zoo.choose(name).spec
    except zoo.ModelError:
        return False
    return _engine_key(spec) in _engines


_engines: dict[tuple[str, Path, int], Engine] = {}
_engine_locks: dict[tuple[str, Path, int], threading.Lock] = {}
_engines_lock = threading.Lock()


def _engine_key(spec: zoo.ModelSpec) -> tuple[str, Path, int]:
    settings = get_settings()
    return spec.name, settings.cache_dir, settings.num_threads


def _shared_engine(spec: zoo.ModelSpec, weights_file: Path) -> Engine:
    """Open each model's engine once per process, whichever names asked for it."""
    key = _engine_key(spec)
    with _engines_lock:  # held briefly; a slow build holds only its own model's lock
        lock = _engine_locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _engines:
            _, cache_dir, threads = key
            _engines[key] = _open_engine(spec, weights_file, cache_dir, threads)
        return _engines[key]


def _open_engine(spec: zoo.ModelSpec, weights_file: Path, cache_dir: Path, threads: int) -> Engine:
    if litert_available() and weights_file.is_file():
        path = engine_path(spec.name, weights_file, cache_dir)
        if path.is_file():
            return LiteRTEngine(path, threads)
    model = spec.build("imagenet")  # Keras models download their weights here if needed
    if not litert_available() or not weights_file.is_file():
        # No LiteRT here, or Keras cached the weights under a name this code does not
        # know (so there is no key for an engine file): a compiled Keras model answers.
        return KerasEngine(model)
    return ExportingEngine(model, engine_path(spec.name, weights_file, cache_dir), threads)


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
