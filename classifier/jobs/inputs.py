"""A batch job's pictures, written to its folder as numbered files as they come in.

Picture number i of a job lives at `file_for(folder, i)` ("000000", "000001", ...), and the
job keeps its original name (`Picture.name`) to show. Two ways in:

    pictures = unpack_zip(zip_path, folder, max_pictures=..., max_bytes=..., max_picture_bytes=...)

    intake = Intake(folder, max_pictures=..., max_bytes=..., max_picture_bytes=...)
    intake.add("holiday/IMG_0001.jpg", data_or_binary_file)   # once per picture

A picture that cannot be taken (larger than a picture may be, damaged in its zip) keeps its
number, with no file and an `error` sentence that becomes its row's error: the job goes on.
What cannot be taken at all (an unsafe or damaged zip, more pictures or bytes than a job
takes, a full disk) raises BatchInputError, one sentence a person can act on; the caller
then deletes the folder with whatever was written to it.

A zip is read as `classifier.models.upload` reads a model's zip: the size of its index is
checked before Python's zipfile reads it, every member's name, kind and declared sizes are
checked before a byte is written, and sizes are enforced again as the bytes arrive, whatever
the zip declares. Decoding never looks at a name: a name only picks which members are
pictures, and is shown to people (as plain text, without control characters).
"""

from __future__ import annotations

import errno
import lzma
import os
import re
import shutil
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from classifier.images import ACCEPTED_EXTENSIONS, ACCEPTED_FORMATS, size_text

CHUNK_BYTES = 1024 * 1024  # pictures are written a chunk at a time, never held whole
# A zip's index (its central directory) lists every member in about a hundred bytes: this
# leaves room for long names, macOS's __MACOSX twins and folders, and bounds what Python's
# zipfile holds in memory while it reads the index (about 500 bytes a member).
MIN_INDEX_BYTES = 256 * 1024
INDEX_BYTES_PER_PICTURE = 1024
# No picture compresses this well; a member past both is a zip bomb.
MAX_COMPRESSION_RATIO = 200
RATIO_CHECKED_FROM_BYTES = 1024 * 1024

_END_RECORD = b"PK\x05\x06"
_END_RECORD_BYTES = 22
_MAX_COMMENT_BYTES = 0xFFFF
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_BYTES = 20
_LOCAL_HEADER = b"PK\x03\x04"
_READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_METHOD_NAMES = {6: "Implode", 9: "Deflate64", 93: "Zstandard", 95: "XZ", 98: "PPMd"}
_NOT_FILES = {  # member kinds (the Unix mode in a zip's external attributes) that are refused
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFIFO: "a pipe",
    stat.S_IFSOCK: "a socket",
}
# What zipfile (and the decompressors under it) raise on a damaged member.
_DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError)
_DISK_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
DISK_FULL = "The server's disk is full, so these pictures cannot be kept; try again later."
# Folders of pictures that systems add beside people's (Finder's, Synology's thumbnails).
_JUNK_FOLDERS = {"__MACOSX", "@eaDir"}
# Characters that change how the text around them is shown (right-to-left overrides).
_BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
_DRIVE = re.compile(r"^[A-Za-z]:")
_SHOWN_NAME_LENGTH = 80


class BatchInputError(ValueError):
    """One sentence a person can act on; the job is refused before any work."""


@dataclass(frozen=True)
class Picture:
    """One picture of a job, in its place in the job's order."""

    name: str  # the original relative name, e.g. "holiday/IMG_0001.jpg" (POSIX separators)
    # None when written; else why this one is not classified (e.g. over the per-picture
    # size): it becomes an error row, and the job goes on.
    error: str | None = None


def file_for(folder: Path, position: int) -> Path:
    """Return where picture number `position` (0-based) lives: folder / f"{position:06d}"."""
    return folder / f"{position:06d}"


def is_picture_name(name: str) -> bool:
    """Tell whether a name has an accepted picture extension (images.ACCEPTED_EXTENSIONS, any
    case) and is not hidden or system junk: no path part starting with ".", no "__MACOSX"
    (nor Synology's "@eaDir") part. A folder's name is not one, and neither are Thumbs.db,
    desktop.ini or .DS_Store, by their extensions.
    """
    path = name.replace("\\", "/")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts or path.endswith("/"):
        return False
    if any(part.startswith(".") or part in _JUNK_FOLDERS for part in parts):
        return False
    base = parts[-1]
    return "." in base and base.rpartition(".")[2].lower() in ACCEPTED_EXTENSIONS


