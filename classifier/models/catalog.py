"""Every model by name, whatever its kind: which answers, and its engine opened once.

    choice = catalog.choose("mobilenet_v2")      # the one fallback policy
    loaded = catalog.load(choice)                # its engine, opened once per process
    loaded.engine.run(loaded.spec.prepare(picture))

A built-in name is answered by its network, or by EfficientNet-Lite0 with a notice when
its weights cannot be had here (`builtin.choose`); any other name is a model someone
added or taught (`own.find`, one database query). Every name that answers with the same
model shares one engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from classifier import files
from classifier.config import get_settings
from classifier.models import builtin, derived, open_engines, taught
from classifier.models.errors import DerivedFileFailed, ModelError
from classifier.models.spec import Choice, Kind, LoadedModel, ModelSpec, WeightsStatus
from classifier.runtime.engines import Engine, open_model_file

if TYPE_CHECKING:
    from classifier.history.owners import Scope
    from classifier.models.own import AddedModel

forget = open_engines.forget


def choose(model: str | AddedModel, scope: Scope | None = None) -> Choice:
    """Return the model that answers for a name: a built-in one (or its fallback, with a
    notice), or a model someone added or taught (one database query; none when given the
    model as listed already).

    Args:
        scope: Look a name up among this scope's own models only (`history.owners`), as
            for a request that acts as one person; None: anyone's (the command line).

    Raises:
        ModelError: the name is unknown (UnknownModel), or its model cannot be had here.
    """
    if not isinstance(model, str):
        spec = model.spec()
    elif model in builtin.MODELS:
        return builtin.choose(model)
    else:
        from classifier.models import own  # the database: only for a model someone added

        spec = own.find(model, scope).spec()
    return Choice(spec.name, spec, WeightsStatus(True, spec.weights_origin, spec.weights_file()))


def names(scope: Scope | None) -> list[str]:
    """Return the names a person may pick: the built-in models, then the own models of a
    scope (`history.owners`; None: none)."""
    if scope is None:
        return list(builtin.MODELS)
    from classifier.models import own  # the database

    return [*builtin.MODELS, *(model.name for model in own.all_models(scope))]


def _key(spec: ModelSpec) -> open_engines.EngineKey:
    settings = get_settings()
    return spec.name, spec.version, settings.cache_dir, settings.num_threads


def load(model: str | Choice | None = None, *, in_child: bool = False) -> LoadedModel:
    """Return the model that answers for a name (or a choice made already), its engine
    opened once per process.

    `in_child`: a built-in network's first-ever export runs in a child process (the
    server's way: it never imports TensorFlow), not in this one after a Keras answer.

    Raises:
        ModelError: neither the model nor the fallback can be loaded (one sentence).
    """
    choice = model if isinstance(model, Choice) else choose(model or get_settings().default_model)
    spec = choice.spec
    try:
        (engine, notice), opened_now = open_engines.opened.get(
            _key(spec), lambda: _open(spec, choice.status.path, in_child)
        )
    except ModelError:
        raise
    except Exception as exc:  # a failed build or download must reach the person as one message
        raise ModelError(f"{spec.title} could not be loaded: {exc}") from exc
    return LoadedModel(
        spec=spec,
        engine=engine,
        requested=choice.requested,
        weights_source=choice.status.source,
        notice=choice.notice,
        cache_notice=notice if opened_now else "",
    )


def _open(spec: ModelSpec, weights_file: Path, in_child: bool) -> tuple[Engine, str]:
    """Open a model's engine by its kind; return it with what to say about the cache."""
    settings = get_settings()
    if spec.kind is Kind.TAUGHT:
        return taught.open_engine(spec), ""
    if spec.kind is Kind.ADDED:
        assert spec.engine_file is not None
        return open_model_file(spec.engine_file, settings.num_threads, softmax=spec.softmax), ""
    return derived.open_builtin(
        spec, weights_file, settings.cache_dir, settings.num_threads, in_child=in_child
    )


def is_loaded(model: str | Choice) -> bool:
    """Tell whether the engine that answers for a name is already open in this process."""
    try:
        spec = model.spec if isinstance(model, Choice) else choose(model).spec
    except ModelError:
        return False
    return _key(spec) in open_engines.opened


def cached_engine_path(name: str, cache_dir: Path | None = None) -> Path | None:
    """Return a built-in model's cached engine file if it exists for its current weights."""
    return derived.cached_engine_path(builtin.get_spec(name), cache_dir)


def opens_quietly(name: str) -> bool:
    """Tell whether a built-in model's engine would open now with nothing to say: LiteRT
    here, the configured cache folder writable and a sound engine file in it. Not a
    first-ever export, a repair or another folder, whose notices a visitor must see."""
    from classifier.runtime import cache
    from classifier.runtime.engines import litert_available

    if name not in builtin.MODELS or not litert_available():
        return False
    configured = get_settings().cache_dir
    if cache.folders() != [configured]:  # unwritable: a temporary folder replaces it
        return False
    path = cached_engine_path(name, configured)
    return path is not None and cache.verify_engine_file(path) is None


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


def download_path(name: str, scope: Scope | None = None) -> Path:
    """Return where this server keeps a taught model's download (made by `download`).

    Args:
        scope: Look the name up among this scope's own models only, as `choose`; None:
            anyone's (the command line).

    Raises:
        ModelError: no taught model has this name (in the scope).
    """
    from classifier.models import own  # the database

    model = own.find(name, scope)
    if not model.taught:
        raise ModelError(f"“{name}” is an added model, not a taught one.")
    return own.teachable_machine_zip_path(model.entry)


def download(name: str, scope: Scope | None = None) -> bytes:
    """Return a taught model as Teachable Machine's LiteRT export: base and head fused in
    `model_unquant.tflite` (input scaled to [-1, 1], output probabilities) + `labels.txt`.

    Made once per model by a child process (TensorFlow), then kept in the data folder.
    `scope`: as `download_path`'s.

    Raises:
        ModelError: the model is not a taught one, its base cannot be had here, or the
            export failed (DerivedFileFailed).
    """
    from classifier.models import own  # the database

    model = own.find(name, scope)
    if not model.taught or model.base is None:
        raise ModelError(f"“{name}” is an added model, not a taught one.")
    builtin.base_here(model.base)  # its base's weights are here, or one sentence
    path = own.teachable_machine_zip_path(model.entry)
    if not path.is_file():
        head = own.materialize(model.entry)
        partial = files.temporary_path(path)
        try:
            derived.fuse(model.base, head, partial)
            data = partial.read_bytes()
        except DerivedFileFailed as exc:
            raise DerivedFileFailed(f"The download could not be made: {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
        files.write_atomically(path, data)
    return path.read_bytes()
