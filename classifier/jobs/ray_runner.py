"""A batch of pictures on a Ray cluster: Ray Data `map_batches` over actors, one engine each.

    result = ray_runner.run("efficientnet_lite0", ["holiday/"], address="ray://head:10001",
                            top_k=5, output=Path("answers.parquet"), fmt="parquet",
                            save=False, recursive=True)
    result.classified, result.failed, result.rows

The same job as `pipeline.classify_files`, past one machine. The driver (this process)
loads the model as the command line does, then ships it with the task: the model file's
bytes and what its preprocessing needs (`ShippedModel`, one `ray.put`), never a path on
the driver's disk. Each actor opens one LiteRT engine from those bytes and decodes, crops
and runs its pictures with the library's own code (`images.decode_image`,
`predict.classify_decoded`), so its answers are the in-process run's.

Pictures come from:
- local files, folders (`recursive`) and zips (unpacked safely, `inputs.unpack_zip`): read
  here and shipped through Ray's object store a block at a time, so the workers need not
  see this disk;
- storage URIs (`s3://bucket/photos/`, `gs://...`, any scheme pyarrow reads): listed here,
  read by the workers (`ray.data.read_binary_files`), so every node needs access to it.

The rows come back to the driver: returned in the order of the sources, written whole to
`output` (CSV, JSON or Parquet) and, with `save`, added to the history in chunks as they
arrive. `ray` is an optional extra (`pip install '.[ray]'`), imported only here.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from classifier import files, images
from classifier.config import get_settings
from classifier.errors import ModelError
from classifier.models.spec import Kind, LoadedModel, ModelSpec

if TYPE_CHECKING:
    import pyarrow as pa

ADDRESS_VARIABLE = "CLASSIFIER_RAY_ADDRESS"
FORMATS = ("csv", "json", "parquet")
# The columns of every row, in order: the output's header and the keys of `RayResult.rows`.
ROW_FIELDS = (
    "file",
    "label",
    "index",
    "probability",
    "top_k",  # JSON text: [{"label", "index", "probability"}, ...], best first
    "error",
    "sha256",
    "width",
    "height",
    "image_format",
    "inference_ms",
)
# Pictures shipped from the driver go a block (one object, one actor's batch) at a time.
BLOCK_BYTES = 64 * 1024 * 1024
SAVE_CHUNK = 256  # history rows per transaction
NOT_INSTALLED = "Ray is not installed here: pip install '.[ray]'"
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")  # in Ray's error messages


class RayRunError(Exception):
    """The run cannot go on: one sentence a person can act on."""


@dataclass(frozen=True)
class ShippedModel:
    """A loaded model as the workers get it: picklable, with the engine file's bytes.

    Enough to rebuild the driver's `LoadedModel` (`loaded()`): its spec's input size,
    crop, class names and preprocessing (by name, `_scalings`), and an engine over the
    same LiteRT file (a taught model: its feature extractor, then its head).
    """

    name: str
    title: str
    kind: str  # Kind's value
    requested: str
    weights_source: str
    weights_origin: str
    notice: str
    input_size: int
    crop_fraction: float
    class_names: tuple[str, ...]
    scaling: str  # a key of _scalings()
    softmax: bool
    # The .tflite or .onnx file (a taught model's extractor).
    engine_bytes: bytes = field(repr=False)
    head: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    # The driver's picture limits (`CLASSIFIER_MAX_BYTES`, `_MAX_PIXELS`), not the workers'
    # settings (None: the settings of the process that decodes).
    max_bytes: int | None = None
    max_pixels: int | None = None

    @classmethod
    def ship(cls, loaded: LoadedModel) -> ShippedModel:
        """Describe a loaded model for the workers (reads its engine file once).

        Raises:
            ModelError: it has no LiteRT file here (Keras answers for it), or its
                preprocessing is not one the workers can rebuild.
        """
        spec = loaded.spec
        loaded.engine.wait()  # a first-ever load: its engine file is exported by now
        head = None
        if spec.kind is Kind.TAUGHT:
            head = (np.asarray(loaded.engine.weights), np.asarray(loaded.engine.bias))
        path = _engine_file(loaded)
        if path is None or not path.is_file():
            raise ModelError(
                f"{spec.title} has no LiteRT file on this machine, which Ray's workers need; "
                "classify a photo with it here first."
            )
        names = [key for key, scale in _scalings().items() if scale is spec.preprocess]
        if not names:
            raise ModelError(f"{spec.title}'s preprocessing cannot be sent to Ray's workers.")
        settings = get_settings()
        return cls(
            name=spec.name,
            title=spec.title,
            kind=spec.kind.value,
            requested=loaded.requested,
            weights_source=loaded.weights_source,
            weights_origin=spec.weights_origin,
            notice=loaded.notice,
            input_size=spec.input_size,
            crop_fraction=spec.crop_fraction,
            class_names=tuple(spec.class_names),
            scaling=names[0],
            softmax=spec.softmax,
            engine_bytes=path.read_bytes(),
            head=head,
            max_bytes=settings.max_bytes,
            max_pixels=settings.max_pixels,
        )

    def loaded(self, num_threads: int = 1) -> LoadedModel:
        """Return the model as `predict` runs it, its engine opened from the shipped bytes."""
        from classifier.runtime.engines import open_model_file

        spec = ModelSpec(
            name=self.name,
            title=self.title,
            input_size=self.input_size,
            parameters=None,
            preprocess=_scalings()[self.scaling],
            weights_file=_no_file,
            build=None,
            weights_origin=self.weights_origin,
            class_names=self.class_names,
            crop_fraction=self.crop_fraction,
            softmax=self.softmax,
            kind=Kind(self.kind),
        )
        engine: Any = open_model_file(self.engine_bytes, num_threads, softmax=self.softmax)
        if self.head is not None:
            from classifier.models.taught import HeadEngine

            engine = HeadEngine(engine, *self.head)
        return LoadedModel(spec, engine, self.requested, self.weights_source, self.notice)


def _no_file() -> Path:
    return Path()


def _scalings() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Every preprocessing a model here may have, by a name that travels: the built-in
    networks' functions and an added model's scalings (`upload.SCALINGS`)."""
    from classifier.models import builtin, upload

    found = {f"built-in {s.preprocess.__name__}": s.preprocess for s in builtin.MODELS.values()}
    found.update({name: scaling.scale for name, scaling in upload.SCALINGS.items()})
    return found


