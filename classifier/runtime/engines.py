"""Engines: what turns a preprocessed batch into probabilities, and nothing else.

`LiteRTEngine` runs a .tflite file (XNNPACK), `OnnxEngine` an .onnx file (ONNX Runtime,
for models added from PyTorch); `KerasEngine` and `EagerKerasEngine` run a
Keras model where LiteRT is missing or until an export is ready; `ExportingEngine`
answers with Keras at once and with LiteRT once its file is exported. None of them
knows what kind of model it runs (built in, added, taught): `classifier.models` opens
them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Protocol

import numpy as np

from classifier import files
from classifier.errors import ModelError
from classifier.runtime import cache

log = logging.getLogger(__name__)


class Engine(Protocol):
    """Runs a preprocessed float32 batch (N, size, size, 3) to probabilities (N, classes)."""

    backend: str

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def wait(self) -> None:
        """Block until the engine that will keep answering is ready (at once for most)."""

    def twin(self, num_threads: int) -> Engine | None:
        """Return another engine on the same model, with buffers (and threads) of its own,
        so two threads can run the model side by side; None if it cannot be duplicated
        (then threads share this one)."""


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
        self._model = model  # a twin opens the same file (or bytes, which LiteRT keeps)
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
                    raise ModelError(
                        f"The model failed on this picture ({' '.join(str(exc).split())[:200]})."
                    ) from None
                out[i] = self._interpreter.get_tensor(self._output).reshape(-1)
        if self._output_quantization is not None:
            scale, zero_point = self._output_quantization
            out = (out - np.float32(zero_point)) * np.float32(scale)
        return _probabilities(out, self._softmax)

    def wait(self) -> None:
        return None

    def twin(self, num_threads: int) -> LiteRTEngine:
        """Return a new interpreter on the same model: its own buffers, its own lock."""
        return LiteRTEngine(self._model, num_threads, softmax=self._softmax)


ONNX_BACKEND = "ONNX Runtime"


MAX_RUN_SECONDS = 30.0  # the longest an ONNX model may take on one call before it is stopped


class OnnxEngine:
    """An ONNX Runtime session over one .onnx file (CPU provider, the app's thread count).

    The session is made from the file's bytes alone (`onnx_session`): no path in the file
    is followed. `session.run` is safe to call from several threads, and a twin opens a
    session of its own. The batch is NHWC float32, as for every engine; a channels-first
    input gets it transposed, a float16 one gets it cast. A model with a fixed batch of one,
    or one that fails on a batch of several, runs one picture per call. A call longer than
    MAX_RUN_SECONDS is stopped (a model may loop far longer on some pictures than on the
    test pictures it was checked with). `softmax` turns logits into probabilities.
    """

    backend = ONNX_BACKEND

    def __init__(self, model: Path | bytes, num_threads: int, *, softmax: bool = False):
        self.path = model if isinstance(model, Path) else None
        self._model = model
        data = model.read_bytes() if isinstance(model, Path) else model
        self._session = onnx_session(data, num_threads)
        given = self._session.get_inputs()[0]
        self._input = given.name
        shape = list(given.shape)
        self._channels_first = bool(onnx_channels_first(shape))
        self._one_at_a_time = shape[0] == 1  # a fixed batch of one
        self._input_dtype = np.float16 if given.type == "tensor(float16)" else np.float32
        self._softmax = softmax

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float32)
        if self._channels_first:
            batch = batch.transpose(0, 3, 1, 2)
        batch = np.ascontiguousarray(batch, dtype=self._input_dtype)
        if self._one_at_a_time or len(batch) == 1:
            outputs = [self._run(batch[i : i + 1]) for i in range(len(batch))]
        else:
            try:
                outputs = [self._run(batch)]
            except ModelError:  # its batch is dynamic in name only: one picture per call
                self._one_at_a_time = True
                outputs = [self._run(batch[i : i + 1]) for i in range(len(batch))]
        out = np.concatenate(outputs).reshape(len(batch), -1).astype(np.float32, copy=False)
        return _probabilities(out, self._softmax)

    def _run(self, part: np.ndarray) -> np.ndarray:
        """Run one call within MAX_RUN_SECONDS; a failure is a ModelError of one sentence."""
        import onnxruntime

        options = onnxruntime.RunOptions()
        options.log_severity_level = 4  # its failure is said once, below, not logged twice
        watched = _watchdog.watch(options, MAX_RUN_SECONDS)
        try:
            return self._session.run(None, {self._input: part}, options)[0]
        except Exception as exc:  # an added model can fail on a picture
            if options.terminate:
                raise ModelError(
                    f"The model took more than {MAX_RUN_SECONDS:.0f} s on this picture and was "
                    "stopped."
                ) from None
            raise ModelError(
                f"The model failed on this picture ({' '.join(str(exc).split())[:200]})."
            ) from None
        finally:
            _watchdog.release(watched)

    def wait(self) -> None:
        return None

    def twin(self, num_threads: int) -> OnnxEngine:
        """Return a new session on the same model, with threads of its own."""
        return OnnxEngine(self._model, num_threads, softmax=self._softmax)


class _Watchdog:
    """One thread that stops ONNX Runtime calls past their deadline (`RunOptions.terminate`),
    for every engine of the process: a timer thread per call would cost more than a small
    model's whole answer."""

    def __init__(self) -> None:
        self._calls: dict[int, tuple[float, object]] = {}  # id -> (deadline, its RunOptions)
        self._next = 0
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, options, seconds: float) -> int:
        """Stop the call run with `options` once `seconds` have passed; return its id."""
        with self._changed:
            self._next += 1
            idle = not self._calls
            self._calls[self._next] = (time.monotonic() + seconds, options)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="onnx watchdog", daemon=True)
                self._thread.start()
            if idle:  # it waits for nothing: wake it (else it wakes by the soonest deadline,
                self._changed.notify()  # and every call has the same time limit)
            return self._next

    def release(self, call: int) -> None:
        with self._changed:
            self._calls.pop(call, None)

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for call, (deadline, options) in list(self._calls.items()):
                    if deadline <= now:
                        options.terminate = True
                        del self._calls[call]
                soonest = min((deadline for deadline, _ in self._calls.values()), default=None)
                self._changed.wait(None if soonest is None else soonest - now)