def unpack_zip(
    source: Path, folder: Path, *, max_pictures: int, max_bytes: int, max_picture_bytes: int
) -> list[Picture]:
    """Write a zip's pictures to `folder`, picture i to `file_for(folder, i)`.

    The whole zip is checked first, and refused before anything is written: not a zip or
    damaged, an index too large for `max_pictures`, ZIP64, a name outside the zip's own
    folder, a symbolic link or device, a password, a compression method that cannot be
    read, a zip bomb, more than `max_pictures` pictures or none, pictures that come to more
    than `max_bytes`, or a disk without room for them. Members that are not pictures
    (`is_picture_name`) and folders are skipped. The pictures are then written in the order
    of their names (sorted; members of the same name keep the zip's order), a chunk at a
    time, sizes enforced as the bytes arrive whatever the zip declares.

    Returns:
        One Picture per picture member, in order. One larger than `max_picture_bytes`, or
        damaged in the zip, has an error and no file.

    Raises:
        BatchInputError: the zip is refused (nothing written), or while writing: the
            pictures came to more than `max_bytes` after all, or the disk is full. Files
            written before then stay: the caller deletes the folder.
    """
    with open(source, "rb") as raw:
        _check_index(raw, max_pictures)
        try:
            archive = zipfile.ZipFile(raw)
            entries = archive.infolist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise BatchInputError(
                f"This zip is damaged and cannot be opened ({_reason(exc)})."
            ) from None
        with archive:
            members = _picture_members(entries, max_pictures)
            declared = sum(
                info.file_size for _, info in members if info.file_size <= max_picture_bytes
            )
            if declared > max_bytes:
                raise BatchInputError(
                    f"This zip's pictures come to {size_text(declared, round_up=True)} "
                    f"unpacked; at most {size_text(max_bytes)} are accepted in one job."
                )
            _check_room(folder, declared)
            folder.mkdir(parents=True, exist_ok=True)
            return _write_members(archive, members, folder, max_bytes, max_picture_bytes)


class Intake:
    """Pictures arriving one at a time (a browser's folder upload, files sent one by one).

    Each is written to `file_for(folder, next position)` at once, so nothing is held in
    memory, and counted against the limits. `add` takes any name the caller chose (see
    `is_picture_name` to pick a folder's pictures): decoding never looks at names.
    """

    def __init__(
        self, folder: Path, *, max_pictures: int, max_bytes: int, max_picture_bytes: int
    ) -> None:
        self.folder = folder
        self.max_pictures = max_pictures
        self.max_bytes = max_bytes
        self.max_picture_bytes = max_picture_bytes
        self._pictures: list[Picture] = []
        self.total_bytes = 0  # of the pictures written

    @property
    def pictures(self) -> list[Picture]:
        """The pictures so far, picture i at `file_for(folder, i)` unless it has an error."""
        return list(self._pictures)

    def add(self, name: str, data: bytes | bytearray | memoryview | BinaryIO) -> Picture:
        """Write one picture (bytes, or a binary file read a chunk at a time).

        Returns:
            The picture as kept: its name without control characters, and an error (then
            nothing written) when it is larger than a picture may be.

        Raises:
            BatchInputError: one picture more than a job takes, more bytes than it takes,
                or a full disk. Nothing of this picture is kept, the earlier ones are: the
                caller deletes the folder.
        """
        if len(self._pictures) >= self.max_pictures:
            raise BatchInputError(
                f"A job takes at most {self.max_pictures:,} pictures; send the rest in another job."
            )
        position = len(self._pictures)
        kept_name = _clean_name(name) or f"picture {position + 1}"
        chunks: Iterable[bytes | memoryview]
        if isinstance(data, bytes | bytearray | memoryview):
            view = memoryview(data).cast("B")
            if view.nbytes > self.max_picture_bytes:
                size = size_text(view.nbytes, round_up=True)
                return self._keep(Picture(kept_name, _too_large(size, self.max_picture_bytes)))
            chunks = (
                view[start : start + CHUNK_BYTES] for start in range(0, view.nbytes, CHUNK_BYTES)
            )
        else:
            chunks = iter(lambda: data.read(CHUNK_BYTES), b"")
        self.folder.mkdir(parents=True, exist_ok=True)
        room = self.max_bytes - self.total_bytes
        try:
            size = _copy(chunks, file_for(self.folder, position), self.max_picture_bytes, room)
        except _PastRoom:
            raise BatchInputError(
                f"These pictures come to more than {size_text(self.max_bytes)}; at most "
                f"{size_text(self.max_bytes)} are accepted in one job."
            ) from None
        if size is None:
            more = f"more than {size_text(self.max_picture_bytes)}"
            return self._keep(Picture(kept_name, _too_large(more, self.max_picture_bytes)))
        self.total_bytes += size
        return self._keep(Picture(kept_name))

    def _keep(self, picture: Picture) -> Picture:
        self._pictures.append(picture)
        return picture


