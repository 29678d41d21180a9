"""The models people added or taught here, kept in the database with their files.

`save` keeps a checked file (`upload.Candidate`) in the database with the model's row
(one transaction), so every server sharing the database has it; each copies it into
`<data dir>/models/<sha256>.tflite` (an ONNX model's: `.onnx`; a taught model's head:
`.npz`) on first use and checks its digest. A model belongs to a scope's owner (nobody's
by default).
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from classifier import files, history
from classifier.config import get_settings
from classifier.history import registry
from classifier.history.owners import EVERYONE, Scope
from classifier.models import builtin, open_engines
from classifier.models.errors import ModelError, ModelFileError, ModelNameTaken, UnknownModel
from classifier.models.spec import Kind, ModelSpec, OwnDetails
from classifier.models.upload import (
    CROPS,
    SCALINGS,
    WHOLE_PICTURE,
    Candidate,
    added_spec,
    scaling,
)

log = logging.getLogger(__name__)
MAX_NAME_LENGTH = 60


def check_name(name: str) -> str:
    """Return a model name tidied up, or raise ModelFileError saying what is wrong with it."""
    name = unicodedata.normalize("NFC", " ".join(name.split()))
    if not name:
        raise ModelFileError("Give the model a name.")
    if len(name) > MAX_NAME_LENGTH:
        raise ModelFileError(f"A model name has at most {MAX_NAME_LENGTH} characters.")
    if not all(ch.isprintable() for ch in name):
        raise ModelFileError("A model name cannot hold control characters.")
    built_in = {n.casefold() for spec in builtin.MODELS.values() for n in (spec.name, spec.title)}
    if name.casefold() in built_in:
        raise ModelFileError(f"“{name}” is the name of a built-in model; pick another name.")
    return name


def check_new_name(name: str, scope: Scope = EVERYONE) -> str:
    """Return a model name tidied up, if it is usable and no model in the scope has it.

    Adding checks this first, before any file is read; keeping checks it again.

    Raises:
        ModelFileError: the name is not usable.
        ModelNameTaken: a model in the scope has it.
    """
    name = check_name(name)
    if exists(name, scope):
        raise ModelNameTaken(f"A model called “{name}” exists already; pick another name.")
    return name


@dataclass(frozen=True)
class AddedModel:
    """A kept model, as the picker, the engine and the history see it."""

    entry: registry.ModelEntry

    @property
    def name(self) -> str:
        return self.entry.name

    @cached_property
    def details(self) -> OwnDetails:
        """What was kept with it, typed: its classes, input, preprocessing or base.

        Raises:
            ModelError: its row lacks what running it needs (one sentence).
        """
        try:
            return OwnDetails.read(self.entry.details)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"The model “{self.name}” cannot be used: what was kept with it is incomplete "
                f"({exc})."
            ) from None

    @property
    def kind(self) -> Kind:
        return OwnDetails.kind_of(self.entry.details)  # also for a row it cannot run

    @property
    def taught(self) -> bool:
        return self.kind is Kind.TAUGHT

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.details.class_names

    @property
    def scaling(self) -> str | None:
        """The preprocessing's name (SCALINGS); None for a taught model, scaled as its base."""
        return self.details.scaling

    @property
    def base(self) -> str | None:
        """The built-in network a taught model stands on; None for an added model."""
        return self.details.base

    @property
    def preprocessing(self) -> str:
        """Say how pixels are scaled, for a person."""
        if self.base is not None:
            return f"as {builtin.title_of(self.base)}"
        scaled = SCALINGS[self.scaling].title if self.scaling in SCALINGS else str(self.scaling)
        if self.details.crop != WHOLE_PICTURE:
            return f"{scaled}; centre crop {self.details.crop:.1%} of the short side"
        return scaled

    @property
    def input_size(self) -> int:
        return self.details.size

    @property
    def quantized(self) -> bool:
        return self.details.quantized

    def path(self) -> Path:
        """Return where this server keeps the model's file (copied there on demand)."""
        return file_path(self.entry)

    def spec(self) -> ModelSpec:
        """Return the spec that runs this model, its file copied from the database if needed."""
        path = materialize(self.entry)
        # The cache key of its answers: the same file re-added with other labels differs.
        version = f"{self.entry.sha256}:{self.entry.created_at.isoformat()}"
        if self.base is not None:
            base = builtin.get_spec(self.base)
            return ModelSpec(
                name=self.name,
                title=self.name,
                input_size=base.input_size,
                parameters=self.details.parameters,
                preprocess=base.preprocess,
                weights_file=lambda: path,
                build=None,
                weights_origin=self.entry.source,  # "Taught from 40 photos on ..."
                class_names=self.class_names,
                crop_fraction=WHOLE_PICTURE,
                engine_file=path,
                version=version,
                base=self.base,
                kind=Kind.TAUGHT,
            )
        return added_spec(self.name, self.details, path, self.entry.source, version)


def models_folder() -> Path:
    return get_settings().data_dir / "models"