_watchdog = _Watchdog()
_no_external_data: tempfile.TemporaryDirectory | None = None
_no_external_data_lock = threading.Lock()


def onnx_session(data: bytes, num_threads: int):
    """Return an ONNX Runtime session (CPU) over a model's bytes, reading no other file.

    A tensor kept in another file (external data) would be looked for in an empty folder
    of this process's own, so none is ever read, whatever path the model names; its idle
    threads sleep between pictures rather than spin (on a server sharing its cores with
    visitors' pages, spinning made two threads two to three times slower than one).
    """
    import onnxruntime

    global _no_external_data
    with _no_external_data_lock:
        if _no_external_data is None:
            _no_external_data = tempfile.TemporaryDirectory(prefix="onnx-no-external-data-")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, num_threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings are for developers
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry(
        "session.model_external_initializers_file_folder_path", _no_external_data.name
    )
    return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def onnx_channels_first(shape: list) -> bool | None:
    """Tell an ONNX model's picture layout from its input's four dimensions (an int where the
    file fixes one, anything else where it does not): channels first (NCHW) when the second
    is 3, or not fixed while the last is not 3 (PyTorch's order: Hugging Face exports leave
    the channels unnamed); channels last (NHWC) when the last is 3; None: no RGB input."""
    fixed = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if fixed[1] == 3:
        return True
    if fixed[3] == 3:
        return False
    return True if fixed[1] is None else None


def _probabilities(out: np.ndarray, softmax: bool) -> np.ndarray:
    """Check a model's scores are numbers, and turn logits into probabilities."""
    if not np.all(np.isfinite(out)):
        raise ModelError(
            "The model gave no usable answer for this picture: its scores are not numbers "
            "(NaN or infinity)."
        )
    if softmax:
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    return out


def is_onnx(head: bytes) -> bool:
    """Tell an ONNX file from its first bytes: a protobuf ModelProto starts with its
    `ir_version` (field 1, a small varint), then one of its next fields' tags."""
    return len(head) >= 3 and head[0] == 0x08 and 1 <= head[1] <= 0x7F and head[2] in ONNX_NEXT_TAGS