# --- Checking a zip before anything is written ------------------------------------------


def _check_index(raw: BinaryIO, max_pictures: int) -> None:
    """Refuse a file that is no zip, a ZIP64 one, or one whose index is too large to read.

    Checked before Python's zipfile reads the index, on every end record a zip reader may
    take (see `_end_records`), so that no reader's choice escapes the check.
    """
    size = raw.seek(0, os.SEEK_END)
    start = max(0, size - _MAX_COMMENT_BYTES - _END_RECORD_BYTES - _ZIP64_LOCATOR_BYTES)
    raw.seek(start)
    tail = raw.read()
    places = _end_records(tail)
    if not places:
        raw.seek(0)
        if raw.read(4) == _LOCAL_HEADER:
            raise BatchInputError(
                "This zip is incomplete or damaged (its list of files is missing); make or "
                "download it again."
            )
        raise BatchInputError("This file is not a zip; send the pictures in a .zip file.")
    if any(tail[at - 20 : at - 16] == _ZIP64_LOCATOR for at in places if at >= 20):
        raise BatchInputError(
            "This zip uses ZIP64 (made for archives over 4 GB or 65,535 files), which is not "
            "accepted; send the pictures in smaller zips."
        )
    index = max(int.from_bytes(tail[at + 12 : at + 16], "little") for at in places)
    limit = MIN_INDEX_BYTES + INDEX_BYTES_PER_PICTURE * max_pictures
    if index > limit:
        raise BatchInputError(
            f"This zip lists too many files (its index is {size_text(index, round_up=True)}, "
            f"more than {max_pictures:,} pictures need); zip only the pictures."
        )


def _end_records(tail: bytes) -> set[int]:
    """Return where the end records a zip reader may take start in a file's last bytes.

    The last one (as Python 3.11's zipfile takes it, whatever its comment's length), the
    last whose comment reaches the file's end (as stricter readers do), and the one in the
    last 22 bytes (zipfile's first guess).
    """
    places = {tail.rfind(_END_RECORD)}
    if tail[-_END_RECORD_BYTES:].startswith(_END_RECORD):
        places.add(len(tail) - _END_RECORD_BYTES)
    at = len(tail)
    while (at := tail.rfind(_END_RECORD, 0, at)) >= 0:
        comment = int.from_bytes(tail[at + 20 : at + 22], "little")
        if at + _END_RECORD_BYTES + comment == len(tail):
            places.add(at)
            break
    return {at for at in places if 0 <= at <= len(tail) - _END_RECORD_BYTES}