def _engine_file(loaded: LoadedModel) -> Path | None:
    """Return the LiteRT file a loaded model runs (a taught model's feature extractor)."""
    from classifier.models import builtin, cached_engine_path, derived
    from classifier.runtime.engines import LiteRTEngine

    spec = loaded.spec
    if isinstance(loaded.engine, LiteRTEngine) and loaded.engine.path is not None:
        return loaded.engine.path
    if spec.kind is Kind.TAUGHT:
        assert spec.base is not None
        return derived.features_path(builtin.get_spec(spec.base))
    if spec.kind is Kind.ADDED:
        return spec.engine_file
    return cached_engine_path(spec.name)


# --- On a worker -------------------------------------------------------------------------


def classify_picture(
    loaded: LoadedModel, data: bytes, top_k: int, shipped: ShippedModel, thumbnail: bool = False
) -> dict:
    """Classify one file's bytes as `pipeline.classify_files` does; return its row (without
    `file`): the top class and the `top_k` best, or the one sentence saying why not; with
    `thumbnail`, also the history's thumbnail (`images.make_thumbnail`)."""
    from classifier import predict

    digest = images.content_digest(data)
    try:
        started = time.perf_counter()
        decoded = images.decode_image(
            data,
            min_side=images.min_side_for(loaded.spec.input_size),
            max_bytes=shipped.max_bytes,
            max_pixels=shipped.max_pixels,
        )
        decode_ms = (time.perf_counter() - started) * 1000
        del data
        prediction = predict.classify_decoded(decoded, decode_ms, loaded)
    except (images.ImageError, ModelError) as exc:
        return _failed(str(exc), digest)
    ranked = prediction.top(top_k)
    return {
        "label": ranked[0].label,
        "index": ranked[0].index,
        "probability": ranked[0].probability,
        "top_k": json.dumps([entry.as_dict() for entry in ranked]),
        "error": None,
        "sha256": digest,
        "width": prediction.width,
        "height": prediction.height,
        "image_format": prediction.image_format,
        "inference_ms": prediction.timings.inference_ms,
        "thumbnail": images.make_thumbnail(prediction.image) if thumbnail else None,
    }


def _failed(error: str, digest: str) -> dict:
    empty = {name: None for name in (*ROW_FIELDS[1:], "thumbnail")}
    return empty | {"error": error, "sha256": digest}