# ModelProto fields after ir_version, as written in field order: producer_name (2),
# producer_version (3), domain (4), model_version (5), doc_string (6), graph (7),
# opset_import (8), metadata_props (14), training_info (20), functions (25).
ONNX_NEXT_TAGS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA})


def open_model_file(model: Path | bytes, num_threads: int, *, softmax: bool = False) -> Engine:
    """Open a model file someone added with its runtime, told by its content: LiteRT
    (`TFL3` at byte 4) or ONNX Runtime."""
    if isinstance(model, Path):
        with open(model, "rb") as file:
            head = file.read(8)
    else:
        head = model[:8]
    if is_onnx(head):
        return OnnxEngine(model, num_threads, softmax=softmax)
    return LiteRTEngine(model, num_threads, softmax=softmax)


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

    def twin(self, num_threads: int) -> None:
        return None  # TensorFlow runs one model's calls side by side itself


class EagerKerasEngine:
    """A Keras model called eagerly: for the few answers before an export is ready."""

    backend = "Keras"

    def __init__(self, model):
        self.model = model

    def run(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(np.asarray(batch, np.float32), training=False))

    def wait(self) -> None:
        return None

    def twin(self, num_threads: int) -> None:
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
        with _exporting_lock:
            _exporting.add(self)

    def _export(self, model, path: Path, num_threads: int, title: str) -> None:
        try:
            settled: Engine = LiteRTEngine(cache.export_litert(model, path, title), num_threads)
        except cache.ExportAbandoned:  # the process is exiting without it
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

    def twin(self, num_threads: int) -> Engine | None:
        """Return a twin of the LiteRT engine once the export is ready; None before (the
        eager Keras model is shared) or if it failed (so is the compiled one)."""
        return self._current.twin(num_threads)

    def finish(self) -> None:
        """Block until the export has finished, if it has started."""
        with self._start_lock:
            started = self._thread.ident is not None
        if started:
            self._thread.join()


def open_cached(title: str, path: Path, threads: int, notices: list[str]) -> LiteRTEngine | None:
    """Open a verified engine file; set a damaged one aside (saying so) and return None."""
    files.remove_stale_files(path.parent)
    if not path.is_file():
        return None
    problem = cache.verify_engine_file(path)
    if problem is None:
        try:
            return LiteRTEngine(path, threads)
        except Exception as exc:  # its checksum matches, yet this LiteRT refuses it
            problem = f"LiteRT cannot open it ({' '.join(str(exc).split())})"  # one line
    aside = path.with_name(f"{path.name}.corrupt")
    try:
        os.replace(path, aside)
        cache.checksum_path(path).unlink(missing_ok=True)
    except FileNotFoundError:  # another process set it aside first
        pass
    except OSError as exc:
        log.warning(
            "The cached engine file %s cannot be used (%s) nor moved aside (%s)",
            path,
            problem,
            exc.strerror or exc,
        )
        notices.append(f"The cached engine file for {title} is damaged and cannot be replaced.")
        return None
    log.warning(
        "The cached engine file %s cannot be used (%s): moved it to %s; rebuilding %s",
        path,
        problem,
        aside.name,
        title,
    )
    damage = "could not be verified" if problem == cache.NO_CHECKSUM else "was damaged"
    notices.append(f"The cached engine file for {title} {damage} and has been rebuilt.")
    return None


# Engines still exporting in this process (weakly held: a closed engine is forgotten).
_exporting: weakref.WeakSet[ExportingEngine] = weakref.WeakSet()
_exporting_lock = threading.Lock()


def wait_for_exports() -> None:
    """Block until every export this process started has finished.

    A short-lived process calls this before it exits, where Ctrl-C can still be
    handled, rather than leave the interpreter to wait for the export threads.
    """
    with _exporting_lock:
        exporting = list(_exporting)
    for engine in exporting:
        engine.finish()


def litert_available() -> bool:
    """Tell whether the LiteRT runtime is installed."""
    return importlib.util.find_spec("ai_edge_litert") is not None
