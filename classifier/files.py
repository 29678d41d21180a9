"""Files written whole or not at all, their digests, and the temporary names they go by.

Everything the app writes that another process may read (engine files and their
checksums, kept models, exports, cached vectors) goes through `write_atomically` or a
`temporary_path` moved into place, so readers never see half a file. Every temporary
name has one shape, `.<name>.<pid>.<random>.<suffix>` (an export's private folder too),
so `remove_stale_files` knows them all: those of a process that is gone, or over an hour
old.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import stat
import time
from pathlib import Path

STALE_AFTER_SECONDS = 3600  # a temporary file this old is left over, whoever wrote it
# `.<name>.<pid>.<8 hex digits>.tmp|tflite`; also the earlier releases' `.<name>.<pid>.<thread
# id>.tmp|tflite|partial`, which an upgraded server may find left over.
_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)\.(?:[0-9a-f]{8}|\d+)\.(?:tmp|tflite|partial)$")
log = logging.getLogger(__name__)


def sha256_of_file(path: Path) -> str:
    """Return the hex sha256 of a file's content, read in chunks."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def sha256_of(data: bytes) -> str:
    """Return the hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def temporary_path(path: Path, suffix: str = ".tmp") -> Path:
    """Return a new hidden name beside `path` for a file to be moved there once written.

    `suffix` is ".tmp", or ".tflite" for a writer that needs the real extension.
    """
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def remove_stale_files(folder: Path) -> list[Path]:
    """Delete the temporary files (and an export's private folders) that killed or crashed
    writers left in a folder.

    One is stale when the process named in it is not running, or when it is over an hour
    old. Returns what was deleted.
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:  # no folder (yet), or not one
        return []
    now, removed = time.time(), []
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                continue
            fresh = now - info.st_mtime < STALE_AFTER_SECONDS
            if fresh and process_running(int(match["pid"])):
                continue
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:  # removed meanwhile, or a folder we may not write to
            continue
        removed.append(Path(entry.path))
    if removed:
        log.info("Removed %d stale temporary file(s) from %s", len(removed), folder)
    return removed


def process_running(pid: int) -> bool:
    """Tell whether a process of this machine is running (True where that cannot be told)."""
    if os.name != "posix":  # no cheap, harmless check: only the age counts
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # running, as another user
        return True
    except (OSError, OverflowError):
        return False
    return True


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` completely or not at all.

    The bytes go to a temporary file in the same folder, which then replaces
    `path` in one step (os.replace). On a full disk, a failure or an interrupt,
    `path` keeps its old content (or stays absent) and the temporary file is
    removed. A new file gets the usual permissions (0o666 less the umask), a
    replaced one keeps its own. Something that is not a regular file (a terminal,
    a pipe, /dev/stdout) is written to directly.

    Raises:
        OSError: If the file cannot be written; `path` is then unchanged.
    """
    target = Path(os.path.realpath(path))  # a symbolic link keeps pointing at the new file
    if target.exists() and not target.is_file():
        with open(target, "wb") as stream:
            stream.write(data)
        return
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    descriptor, temporary = _create_temporary(target)
    try:
        try:
            _write_all(descriptor, data)
            os.fsync(descriptor)  # the data is on disk before the name points at it
        finally:
            os.close(descriptor)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _create_temporary(target: Path) -> tuple[int, Path]:
    """Create a new, empty hidden file beside `target`; return its descriptor and path."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = temporary_path(target)
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:  # another writer's; pick another name
            continue


def _write_all(descriptor: int, data: bytes) -> None:
    """Write every byte: os.write may write fewer than it is given."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]