class Classifier:
    """A Ray actor (`map_batches`' callable class): one engine, opened once from the
    shipped model, and each batch's pictures classified in turn.

    A batch has `bytes` and either `file` and `position` (pictures shipped by the driver)
    or `path` (`ray.data.read_binary_files`); the answer has `position` (-1 when not
    given), ROW_FIELDS and `thumbnail` (None unless asked for).
    """

    def __init__(self, shipped: Any, top_k: int, thumbnails: bool) -> None:
        import ray

        from classifier.runtime import engines

        if isinstance(shipped, ray.ObjectRef):  # when Ray Data did not resolve it
            shipped = ray.get(shipped)
        engines.quiet_native_logs()  # LiteRT's start-up lines: not into the driver's log
        self.shipped: ShippedModel = shipped
        self.model = shipped.loaded(num_threads=1)  # one CPU per actor
        self.top_k = top_k
        self.thumbnails = thumbnails

    def __call__(self, batch: pa.Table) -> pa.Table:
        columns = batch.column_names
        data = batch.column("bytes").to_pylist()
        names = batch.column("file" if "file" in columns else "path").to_pylist()
        if "position" in columns:
            positions = batch.column("position").to_pylist()
        else:
            positions = [-1] * len(names)
        rows = []
        for position, name, picture in zip(positions, names, data, strict=True):
            row = classify_picture(self.model, picture, self.top_k, self.shipped, self.thumbnails)
            rows.append({"position": position, "file": name, **row})
        return _table(rows)


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("position", pa.int64()),
            ("file", pa.string()),
            ("label", pa.string()),
            ("index", pa.int64()),
            ("probability", pa.float64()),
            ("top_k", pa.string()),
            ("error", pa.string()),
            ("sha256", pa.string()),
            ("width", pa.int64()),
            ("height", pa.int64()),
            ("image_format", pa.string()),
            ("inference_ms", pa.float64()),
            ("thumbnail", pa.binary()),  # for the history, never in an output
        ]
    )


def _table(rows: list[dict]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=_schema())


# --- On the driver -----------------------------------------------------------------------


@dataclass(frozen=True)
class RayResult:
    """What a run did: one row per picture, in the order of the sources."""

    model: str  # the model that answered (EfficientNet-Lite0 when it answered for another)
    model_title: str
    notice: str  # set when another model answered for the one asked for
    rows: list[dict[str, Any]]  # ROW_FIELDS each; `error` set (and no label) when it failed
    classified: int
    failed: int
    saved: int  # rows added to the history
    missing: int  # folders named that held no pictures
    workers: int  # Ray actors that classified (each with its own engine)
    seconds: float


@dataclass
class _Sources:
    """The pictures the arguments name, each with its position in the run and the name
    it is shown by (`file`): local files, storage URIs' files, and pictures known to have
    failed already (a zip's member too large or damaged)."""

    local: list[tuple[int, str, Path]] = field(default_factory=list)
    storage: list[tuple[Any, list[tuple[int, str, str]]]] = field(default_factory=list)
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # (position, file, error)
    history_names: dict[int, str] = field(default_factory=dict)  # file_name in the history
    missing: int = 0  # folders (or storage folders) that held no pictures
    count: int = 0

    def take(self, history_name: str) -> int:
        """Return the next picture's position."""
        self.history_names[self.count] = history_name
        self.count += 1
        return self.count - 1


def address_from_environment() -> str | None:
    """Return the Ray cluster named by CLASSIFIER_RAY_ADDRESS (None: unset or blank)."""
    return os.environ.get(ADDRESS_VARIABLE, "").strip() or None


