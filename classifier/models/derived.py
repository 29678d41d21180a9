"""Files made from a model, once per server: what runs it, and what explains it.

- a built-in network's engine file (`open_builtin`): exported by a child process (the
  server's way, `in_child`) or by a thread of this process after a first Keras answer;
- a built-in network's feature extractor (`extractor`), which taught models and
  teaching stand on;
- a built-in network's map model and its head (`map_files`), for "Where it looked";
- a taught model fused into one LiteRT file in Teachable Machine's layout (`fuse`).

Each file but the first is made by `python -m classifier.models.convert` in a child
process (the server never imports TensorFlow), in the engine cache folder, and opened
once per process. A failed export is not tried again for RETRY_AFTER_SECONDS.
"""

from __future__ import annotations

import time
from pathlib import Path

from classifier.config import get_settings
from classifier.models.errors import DerivedFileFailed
from classifier.models.spec import ModelSpec
from classifier.runtime import cache
from classifier.runtime.child import ChildFailed, ChildLimits, run_child
from classifier.runtime.engines import (
    Engine,
    ExportingEngine,
    KerasEngine,
    LiteRTEngine,
    litert_available,
    open_cached,
)
from classifier.runtime.opened import OpenOnce

CONVERT_MODULE = "classifier.models.convert"
CONVERT_TIMEOUT_SECONDS = 600
# Checking a file someone added: LiteRT alone takes ~40 MB, and TensorFlow, imported only
# to convert a Keras file that passed its checks, ~700 MB.
INSPECT_LIMITS = ChildLimits(memory_mb=512, cpu_seconds=60, wall_seconds=120)
CONVERT_LIMITS = ChildLimits(memory_mb=2048, cpu_seconds=300, wall_seconds=CONVERT_TIMEOUT_SECONDS)
# Exports of the app's own networks (feature extractors, map models, fused models).
BUILD_LIMITS = ChildLimits(memory_mb=4096, cpu_seconds=1800, wall_seconds=CONVERT_TIMEOUT_SECONDS)
# An ONNX file is parsed, checked and opened from memory: up to about five times its size.
INSPECT_ONNX_LIMITS = ChildLimits(memory_mb=1024, cpu_seconds=60, wall_seconds=120)
_LIMITS = {
    "inspect": INSPECT_LIMITS,
    "inspect-onnx": INSPECT_ONNX_LIMITS,
    "convert": CONVERT_LIMITS,
}
_LIGHT = (INSPECT_LIMITS, INSPECT_ONNX_LIMITS)
FEATURES_FORMAT = 1  # part of the feature file's and the vector cache's names
MAPS_FORMAT = 1  # part of the map model's file name
RETRY_AFTER_SECONDS = 300  # a failed export is not tried again sooner


def run_convert(*arguments: str) -> dict:
    """Run `classifier.models.convert ARGUMENTS` in a child process within its limits.

    Raises:
        ChildFailed: the child refused the file, failed, or went past a limit.
    """
    limits = _LIMITS.get(arguments[0], BUILD_LIMITS)
    return run_child(CONVERT_MODULE, list(arguments), limits, light=limits in _LIGHT)


# --- Exported once, opened once ---------------------------------------------------------

_exported: OpenOnce[LiteRTEngine] = OpenOnce()
_export_failures: dict[Path, tuple[float, str]] = {}


def is_open(path: Path) -> bool:
    """Tell whether `open_exported` has opened this file in this process."""
    return path in _exported


def open_exported(path: Path, *arguments: str) -> LiteRTEngine:
    """Return the engine of a file a child process exports (`convert ARGUMENTS PATH`):
    exported once if the file is missing or damaged, opened once per process.

    One export per file at a time (others asking wait for it, not for other files); a
    failure is remembered for RETRY_AFTER_SECONDS, so repeated requests do not each start
    a TensorFlow child.

    Raises:
        DerivedFileFailed: the export failed (one sentence).
    """

    def export_and_open() -> LiteRTEngine:
        _export_once(path, arguments)
        return LiteRTEngine(path, get_settings().num_threads)

    return _exported.get(path, export_and_open)[0]


def _export_once(path: Path, arguments: tuple[str, ...]) -> None:
    """Run the child unless `path` holds a verified file (the caller holds the file's lock)."""
    if cache.verify_engine_file(path) is None:
        return
    failed = _export_failures.get(path)
    if failed is not None and time.monotonic() - failed[0] < RETRY_AFTER_SECONDS:
        raise DerivedFileFailed(failed[1])
    try:
        run_convert(*arguments, str(path))
        problem = cache.verify_engine_file(path)
        if problem is not None:
            raise DerivedFileFailed(f"The file made for it cannot be used: {problem}.")
    except (ChildFailed, DerivedFileFailed) as exc:
        _export_failures[path] = (time.monotonic(), str(exc))
        raise DerivedFileFailed(str(exc)) from None
    _export_failures.pop(path, None)


def _derived_path(spec: ModelSpec, what: str, tag: str) -> Path:
    """Return where this server keeps a file made from a built-in network's weights
    (`<network>-<tag>-<key>.tflite` in the engine cache folder).

    Raises:
        DerivedFileFailed: the weights are not here, or no engine folder can be written.
    """
    if not spec.weights_file().is_file():
        raise DerivedFileFailed(f"{spec.title}'s ImageNet weights are not on this server.")
    folder = cache.writable_cache_dir()
    if folder is None:
        raise DerivedFileFailed(f"No folder for the {what} can be written on this server.")
    return cache.engine_path(f"{spec.name}-{tag}", spec.weights_file(), folder)


