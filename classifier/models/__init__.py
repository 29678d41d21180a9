"""Models: the one door for everything about a model, whatever its kind.

    from classifier import models

    models.names(scope)                  # what a person may pick
    choice = models.choose(name)         # who answers (the one fallback policy)
    loaded = models.load(choice)         # its engine, opened once per process
    candidate = models.read_model(data, labels)   # a file someone adds, checked
    models.save(name, candidate, scaling, scope)  # kept: in the picker, CLI and history
    models.remove(name, scope)
    models.download(name)                # a taught model as Teachable Machine's zip

Rooms, each with one concern:
- `spec`: what a model is (`ModelSpec` with its `kind`), `Choice`, `LoadedModel`.
- `builtin`: the app's networks, their ImageNet weights and the fallback policy.
- `upload`: reading a file someone adds (formats, zips, labels, scaling) and its check.
- `own`: added and taught models kept in the database, their files copied here.
- `taught`: a taught model at run time (features, then its head).
- `derived`: every file made from a model once per server (engine, features, maps,
  the fused download), each by a child process.
- `catalog`: every model by name, its engine opened once (`open_engines`).
- `convert`: the child process's entry point.
- `errors`: the `ModelError` family.

Engines, the engine cache and child processes are `classifier.runtime`'s, which knows
no kinds of model.
"""

from __future__ import annotations

from classifier.models.builtin import (
    FALLBACK_MODEL,
    MODELS,
    default_model,
    get_spec,
    runnable_default,
    title_of,
    weights_status,
)
from classifier.models.catalog import (
    Latency,
    cached_engine_path,
    choose,
    download,
    download_path,
    forget,
    is_loaded,
    load,
    measure_latency,
    names,
    opens_quietly,
)
from classifier.models.errors import (
    DerivedFileFailed,
    ModelChanged,
    ModelError,
    ModelFileError,
    ModelNameTaken,
    UnknownModel,
)
from classifier.models.spec import (
    Choice,
    Kind,
    LoadedModel,
    ModelSpec,
    OwnDetails,
    WeightsStatus,
)
from classifier.models.upload import CROPS, SCALINGS, WHOLE_PICTURE, Candidate, read_model
from classifier.runtime.cache import abandon_exports, sweep_abandoned, writable_cache_dir
from classifier.runtime.engines import (
    litert_available,
    quiet_native_logs,
    wait_for_exports,
)

# Models people added or taught live in the database: SQLAlchemy is imported only when one
# of these is first used, so a command line classifying with a built-in model stays light.
_OWN = (
    "MAX_NAME_LENGTH",
    "AddedModel",
    "all_models",
    "check_name",
    "check_new_name",
    "could_have_made",
    "drop_orphaned_files",
    "exists",
    "find",
    "keep",
    "remove",
    "save",
)


def __getattr__(name: str):
    if name in _OWN:
        from classifier.models import own

        return getattr(own, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CROPS",
    "FALLBACK_MODEL",
    "MAX_NAME_LENGTH",
    "MODELS",
    "SCALINGS",
    "WHOLE_PICTURE",
    "AddedModel",
    "Candidate",
    "Choice",
    "DerivedFileFailed",
    "Kind",
    "Latency",
    "LoadedModel",
    "ModelChanged",
    "ModelError",
    "ModelFileError",
    "ModelNameTaken",
    "ModelSpec",
    "OwnDetails",
    "UnknownModel",
    "WeightsStatus",
    "abandon_exports",
    "all_models",
    "cached_engine_path",
    "check_name",
    "check_new_name",
    "choose",
    "could_have_made",
    "default_model",
    "download",
    "download_path",
    "drop_orphaned_files",
    "exists",
    "find",
    "forget",
    "get_spec",
    "is_loaded",
    "keep",
    "litert_available",
    "load",
    "measure_latency",
    "names",
    "opens_quietly",
    "quiet_native_logs",
    "read_model",
    "remove",
    "runnable_default",
    "save",
    "sweep_abandoned",
    "title_of",
    "wait_for_exports",
    "weights_status",
    "writable_cache_dir",
]