def run(
    model: str,
    sources: Sequence[str | Path],
    *,
    address: str | None,
    top_k: int = 5,
    output: Path | None = None,
    fmt: str = "csv",
    save: bool = False,
    recursive: bool = False,
    concurrency: int | None = None,
    batch_size: int = 32,
    num_cpus: int | None = None,
) -> RayResult:
    """Classify every picture the sources name on Ray, one engine per actor.

    Args:
        model: A model's name, as `classifier.models.load` takes it.
        sources: Picture files, folders (their pictures; with `recursive`, their
            subfolders' too), zips (their pictures), and storage URIs (`s3://bucket/dir/`,
            a file or a folder every worker can read).
        address: The Ray cluster (`ray://head:10001`, `head:6379`, `auto`); None starts a
            local Ray on this machine for this call (`num_cpus` CPUs, default all).
        top_k: The best classes kept per picture.
        output: Where to write the rows (whole or not at all), as `fmt`; None: only return
            them.
        fmt: "csv", "json" or "parquet".
        save: Also add each answer to the configured history (source "cli", with its
            thumbnail, made by the workers).
        concurrency: Actors, each one CPU and one engine (default: the cluster's CPUs,
            at most one per batch).
        batch_size: Pictures per batch handed to an actor.

    Raises:
        RayRunError: Ray is not installed, the cluster cannot be reached, a zip or a
            storage URI cannot be read, a setting is wrong (one sentence).
        ModelError: the model cannot be loaded (UnknownModel: no model has that name).
    """
    from classifier import predict

    started = time.monotonic()
    if fmt not in FORMATS:
        raise RayRunError(
            f"Expected the format to be one of {', '.join(FORMATS)}. Received: {fmt!r}"
        )
    if not 1 <= top_k <= predict.MAX_TOP_K:
        raise RayRunError(f"Expected top-k between 1 and {predict.MAX_TOP_K}. Received: {top_k}")
    if batch_size < 1 or (concurrency is not None and concurrency < 1):
        raise RayRunError("Expected a batch size and a concurrency of at least 1.")
    try:
        import ray
        import ray.data  # ray[data]: pyarrow and pandas too
    except ImportError:
        raise RayRunError(NOT_INSTALLED) from None
    from classifier import models

    store = _open_history() if save else None  # a history that cannot be opened: said first
    try:
        loaded = models.load(model, in_child=True)  # never TensorFlow in this process
        shipped = ShippedModel.ship(loaded)
        with tempfile.TemporaryDirectory(prefix="classifier-ray-") as scratch:
            found = _find(sources, recursive, Path(scratch))
            rows, workers, saved = [], 0, 0
            if found.count:
                rows, workers, saved = _on_ray(
                    ray,
                    found,
                    shipped,
                    store,
                    address=address,
                    num_cpus=num_cpus,
                    top_k=top_k,
                    concurrency=concurrency,
                    batch_size=batch_size,
                )
    finally:
        if store is not None:
            store.dispose()
    rows.sort(key=lambda row: row["position"])
    for row in rows:
        del row["position"]
    if output is not None:
        files.write_atomically(output, export(rows, fmt))
    failed = sum(row["error"] is not None for row in rows)
    return RayResult(
        model=shipped.name,
        model_title=shipped.title,
        notice=shipped.notice,
        rows=rows,
        classified=len(rows) - failed,
        failed=failed,
        saved=saved,
        missing=found.missing,
        workers=workers,
        seconds=time.monotonic() - started,
    )


def _on_ray(
    ray: Any,
    found: _Sources,
    shipped: ShippedModel,
    store: Any,
    *,
    address: str | None,
    num_cpus: int | None,
    top_k: int,
    concurrency: int | None,
    batch_size: int,
) -> tuple[list[dict], int, int]:
    """Classify what was found on Ray; return the rows (with `position`), how many actors
    ran and how many rows were saved to `store` (None: none)."""
    rows: list[dict] = []
    workers = saved = 0
    started = _connect(ray, address, num_cpus)
    try:
        with _quiet(ray):
            answers = _classify(
                ray, found, shipped, top_k, concurrency, batch_size, thumbnails=store is not None
            )
            for answered, used in answers:
                workers = max(workers, used)
                if store is not None:  # as they come: what was classified is kept
                    saved += _save(store, shipped.name, answered, found)
                for row in answered:
                    del row["thumbnail"]
                rows += answered
    finally:
        if started:
            ray.shutdown()
    return rows, workers, saved


def _open_history() -> Any:
    """Open the configured history (SettingsError, HistoryError: it cannot be, as the
    command line says them)."""
    from classifier import history

    return history.HistoryStore(get_settings().history_url())


def _is_uri(source: str) -> bool:
    """Tell whether a source names storage (`s3://...`) rather than a path on this disk."""
    scheme, separator, _ = source.partition("://")
    return bool(separator) and scheme.isalnum() and len(scheme) > 1  # not C:// on Windows