def _ready(path_of, spec: ModelSpec) -> bool:
    """Tell whether a derived file is open or on disk (no export would be needed)."""
    try:
        path = path_of(spec)
    except DerivedFileFailed:
        return True  # nothing to wait for: using it will say why it cannot be
    return is_open(path) or path.is_file()


# --- A built-in network's engine --------------------------------------------------------


def cached_engine_path(spec: ModelSpec, cache_dir: Path | None = None) -> Path | None:
    """Return a built-in model's cached .tflite if it exists for its current weights.

    Without `cache_dir`, the configured cache folder, or the per-user temporary folder
    that replaces it when it cannot be written.
    """
    weights_file = spec.weights_file()
    if not weights_file.is_file():
        return None
    for folder in [cache_dir] if cache_dir is not None else cache.folders():
        path = cache.engine_path(spec.name, weights_file, folder)
        if path.is_file():
            return path
    return None


def open_builtin(
    spec: ModelSpec, weights_file: Path, cache_dir: Path, threads: int, *, in_child: bool
) -> tuple[Engine, str]:
    """Open a built-in network's engine; return it with what the person should hear about
    the cache.

    `in_child` (the server's way): a missing engine file is exported by a child process
    (which imports TensorFlow, ~700 MB at its peak) and the first answer waits for it.
    Otherwise (the command line's way), the first answer comes from Keras in this process
    at once and the export follows in a thread.
    """
    if not litert_available():
        return KerasEngine(spec.build("imagenet")), ""
    notices: list[str] = []
    if weights_file.is_file():
        path = cache.engine_path(spec.name, weights_file, cache_dir)
        engine = open_cached(spec.title, path, threads, notices)
        if engine is not None:
            return engine, ""
        folder = cache.export_folder(cache_dir, notices)
        if folder is not None and folder != cache_dir:
            path = cache.engine_path(spec.name, weights_file, folder)
            engine = open_cached(spec.title, path, threads, notices)
            if engine is not None:
                return engine, " ".join(notices)
        if folder is not None and in_child:
            path = cache.engine_path(spec.name, weights_file, folder)
            try:
                return open_exported(path, "classifier", spec.name), " ".join(notices)
            except DerivedFileFailed as exc:
                raise DerivedFileFailed(
                    f"{spec.title} could not be prepared on this server: {exc}"
                ) from exc
        model = spec.build("imagenet")
    else:
        model = spec.build("imagenet")  # Keras models download their weights here if needed
        if not weights_file.is_file():
            # Keras cached the weights under a name this code does not know (so there
            # is no key for an engine file): a compiled Keras model answers.
            return KerasEngine(model), ""
        folder = cache.export_folder(cache_dir, notices)
    if folder is None:
        return KerasEngine(model), " ".join(notices)
    path = cache.engine_path(spec.name, weights_file, folder)
    return ExportingEngine(model, path, threads, spec.title), " ".join(notices)


# --- A built-in network's feature extractor ---------------------------------------------


def features_path(spec: ModelSpec) -> Path:
    """Return where this server keeps a built-in network's feature extractor.

    Raises:
        DerivedFileFailed: its weights are not here, or no engine folder can be written.
    """
    return _derived_path(spec, "feature extractor", f"features{FEATURES_FORMAT}")


def extractor(spec: ModelSpec) -> LiteRTEngine:
    """Return a built-in network's feature extractor, exported once if needed.

    Raises:
        DerivedFileFailed: it cannot be made here (one sentence).
    """
    return open_exported(features_path(spec), "features", spec.name)


def extractor_ready(spec: ModelSpec) -> bool:
    """Tell whether a feature extractor is open or on disk (no export would be needed)."""
    return _ready(features_path, spec)


# --- A built-in network's map model -----------------------------------------------------


def map_model_path(spec: ModelSpec) -> Path:
    """Return where this server keeps a built-in network's map model (LiteRT).

    Raises:
        DerivedFileFailed: its weights are not here, or no engine folder can be written.
    """
    return _derived_path(spec, "map models", f"maps{MAPS_FORMAT}")


def map_head_path(model_path: Path) -> Path:
    """Return the file beside a map model holding its network's linear layer (NumPy)."""
    return model_path.with_name(f"{model_path.stem}-head.npz")


def open_map_model(spec: ModelSpec) -> tuple[LiteRTEngine, Path]:
    """Return a network's map model and the file of its head, exported once if needed.

    Raises:
        DerivedFileFailed: it cannot be made here (one sentence).
    """
    path = map_model_path(spec)
    if not is_open(path) and not map_head_path(path).is_file():
        cache.checksum_path(path).unlink(missing_ok=True)  # exported again, head first
    return open_exported(path, "maps", spec.name), map_head_path(path)


def map_model_ready(spec: ModelSpec) -> bool:
    """Tell whether a map model is open or on disk (no export would be needed)."""
    return _ready(map_model_path, spec)


# --- A taught model, fused --------------------------------------------------------------


def fuse(base: str, head: Path, output: Path) -> None:
    """Write a taught model (a base network's name and its head's file) as Teachable
    Machine's LiteRT export, a zip, to `output` (made in a child process).

    Raises:
        DerivedFileFailed: the child failed (one sentence).
    """
    try:
        run_convert("fuse", base, str(head), str(output))
    except ChildFailed as exc:
        raise DerivedFileFailed(str(exc)) from None
