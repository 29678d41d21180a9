"""Writing an export to a file all at once, so a failure never leaves half a file behind."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


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
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
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