def _find(sources: Sequence[str | Path], recursive: bool, scratch: Path) -> _Sources:
    """Expand the sources into pictures, in order: folders into their pictures, zips
    unpacked into `scratch`, storage URIs listed."""
    from classifier import terminal
    from classifier.jobs import inputs

    found = _Sources()
    settings = get_settings()
    for number, source in enumerate(sources):
        text = str(source)
        if _is_uri(text):
            found.storage.append(_listed(text, recursive, found))
            continue
        path = Path(source)
        if path.suffix.lower() == ".zip" and path.is_file():
            folder = scratch / f"zip-{number}"
            try:
                pictures = inputs.unpack_zip(
                    path,
                    folder,
                    max_pictures=settings.batch_max_pictures,
                    max_bytes=settings.batch_max_bytes,
                    max_picture_bytes=settings.max_bytes,
                )
            except inputs.BatchInputError as exc:
                raise RayRunError(f"{path}: {exc}") from None
            for member, picture in enumerate(pictures):
                shown, position = f"{path}/{picture.name}", found.take(picture.name)
                if picture.error is not None:  # too large, or damaged in the zip
                    found.failed.append((position, shown, picture.error))
                else:
                    found.local.append((position, shown, inputs.file_for(folder, member)))
            continue
        pictures, missing = terminal.find_pictures([text], recursive)
        found.missing += missing
        for picture in pictures:
            found.local.append((found.take(picture.name), str(picture), picture))
    return found


def _listed(uri: str, recursive: bool, found: _Sources) -> tuple[Any, list[tuple[int, str, str]]]:
    """List a storage URI's pictures (a file: itself) here, for the workers to read."""
    import pyarrow.fs as pafs

    from classifier.jobs import inputs

    try:
        filesystem, root = pafs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            raise RayRunError(f"{uri}: not found.")
        if info.type == pafs.FileType.File:
            paths = [root]
        else:
            selector = pafs.FileSelector(root, recursive=recursive)
            paths = sorted(
                entry.path
                for entry in filesystem.get_file_info(selector)
                if entry.type == pafs.FileType.File
                and inputs.is_picture_name(entry.path[len(root) :])
            )
    except (OSError, ValueError) as exc:  # pyarrow's errors are OSError (and ArrowInvalid)
        raise RayRunError(f"{uri} cannot be read: {' '.join(str(exc).split())}") from None
    if not paths:
        hint = "" if recursive else " (add --recursive to search its folders)"
        print(f"{uri}: no pictures here{hint}", file=sys.stderr)
        found.missing += 1
    listed = []
    base = uri.rstrip("/")
    for path in paths:
        shown = uri if path == root else f"{base}/{quote(path[len(root) :].lstrip('/'))}"
        listed.append((found.take(path.rpartition("/")[2]), shown, path))
    return filesystem, listed


@contextlib.contextmanager
def _quiet(ray: Any) -> Iterator[None]:
    """Keep Ray Data's progress bars and progress lines off the terminal for this call."""
    context = ray.data.DataContext.get_current()
    names = ("enable_progress_bars", "print_on_execution_start", "enable_auto_log_stats")
    saved = {name: getattr(context, name) for name in names}
    logger = logging.getLogger("ray.data")
    level = logger.level
    for name in names:
        setattr(context, name, False)
    logger.setLevel(logging.ERROR)  # failures still reach the caller, as exceptions
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(context, name, value)
        logger.setLevel(level)