def _picture_members(
    entries: list[zipfile.ZipInfo], max_pictures: int
) -> list[tuple[str, zipfile.ZipInfo]]:
    """Check every member and return the pictures' names and entries, sorted by name.

    Raises:
        BatchInputError: an unsafe member, a password, a compression method that cannot be
            read, a zip bomb, more than `max_pictures` pictures, or none.
    """
    members = []
    for info in entries:
        _check_member(info)
        path = info.filename.replace("\\", "/")
        mode = info.external_attr >> 16
        if path.endswith("/") or stat.S_ISDIR(mode):
            continue
        name = _clean_name(info.filename)
        if not is_picture_name(name):
            continue
        if info.flag_bits & 0x1:
            raise BatchInputError(
                "This zip is protected by a password; zip the pictures again without one."
            )
        if info.compress_type not in _READABLE_METHODS:
            method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
            raise BatchInputError(
                f"This zip is compressed with {method}, which cannot be read here; zip the "
                "pictures again with ordinary (Deflate) compression."
            )
        members.append((name, info))
    if len(members) > max_pictures:
        raise BatchInputError(
            f"This zip holds {len(members):,} pictures; at most {max_pictures:,} are accepted "
            "in one job."
        )
    if not members:
        raise BatchInputError(f"This zip holds no pictures ({', '.join(ACCEPTED_FORMATS)}).")
    members.sort(key=lambda member: member[0])  # stable: same names keep the zip's order
    for name, info in members:
        size = info.file_size
        if size > RATIO_CHECKED_FROM_BYTES and size > MAX_COMPRESSION_RATIO * info.compress_size:
            ratio = size / max(info.compress_size, 1)
            raise BatchInputError(
                f"This zip looks like a zip bomb: {_shown(name)} expands {ratio:,.0f} times, to "
                f"{size_text(size, round_up=True)}, as no picture does; it is refused."
            )
    return members


def _check_member(info: zipfile.ZipInfo) -> None:
    """Refuse a member named outside the zip's own folder, or that is no file or folder."""
    path = info.filename.replace("\\", "/")
    for name in (path, _strip_controls(path)):
        if name.startswith("/") or _DRIVE.match(name) or ".." in name.split("/"):
            raise BatchInputError(
                f"This zip holds a file outside its own folder ({_shown(info.filename)}); "
                "it is refused."
            )
    kind = _NOT_FILES.get(stat.S_IFMT(info.external_attr >> 16))
    if kind is not None:
        raise BatchInputError(
            f"This zip holds {kind} ({_shown(info.filename)}), not a file; zip the pictures "
            "themselves."
        )


def _check_room(folder: Path, needed: int) -> None:
    """Refuse pictures the disk has no room for (as far as can be told now)."""
    place = folder
    while not place.exists() and place != place.parent:
        place = place.parent
    try:
        free = shutil.disk_usage(place).free
    except OSError:
        return
    if needed > free:
        raise BatchInputError(DISK_FULL)


# --- Writing ------------------------------------------------------------------------------


class _PastRoom(Exception):
    """The pictures came to more bytes than the job takes."""


class _Damaged(Exception):
    """A zip member that cannot be read; the message says why."""


def _write_members(
    archive: zipfile.ZipFile,
    members: list[tuple[str, zipfile.ZipInfo]],
    folder: Path,
    max_bytes: int,
    max_picture_bytes: int,
) -> list[Picture]:
    pictures: list[Picture] = []
    total = 0
    for position, (name, info) in enumerate(members):
        if info.file_size > max_picture_bytes:
            size = size_text(info.file_size, round_up=True)
            pictures.append(Picture(name, _too_large(size, max_picture_bytes)))
            continue
        chunks = _member_chunks(archive, info)
        try:
            size = _copy(chunks, file_for(folder, position), max_picture_bytes, max_bytes - total)
        except _Damaged as exc:
            pictures.append(
                Picture(name, f"This picture is damaged in the zip and cannot be read ({exc}).")
            )
            continue
        except _PastRoom:
            raise BatchInputError(
                f"This zip's pictures come to more than {size_text(max_bytes)} unpacked; at "
                f"most {size_text(max_bytes)} are accepted in one job."
            ) from None
        finally:
            chunks.close()  # the member, when its bytes were not all read
        if size is None:  # past what the zip declared
            more = f"more than {size_text(max_picture_bytes)}"
            pictures.append(Picture(name, _too_large(more, max_picture_bytes)))
            continue
        total += size
        pictures.append(Picture(name))
    return pictures


def _member_chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """Yield a member's bytes a chunk at a time; a damaged member raises _Damaged."""
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK_BYTES):
                yield chunk
    except (*_DAMAGED, RuntimeError, NotImplementedError) as exc:
        raise _Damaged(_reason(exc)) from None


