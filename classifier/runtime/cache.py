"""The engine cache: LiteRT files exported once per machine, checked on every open.

A file's name carries a key of what it was made from (`engine_path`: a name, the
weights file's name, size and modification time, ENGINE_FORMAT), so new weights make a
new file. Each export records the file's size and sha256 beside it (`<stem>.json`,
written before the file is moved into place), and every open checks them first: a file
that is damaged, has no record, or that LiteRT cannot open is moved aside to
`<name>.corrupt` (`engines.open_cached` returns None, and the caller exports anew). A cache
folder that cannot be written is replaced by a per-user temporary folder, told once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

from classifier import files
from classifier.config import APP_NAME, get_settings

ENGINE_FORMAT = 1
NO_CHECKSUM = "there is no checksum file beside it"
log = logging.getLogger(__name__)
_replaced_folders: set[Path] = set()  # cache folders already said to be unwritable


def engine_path(name: str, weights_file: Path, cache_dir: Path) -> Path:
    """Return the cache file of a model exported from one weights file."""
    stat = weights_file.stat()
    identity = f"{name}|{weights_file.name}|{stat.st_size}|{stat.st_mtime_ns}|{ENGINE_FORMAT}"
    return cache_dir / f"{name}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.tflite"


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
        if files.sha256_of_file(path) != digest:
            return "its sha256 does not match the one recorded when it was exported"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    return None


class ExportAbandoned(Exception):
    """An export whose private folder was deleted by `abandon_exports`."""


# Exports under way in this process: their private folder -> the model's title.
_running: dict[Path, str] = {}
_running_lock = threading.Lock()


def export_litert(model, path: Path, title: str = "") -> Path:
    """Export a Keras model to a .tflite file with its checksum file.

    The file is written in a private folder beside `path` (a temporary name, so the
    clean-up of stale files knows it) and moved into place, so readers never see half a
    file; its checksum file is in place first, so a file without one is never the result
    of a finished export. `abandon_exports` deletes the folder whole: a write that comes
    later finds no folder to write into, so nothing of the export is left behind.

    Raises:
        ExportAbandoned: `abandon_exports` was called while this export ran.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    workspace = files.temporary_path(path)
    workspace.mkdir(mode=0o700)
    partial = workspace / path.name
    with _running_lock:
        _running[workspace] = title or path.name
    try:
        try:
            model.export(str(partial), format="litert", verbose=False)
            size, digest = partial.stat().st_size, files.sha256_of_file(partial)
        except OSError:
            if workspace.exists():
                raise
            raise ExportAbandoned(f"the export of {path.name} was abandoned") from None
        with _running_lock:  # abandoned, or moved into place: never half of each
            if _running.pop(workspace, None) is None:
                raise ExportAbandoned(f"the export of {path.name} was abandoned")
            files.write_atomically(checksum_path(path), _checksum_record(path, size, digest))
            os.replace(partial, path)
    finally:
        with _running_lock:
            _running.pop(workspace, None)
        shutil.rmtree(workspace, ignore_errors=True)
    return path


def abandon_exports() -> list[str]:
    """Delete the private folders of the exports under way; return their models' titles.

    For a process that exits at once instead of waiting for them (the command line
    on Ctrl-C): nothing they wrote stays behind, and the next start exports again.
    """
    with _running_lock:
        running = dict(_running)
        _running.clear()
        _abandoned.extend(running)
    for workspace in running:
        shutil.rmtree(workspace, ignore_errors=True)
    return list(dict.fromkeys(running.values()))


_abandoned: list[Path] = []


def sweep_abandoned() -> None:
    """Delete the abandoned exports' folders again, right before the process exits (an
    export that was creating its folder's file at that moment may have left one)."""
    with _running_lock:
        abandoned = list(_abandoned)
    for workspace in abandoned:
        shutil.rmtree(workspace, ignore_errors=True)


def folders() -> list[Path]:
    """Return where engine files may be: the configured cache folder, and the per-user
    temporary folder that replaces it when it cannot be written."""
    configured = get_settings().cache_dir
    return [configured] if _looks_writable(configured) else [configured, fallback_cache_dir()]


def fallback_cache_dir() -> Path:
    """Return the per-user temporary folder used when the cache folder cannot be written."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"{APP_NAME}-{user}"


def _checksum_record(path: Path, size: int, digest: str) -> bytes:
    record = {"file": path.name, "size": size, "sha256": digest, "engine_format": ENGINE_FORMAT}
    return json.dumps(record, indent=2).encode() + b"\n"


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


def writable_cache_dir() -> Path | None:
    """Return the folder new engine files go to: the cache folder, or the private temporary
    folder that replaces it when it cannot be written; None when neither can be."""
    return export_folder(get_settings().cache_dir, [])


def export_folder(cache_dir: Path, notices: list[str]) -> Path | None:
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
