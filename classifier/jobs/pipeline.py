"""Many picture files through one model, decoding overlapped with inference.

    for outcome in pipeline.classify_files(loaded, paths, thumbnails=True):
        outcome.prediction or outcome.error      # one per path, in the order of `paths`

Worker threads (one per core by default) each read a file, decode it, crop it and run
the model on it, as `predict.classify` does. Where the model's engine can be duplicated
(`Engine.twin`: a LiteRT interpreter, a taught model's extractor) each worker has its
own, on one thread, so inferences run side by side as well as decodes; where it cannot
(Keras, while a model's first export runs) the workers share it. Pillow, hashlib and
LiteRT let go of the GIL while they work, so threads use the cores.

At most twice as many files as workers are in flight (read, decoded, or answered and
not yet taken), whatever the number of paths. Closing the generator, or an exception
in the thread reading it (Ctrl-C), stops the workers: what has not started is dropped,
and each worker finishes at most the picture it holds.

Shared by the command line's `predict` and the server's batch jobs (`runner`); it
never touches the history.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from classifier import images, predict
from classifier.config import get_settings
from classifier.errors import ModelError
from classifier.predict import Prediction

if TYPE_CHECKING:
    from classifier.models import LoadedModel
    from classifier.runtime.engines import Engine

log = logging.getLogger(__name__)

MAX_WORKERS = 16  # each has a copy of the model's engine: ~45 MB for EfficientNet-Lite0
IN_FLIGHT_PER_WORKER = 2  # files read or decoded ahead of the one being taken, per worker


@dataclass(frozen=True)
class Outcome:
    """What became of one file: its prediction, or one sentence saying why there is none."""

    index: int  # position in `paths`
    path: Path
    prediction: Prediction | None  # None when it failed
    error: str | None  # one plain sentence when prediction is None
    digest: str  # images.content_digest of the bytes ("" when unreadable or not asked for)
    thumbnail: bytes | None  # of prediction.image, when asked for and it succeeded


def default_workers() -> int:
    """Return how many workers run when not told: one per core this process may use."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def classify_files(
    loaded: LoadedModel,
    paths: Sequence[Path],
    *,
    thumbnails: bool = False,
    workers: int | None = None,
    digests: bool = True,
) -> Iterator[Outcome]:
    """Yield one Outcome per path, in the order of `paths`, with a bounded number in flight.

    A file that cannot be read, is not a picture we can use, or that the model fails on
    becomes an Outcome with its `error`, and the others go on. Nothing starts until the
    first Outcome is asked for.

    Args:
        thumbnails: Also make each picture's history thumbnail (`images.make_thumbnail`)
            in the workers.
        workers: Threads working at once (default: one per core, at most MAX_WORKERS).
        digests: Hash each file's bytes (`images.content_digest`, the history's key);
            off, `digest` is "" (a 12 MP JPEG's hash costs about 2 ms of CPU).
    """
    return _outcomes(loaded, paths, thumbnails, workers, digests, twins=True)


class _Stopped(Exception):
    """The generator was closed while this worker waited for an engine."""


def _keep_ctrl_c_for_the_caller() -> None:
    """Block SIGINT in a worker thread (POSIX), so that Ctrl-C reaches the main thread
    even while it holds Ctrl-C back itself (the command line, saving to the history)."""
    block = getattr(signal, "pthread_sigmask", None)
    if block is not None:
        block(signal.SIG_BLOCK, {signal.SIGINT})


def _outcomes(
    loaded: LoadedModel,
    paths: Sequence[Path],
    thumbnails: bool,
    workers: int | None,
    digests: bool = True,
    *,
    twins: bool,
) -> Iterator[Outcome]:
    """classify_files; `twins=False` makes the workers share the model's engine (kept for
    the benchmark that compares the two)."""
    if not paths:
        return
    count = max(1, min(workers or default_workers(), len(paths)))
    stop = threading.Event()
    engines: queue.SimpleQueue[Engine] = queue.SimpleQueue()  # free engines, one per worker

    def take_engine() -> Engine:
        while True:
            try:
                return engines.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    raise _Stopped from None

    def work(index: int, path: Path) -> Outcome:
        if stop.is_set():
            raise _Stopped
        try:
            data = path.read_bytes()
        except OSError as exc:
            return Outcome(
                index, path, None, f"cannot read the file ({exc.strerror or exc})", "", None
            )
        digest = images.content_digest(data) if digests else ""
        try:
            decoded, decode_ms = predict.decode(data, loaded)
            del data  # the file's bytes are not kept while the picture waits for its turn
            engine = take_engine()
            try:
                prediction = predict.classify_decoded(decoded, decode_ms, loaded, engine)
            finally:
                engines.put(engine)
        except (images.ImageError, ModelError) as exc:
            return Outcome(index, path, None, str(exc), digest, None)
        thumbnail = images.make_thumbnail(prediction.image) if thumbnails else None
        return Outcome(index, path, prediction, None, digest, thumbnail)

    executor = ThreadPoolExecutor(
        max_workers=count,
        thread_name_prefix="classify",
        initializer=_keep_ctrl_c_for_the_caller,
    )
    in_flight: deque[Future[Outcome]] = deque()
    upcoming = iter(range(len(paths)))

    def submit_next() -> None:
        index = next(upcoming, None)
        if index is not None:
            in_flight.append(executor.submit(work, index, Path(paths[index])))

    try:
        for _ in range(IN_FLIGHT_PER_WORKER * count):
            submit_next()
        # The workers read and decode meanwhile. The engines are opened here, not in the
        # workers: LiteRT's start-up chatter is silenced by pointing the process's stderr
        # away, which must not happen while the caller may be writing to it.
        _open_engines(loaded.engine, count, twins, engines, loaded.name)
        while in_flight:
            outcome = in_flight.popleft().result()
            submit_next()
            yield outcome
    finally:
        stop.set()
        for future in in_flight:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)


def _open_engines(
    engine: Engine, count: int, twins: bool, engines: queue.SimpleQueue[Engine], name: str
) -> None:
    """Put one engine per worker in `engines`: twins of the model's engine, one thread
    each, or the model's engine itself where it cannot be duplicated (or one worker runs)."""
    if count == 1 or not twins:
        for _ in range(count):
            engines.put(engine)
        return
    threads = max(1, get_settings().num_threads // count)
    for _ in range(count):
        twin = getattr(engine, "twin", None)
        try:
            copy = twin(threads) if twin is not None else None
        except Exception as exc:  # it still runs, shared
            log.warning("Running %s's engine once per worker failed: %s", name, exc)
            copy = None
        engines.put(copy or engine)