def _copy(chunks: Iterable[bytes | memoryview], target: Path, limit: int, room: int) -> int | None:
    """Write chunks to a new file, counting bytes as they arrive.

    Returns:
        The bytes written, or None (and no file) past `limit`, what one picture may be.

    Raises:
        _PastRoom: past `room`, the bytes the job has left (no file then).
        BatchInputError: the disk is full (no file then).
        _Damaged: from the chunks (no file then).
        OSError: the file cannot be made (one already there is left as it was) or written.
    """
    try:
        out = _create(target)
    except OSError as exc:
        _raise_if_disk_full(exc)
        raise
    size = 0
    try:
        with out:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    break
                if size > room:
                    raise _PastRoom
                out.write(chunk)
    except BaseException as exc:
        target.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            _raise_if_disk_full(exc)
        raise
    if size > limit:
        target.unlink(missing_ok=True)
        return None
    return size


def _raise_if_disk_full(exc: OSError) -> None:
    if exc.errno in _DISK_FULL_ERRNOS:
        raise BatchInputError(DISK_FULL) from None


def _create(target: Path) -> BinaryIO:
    """Open a new file for writing (never one that exists: positions are written once)."""
    return open(target, "xb")


# --- Names and sentences ------------------------------------------------------------------


def _clean_name(name: str) -> str:
    """Return a name as it is kept: "/" between parts, no control characters, NFC."""
    text = _strip_controls(unicodedata.normalize("NFC", name.replace("\\", "/")))
    return "/".join(part for part in text.split("/") if part not in ("", "."))


def _strip_controls(text: str) -> str:
    return "".join(
        ch
        for ch in text
        if unicodedata.category(ch) not in ("Cc", "Zl", "Zp") and ch not in _BIDI_CONTROLS
    )


def _shown(name: str) -> str:
    """Quote a member's name in a sentence: plain text, and not too long."""
    text = _strip_controls(name)
    if len(text) > _SHOWN_NAME_LENGTH:
        text = text[: _SHOWN_NAME_LENGTH - 1] + "…"
    return f"“{text}”"


def _too_large(size: str, max_picture_bytes: int) -> str:
    return f"This picture is {size}; a picture up to {size_text(max_picture_bytes)} is accepted."


def _reason(exc: BaseException) -> str:
    """Say why without a server path (an OSError's text may hold one)."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


LABELS_CSV = "labels.csv"  # a labelled set's labels, at the top of its zip
LABELS_CSV_MAX_BYTES = 16 * 1024 * 1024


def labels_csv(path: Path, pictures: list[str]) -> bytes | None:
    """Return the `labels.csv` of a zip `unpack_zip` took: at its top, or at the top of the
    one folder all its pictures are in; None when it has none.

    Raises:
        BatchInputError: it is larger than LABELS_CSV_MAX_BYTES, encrypted or damaged.
    """
    folders = {name.split("/", 1)[0] for name in pictures if "/" in name}
    enclosing = next(iter(folders)) if len(folders) == 1 else None
    if enclosing is not None and not all(name.startswith(f"{enclosing}/") for name in pictures):
        enclosing = None
    wanted = [LABELS_CSV] + ([f"{enclosing}/{LABELS_CSV}"] if enclosing is not None else [])
    too_large = f"The zip's {LABELS_CSV} is larger than 16 MB."
    try:
        with zipfile.ZipFile(path) as archive:
            members = {
                info.filename.replace("\\", "/").lstrip("/"): info
                for info in archive.infolist()
                if not info.is_dir()
            }
            info = next((members[name] for name in wanted if name in members), None)
            if info is None:
                return None
            if info.flag_bits & 0x1:
                raise BatchInputError(
                    f"The zip's {LABELS_CSV} is protected by a password; zip it again without one."
                )
            if info.file_size > LABELS_CSV_MAX_BYTES:
                raise BatchInputError(too_large)
            with archive.open(info) as member:
                data = member.read(LABELS_CSV_MAX_BYTES + 1)  # never more, whatever it says
    except (*_DAMAGED, NotImplementedError):
        raise BatchInputError(
            f"The zip's {LABELS_CSV} is damaged or compressed in a way that cannot be read; "
            "zip it again."
        ) from None
    if len(data) > LABELS_CSV_MAX_BYTES:
        raise BatchInputError(too_large)
    return data