def _connect(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Join the cluster at `address`, or start a local Ray; return whether this call
    started it (then it shuts it down). A Ray already running in this process is used."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:  # "local": never a cluster that RAY_ADDRESS names
        ray.init(
            address="local",
            num_cpus=num_cpus or os.cpu_count() or 1,
            include_dashboard=False,
            **quiet,
        )
        return True
    import classifier

    try:
        # The library's code travels with the job, so the workers run this very version.
        ray.init(
            address=address,
            runtime_env={"py_modules": [classifier], "excludes": ["__pycache__/"]},
            **quiet,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayRunError(
            f"The Ray cluster at {address} cannot be reached: {' '.join(str(exc).split())}"
        ) from None
    return True


def _classify(
    ray: Any,
    found: _Sources,
    shipped: ShippedModel,
    top_k: int,
    concurrency: int | None,
    batch_size: int,
    *,
    thumbnails: bool,
) -> Iterator[tuple[list[dict], int]]:
    """Yield the rows as the actors give them (with their `position`), a block at a time,
    with how many actors gave them."""
    import ray.data

    model = ray.put(shipped)  # once: every actor of every dataset gets it from the store
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    datasets: list[tuple[Any, int, dict[str, tuple[int, str]] | None]] = []
    if found.failed:
        yield (
            [
                {"position": n, "file": shown, **_failed(error, "")}
                for n, shown, error in found.failed
            ],
            0,
        )
    if found.local:
        refs, unread, count = _ship(ray, found.local, batch_size)
        if unread:
            yield unread, 0
        if refs:
            datasets.append((ray.data.from_arrow_refs(refs), count, None))
    for filesystem, listed in found.storage:
        if listed:
            paths = [path for _, _, path in listed]
            dataset = ray.data.read_binary_files(
                paths,
                filesystem=filesystem,
                include_paths=True,
                override_num_blocks=-(-len(paths) // batch_size),
                num_cpus=0,  # reading waits on storage; the actors may hold every CPU
            )
            datasets.append((dataset, len(paths), {path: (n, shown) for n, shown, path in listed}))
    for dataset, count, by_path in datasets:
        actors = concurrency or cpus
        actors = max(1, min(actors, -(-count // batch_size)))
        answered = dataset.map_batches(
            Classifier,
            fn_constructor_kwargs={"shipped": model, "top_k": top_k, "thumbnails": thumbnails},
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
        )
        tables = iter(answered.iter_batches(batch_size=None, batch_format="pyarrow"))
        while True:
            try:
                table = next(tables)
            except StopIteration:
                break
            except ray.exceptions.RayError as exc:  # a worker died, storage failed, ...
                raise RayRunError(_failure(exc)) from exc
            rows = table.to_pylist()
            if by_path is not None:
                for row in rows:
                    row["position"], row["file"] = by_path.get(row["file"], (-1, row["file"]))
            yield rows, actors


def _failure(exc: Exception) -> str:
    """Say in one line why Ray could not finish (its exceptions carry whole tracebacks)."""
    cause = getattr(exc, "cause", None) or exc
    lines = _COLOURS.sub("", str(cause)).strip().splitlines() or [""]
    return f"The run on Ray failed: {type(cause).__name__}: {lines[0][:300]}".rstrip(": ")


def _ship(
    ray: Any, local: list[tuple[int, str, Path]], per_block: int
) -> tuple[list[Any], list[dict], int]:
    """Read local pictures here and put them in Ray's object store, a block of `per_block`
    pictures (or BLOCK_BYTES) at a time, so that only one block is in this process's memory
    at once, and each is one batch for an actor; return the blocks, the rows of pictures
    that could not be read, and how many were shipped."""
    import pyarrow as pa

    refs: list[Any] = []
    unread: list[dict] = []
    block: dict[str, list] = {"position": [], "file": [], "bytes": []}
    size = shipped = 0

    def put() -> None:
        nonlocal size
        if block["file"]:
            table = pa.table(
                {
                    "position": pa.array(block["position"], pa.int64()),
                    "file": pa.array(block["file"], pa.string()),
                    "bytes": pa.array(block["bytes"], pa.binary()),
                }
            )
            refs.append(ray.put(table))
        for column in block.values():
            column.clear()
        size = 0

    for position, shown, path in local:
        try:
            data = path.read_bytes()
        except OSError as exc:
            error = f"cannot read the file ({exc.strerror or exc})"
            unread.append({"position": position, "file": shown, **_failed(error, "")})
            continue
        block["position"].append(position)
        block["file"].append(shown)
        block["bytes"].append(data)
        size += len(data)
        shipped += 1
        if size >= BLOCK_BYTES or len(block["file"]) >= per_block:
            put()
    put()
    return refs, unread, shipped


def _save(store: Any, model: str, rows: list[dict], found: _Sources) -> int:
    """Add the answered rows to the history, SAVE_CHUNK per transaction; return how many."""
    from classifier import history
    from classifier.labels import TopClass

    records = [
        history.NewRecord(
            file_name=found.history_names.get(row["position"], row["file"]),
            sha256=row["sha256"],
            width=row["width"],
            height=row["height"],
            image_format=row["image_format"],
            model=model,
            top_k=tuple(TopClass.from_dict(entry) for entry in json.loads(row["top_k"])),
            inference_ms=row["inference_ms"],
            thumbnail=row["thumbnail"],
            source="cli",
        )
        for row in rows
        if row["error"] is None
    ]
    for start in range(0, len(records), SAVE_CHUNK):
        store.add_many(records[start : start + SAVE_CHUNK])
    return len(records)


def export(rows: list[dict[str, Any]], fmt: str) -> bytes:
    """Return rows (ROW_FIELDS) as CSV (cells no spreadsheet runs as formulas), JSON (a
    list of objects, `top_k` as a list) or Parquet (`top_k` as JSON text)."""
    if fmt == "json":
        entries = [
            row | {"top_k": json.loads(row["top_k"]) if row["top_k"] else None} for row in rows
        ]
        return json.dumps(entries, indent=2).encode()
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([_schema().field(name) for name in ROW_FIELDS])
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
        return buffer.getvalue()
    from classifier.history.store import safe_csv

    return safe_csv(rows, ROW_FIELDS)