def file_path(entry: registry.ModelEntry) -> Path:
    """Return where this server keeps a model's file: LiteRT or ONNX, or a taught model's head."""
    if OwnDetails.kind_of(entry.details) is Kind.TAUGHT:
        suffix = ".npz"
    else:
        suffix = ".onnx" if entry.details.get("format") == "onnx" else ".tflite"
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
        if seen is not None and files.sha256_of_file(path) == entry.sha256:
            _verified[path] = seen
            return path
        data = registry.model_data(store(), entry.name)
        if data is None:
            raise UnknownModel(f"The model “{entry.name}” was removed.")
        if files.sha256_of(data) != entry.sha256:
            raise ModelError(f"The stored file of the model “{entry.name}” is damaged.")
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_atomically(path, data)
        info = path.stat()
        _verified[path] = (info.st_size, info.st_mtime_ns)
    return path


def store() -> history.HistoryStore:
    """Return this process's store for the configured database (the history's)."""
    return history.shared_store(get_settings().history_url())


def close_stores() -> None:
    """Close this process's stores (tests that switch databases)."""
    history.close_shared_stores()


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


def could_have_made(model: AddedModel, record: history.Record) -> bool:
    """Tell whether a kept model may be the one that made a saved prediction of its name:
    it is the prediction's owner's, or was kept before the prediction was made. A model
    someone else gave that name after the first was removed is not; nor, to be safe, one
    retrained since by another person than the prediction's owner."""
    return model.entry.owner == record.owner or model.entry.created_at <= record.created_at


def find(name: str, scope: Scope | None = None) -> AddedModel:
    """Return an added model by name, among a scope's (None: anyone's).

    Raises:
        ModelError: no model, built in or added, has this name in the scope.
    """
    try:  # a name no model can have (see `check_name`) is looked up nowhere
        printable = name.isprintable()
        whose = store().scoped(scope or EVERYONE)
        entry = registry.get_model(whose, name) if printable else None
    except (history.HistoryError, SQLAlchemyError) as exc:
        log.exception("Looking up the added model %r failed", name)
        raise ModelError(
            f"The model “{name}” cannot be loaded: the database of added models cannot be read."
        ) from exc
    if entry is None:
        raise UnknownModel(
            f"Expected one of the models {', '.join(builtin.MODELS)} or an added model. "
            f"Received: {name!r}"
        )
    return AddedModel(entry)


def exists(name: str, scope: Scope = EVERYONE) -> bool:
    """Tell whether an added model in a scope has this name."""
    return name.isprintable() and registry.get_model(store().scoped(scope), name) is not None


def save(
    name: str,
    candidate: Candidate,
    scaling_name: str,
    scope: Scope = EVERYONE,
    crop: float | None = None,
) -> AddedModel:
    """Keep a candidate under a name: its row and file in the database, the file copied here.

    A new model belongs to the scope's owner (nobody by default). `crop`: how much of the picture's
    shorter side it sees (`upload.CROPS`; None: what was detected).

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
    crop = candidate.detected_crop if crop is None else crop
    if crop not in CROPS:
        raise ModelFileError(
            f"Expected the crop to be one of {', '.join(map(str, CROPS))}. Received: {crop!r}"
        )
    details = dict(candidate.details)
    details.update(class_names=list(candidate.class_names), scaling=scaling_name, crop=crop)
    for unkept in ("ok", "crop_hint"):
        details.pop(unkept, None)
    return keep(name, candidate.source, details, candidate.data, scope=scope)


def keep(
    name: str,
    source: str,
    details: dict[str, Any],
    data: bytes,
    replacing: registry.ModelEntry | None = None,
    scope: Scope = EVERYONE,
) -> AddedModel:
    """Write a model's row and file to the database (replacing `replacing`, same name, in the
    same transaction) and copy the file into this server's data folder. A new model belongs
    to the scope's owner, one replaced stays its owner's, and only a model in the scope can
    be replaced.

    Raises:
        ModelNameTaken: another model has this name (and none is being replaced).
        ModelChanged: `replacing` was replaced or removed meanwhile.
        HistoryReadOnlyError: the database cannot be written.
    """
    digest = files.sha256_of(data)
    entry = registry.add_model(
        store().scoped(scope), name, source, digest, details, data, replacing=replacing
    )
    if replacing is not None:
        open_engines.forget(name)
        drop_files(replacing)  # the old file (and its download), unless shared
    try:
        materialize(entry)  # now, so the first answer does not wait for it
    except (OSError, ModelError):  # kept all the same: copied again on first use
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
    open_engines.forget(name)
    drop_files(entry)
    return True


def drop_files(entry: registry.ModelEntry) -> None:
    """Delete a model's files from this server's data folder, unless a kept model is the same
    file (the next server to need them copies them from the database again)."""
    if all(other.sha256 != entry.sha256 for other in registry.list_models(store())):
        file_path(entry).unlink(missing_ok=True)
        teachable_machine_zip_path(entry).unlink(missing_ok=True)
