"""A batch job's pictures written to its folder: zips checked whole before anything is
written, pictures taken one at a time, and the limits on both.

Every zip is built here with Python's zipfile, its pictures real JPEG and PNG bytes made
by Pillow; the unsafe ones are crafted (or patched byte by byte) as an attacker would.
"""

from __future__ import annotations

import errno
import io
import os
import struct
import warnings
import zipfile
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from classifier.images import size_text
from classifier.jobs import inputs
from classifier.jobs.inputs import BatchInputError, Intake, Picture, file_for, is_picture_name
from tests.helpers import encode

MB = 1_000_000  # as sizes are said (images.size_text)
LIMITS = {"max_pictures": 100, "max_bytes": 50 * MB, "max_picture_bytes": 20 * MB}


def picture(fmt: str = "JPEG", side: int = 48, seed: int = 0) -> bytes:
    """Real picture bytes: noise, so that each seed gives other bytes and PNGs stay large."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(pixels, fmt)


def make_zip(
    path: Path,
    members: list[tuple[str | zipfile.ZipInfo, bytes]],
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name", on purpose
        with zipfile.ZipFile(path, "w", compression) as archive:
            for name, data in members:
                archive.writestr(name, data, compress_type=compression)
    return path


def central_entry(data: bytes, name: str) -> int:
    """Return where a member's central directory entry starts in a zip's bytes."""
    at = 0
    while (at := data.find(b"PK\x01\x02", at + 1)) >= 0:
        length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + length] == name.encode():
            return at
    raise AssertionError(f"no central directory entry for {name}")


def patched(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value) :]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The job's folder, made before the pictures come (as NewJob makes it)."""
    made = tmp_path / "job"
    made.mkdir()
    return made


def held(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def refused(source: Path, folder: Path, **limits: int) -> str:
    """Unpack a zip that must be refused whole; return the sentence, after checking that
    nothing was written."""
    with pytest.raises(BatchInputError) as caught:
        inputs.unpack_zip(source, folder, **(LIMITS | limits))
    assert held(folder) == []
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    assert str(source.parent) not in message  # no server path
    return message


# --- Names -------------------------------------------------------------------------------


def test_file_for_numbers_pictures_in_six_digits(tmp_path):
    assert file_for(tmp_path, 0) == tmp_path / "000000"
    assert file_for(tmp_path, 42) == tmp_path / "000042"
    assert file_for(tmp_path, 123_456) == tmp_path / "123456"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("IMG_0001.jpg", True),
        ("holiday/IMG_0001.JPG", True),
        ("a/b/c/photo.Jpeg", True),
        ("scan.tiff", True),
        ("phone/IMG_1.HEIC", True),
        ("windows\\folder\\photo.png", True),
        ("notes.txt", False),
        ("photo.jpg.zip", False),
        ("jpg", False),
        ("photos.jpg/", False),  # a folder
        (".DS_Store", False),
        ("holiday/.hidden.jpg", False),
        ("._IMG_0001.jpg", False),
        ("__MACOSX/holiday/._IMG_0001.jpg", False),
        (".thumbnails/IMG_0001.jpg", False),
        ("@eaDir/IMG_0001.jpg/SYNOPHOTO_THUMB_XL.jpg", False),
        ("Thumbs.db", False),
        ("holiday/desktop.ini", False),
        ("", False),
    ],
)
def test_is_picture_name(name, expected):
    assert is_picture_name(name) is expected


# --- Zips that unpack --------------------------------------------------------------------


def test_a_zip_of_nested_folders_unpacks_its_pictures_in_name_order(tmp_path, folder):
    pictures = {
        "holiday/IMG_0002.JPG": picture("JPEG", seed=2),
        "holiday/IMG_0001.jpg": picture("JPEG", seed=1),
        "b/c/x.png": picture("PNG", seed=3),
        "holiday/day 2/IMG_0100.jpeg": picture("JPEG", seed=4),
    }
    junk = {
        "__MACOSX/holiday/._IMG_0001.jpg": b"\x00\x05\x16\x07 AppleDouble",
        ".DS_Store": b"Bud1 finder junk",
        "holiday/.DS_Store": b"Bud1 finder junk",
        "holiday/notes.txt": b"remember the beach",
        "Thumbs.db": b"windows junk",
    }
    members = [("holiday/", b""), ("b/", b""), ("b/c/", b"")]
    members += [*pictures.items(), *junk.items()]
    members.insert(4, members.pop())  # junk and pictures mixed, in no sorted order
    source = make_zip(tmp_path / "photos.zip", members)

    found = inputs.unpack_zip(source, folder, **LIMITS)

    names = sorted(pictures)
    assert found == [Picture(name, None) for name in names]
    assert held(folder) == [f"{i:06d}" for i in range(len(names))]
    for position, name in enumerate(names):
        assert file_for(folder, position).read_bytes() == pictures[name]


def test_a_zip_may_make_its_own_folder(tmp_path):
    source = make_zip(tmp_path / "one.zip", [("a.jpg", picture())])
    folder = tmp_path / "jobs" / "new"
    assert inputs.unpack_zip(source, folder, **LIMITS) == [Picture("a.jpg")]
    assert file_for(folder, 0).read_bytes() == picture()


def test_names_are_kept_as_the_zip_says_without_control_characters(tmp_path, folder):
    members = [
        ("Été/photo\x07 1.jpg", picture(seed=1)),  # UTF-8, flagged so by zipfile
        ("holiday\\IMG_1.jpg", picture(seed=2)),  # Windows' separators
        ("bidi/\u202egpj.png", picture("PNG", seed=3)),  # a right-to-left override
        ("NFD/cafe\u0301.jpg", picture(seed=4)),  # macOS's decomposed accents
        ("./dot/a.jpg", picture(seed=5)),
        ("caf_.jpg", picture(seed=6)),  # made cp437 below: no UTF-8 flag
    ]
    data = make_zip(tmp_path / "names.zip", members).read_bytes()
    assert data.count(b"caf_.jpg") == 2  # in the local header and in the index
    source = tmp_path / "names.zip"
    source.write_bytes(data.replace(b"caf_.jpg", b"caf\x82.jpg"))  # 0x82 is é in cp437

    found = inputs.unpack_zip(source, folder, **LIMITS)

    expected = {
        "Été/photo 1.jpg": picture(seed=1),
        "holiday/IMG_1.jpg": picture(seed=2),
        "bidi/gpj.png": picture("PNG", seed=3),
        "NFD/café.jpg": picture(seed=4),
        "dot/a.jpg": picture(seed=5),
        "café.jpg": picture(seed=6),
    }
    assert [p.name for p in found] == sorted(expected)
    assert all(p.error is None for p in found)
    for position, p in enumerate(found):
        assert file_for(folder, position).read_bytes() == expected[p.name]


def test_two_members_of_the_same_name_are_both_kept(tmp_path, folder):
    first, second = picture(seed=1), picture(seed=2)
    source = make_zip(
        tmp_path / "twice.zip", [("same.jpg", first), ("other.txt", b""), ("same.jpg", second)]
    )
    found = inputs.unpack_zip(source, folder, **LIMITS)
    assert found == [Picture("same.jpg"), Picture("same.jpg")]
    assert file_for(folder, 0).read_bytes() == first  # the zip's order, among equal names
    assert file_for(folder, 1).read_bytes() == second


def test_a_picture_over_the_per_picture_limit_is_an_error_and_the_job_goes_on(tmp_path, folder):
    small, big = picture("JPEG", seed=1), picture("PNG", side=400, seed=2)
    assert 100_000 < len(big) < 1 * MB
    source = make_zip(tmp_path / "mixed.zip", [("small.jpg", small), ("big.png", big)])

    found = inputs.unpack_zip(source, folder, **(LIMITS | {"max_picture_bytes": 100_000}))

    size = size_text(len(big), round_up=True)
    assert found == [
        Picture("big.png", f"This picture is {size}; a picture up to 100 KB is accepted."),
        Picture("small.jpg", None),
    ]
    assert size.endswith(" KB") and size != "100 KB"
    assert held(folder) == ["000001"]  # the big one keeps its place, with no file
    assert file_for(folder, 1).read_bytes() == small


def test_a_folder_named_like_a_picture_is_a_folder(tmp_path, folder):
    windows_folder = zipfile.ZipInfo("album.jpg/")
    windows_folder.create_system = 0
    windows_folder.external_attr = 0x10  # MS-DOS's directory attribute, no Unix mode
    unix_folder = zipfile.ZipInfo("more.png/")
    unix_folder.external_attr = (0o40755 << 16) | 0x10
    members = [(windows_folder, b""), (unix_folder, b""), ("album.jpg/a.jpg", picture())]
    source = make_zip(tmp_path / "folders.zip", members)
    assert inputs.unpack_zip(source, folder, **LIMITS) == [Picture("album.jpg/a.jpg")]
    assert held(folder) == ["000000"]


def test_junk_does_not_count_against_the_picture_limit(tmp_path, folder):
    members = [("a.jpg", picture(seed=1)), ("b.jpg", picture(seed=2))]
    members += [(f"__MACOSX/._{name}", b"x") for name, _ in members]
    members += [("readme.txt", b"hello"), ("folder/", b"")]
    source = make_zip(tmp_path / "two.zip", members)
    found = inputs.unpack_zip(source, folder, **(LIMITS | {"max_pictures": 2}))
    assert [p.name for p in found] == ["a.jpg", "b.jpg"]


# --- Zips refused whole, before anything is written -------------------------------------


def test_a_file_that_is_not_a_zip_is_refused(tmp_path, folder):
    source = tmp_path / "photo.zip"
    source.write_bytes(picture("PNG"))
    assert refused(source, folder) == "This file is not a zip; send the pictures in a .zip file."
    source.write_bytes(b"")
    assert refused(source, folder) == "This file is not a zip; send the pictures in a .zip file."


def test_a_zip_cut_short_is_refused(tmp_path, folder):
    data = make_zip(tmp_path / "whole.zip", [("a.jpg", picture(side=200))]).read_bytes()
    source = tmp_path / "cut.zip"
    source.write_bytes(data[: len(data) // 2])
    assert refused(source, folder) == (
        "This zip is incomplete or damaged (its list of files is missing); make or download "
        "it again."
    )


def test_a_zip_with_a_damaged_index_is_refused(tmp_path, folder):
    source = make_zip(tmp_path / "bad.zip", [("a.jpg", picture()), ("b.jpg", picture(seed=2))])
    data = source.read_bytes()
    source.write_bytes(patched(data, central_entry(data, "b.jpg"), b"XX"))
    message = refused(source, folder)
    assert message.startswith("This zip is damaged and cannot be opened (")
    assert "central directory" in message


def test_a_zip_whose_index_is_too_large_is_refused_before_it_is_read(tmp_path, folder):
    # 1,500 files of 200-character names: about 370 KB of index, for one picture.
    members = [(f"notes/{'n' * 190}{i:04d}.txt", b"") for i in range(1500)]
    source = make_zip(tmp_path / "listing.zip", [("a.jpg", picture()), *members])
    message = refused(source, folder, max_pictures=1)
    assert message.startswith("This zip lists too many files (its index is ")
    assert message.endswith(", more than 1 pictures need); zip only the pictures.")
    assert inputs.unpack_zip(source, folder, **(LIMITS | {"max_pictures": 1000})) == [
        Picture("a.jpg")
    ]


def test_the_index_is_checked_whichever_end_record_a_reader_takes(tmp_path, folder):
    # Bytes after the end record: its comment no longer reaches the file's end, which
    # Python 3.11's zipfile ignores (it takes the last end record it finds).
    members = [(f"notes/{'n' * 190}{i:04d}.txt", b"") for i in range(1500)]
    source = make_zip(tmp_path / "listing.zip", [("a.jpg", picture()), *members])
    source.write_bytes(source.read_bytes() + b"trailing bytes")
    with zipfile.ZipFile(source) as archive:
        assert len(archive.infolist()) == 1501
    assert refused(source, folder, max_pictures=1).startswith("This zip lists too many files")


def test_a_zip64_zip_is_refused(tmp_path, folder):
    data = make_zip(tmp_path / "plain.zip", [("a.jpg", picture())]).read_bytes()
    end = data.rindex(b"PK\x05\x06")
    entries = int.from_bytes(data[end + 10 : end + 12], "little")
    size, offset = struct.unpack("<LL", data[end + 12 : end + 20])
    zip64_end = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, size, offset
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    source = tmp_path / "zip64.zip"
    source.write_bytes(data[:end] + zip64_end + locator + data[end:])
    with zipfile.ZipFile(source) as archive:  # a zip Python reads, as ZIP64
        assert archive.testzip() is None
    assert refused(source, folder) == (
        "This zip uses ZIP64 (made for archives over 4 GB or 65,535 files), which is not "
        "accepted; send the pictures in smaller zips."
    )


@pytest.mark.parametrize(
    "name",
    [
        "../evil.jpg",
        "holiday/../../evil.jpg",
        "/etc/evil.jpg",
        "C:\\Users\\evil.jpg",
        "C:evil.jpg",
        "\\\\server\\share\\evil.jpg",
        "holiday\\..\\..\\evil.jpg",
        "../notes.txt",  # not a picture, and still refused
    ],
)
def test_a_zip_with_a_name_outside_its_own_folder_is_refused(tmp_path, folder, name):
    source = make_zip(tmp_path / "escape.zip", [("a.jpg", picture()), (name, picture(seed=2))])
    with zipfile.ZipFile(source) as archive:
        assert archive.namelist()[1] == name  # as crafted
    assert refused(source, folder) == (
        f"This zip holds a file outside its own folder (“{name}”); it is refused."
    )


def test_a_long_name_is_cut_short_in_the_sentence(tmp_path, folder):
    name = "../" + "x" * 200 + ".jpg"
    source = make_zip(tmp_path / "long.zip", [(name, picture())])
    shown = "../" + "x" * 76 + "…"
    assert refused(source, folder) == (
        f"This zip holds a file outside its own folder (“{shown}”); it is refused."
    )


@pytest.mark.parametrize(
    ("mode", "kind"),
    [(0o120777, "a symbolic link"), (0o020666, "a device"), (0o010644, "a pipe")],
)
def test_a_zip_holding_a_link_or_device_is_refused(tmp_path, folder, mode, kind):
    link = zipfile.ZipInfo("holiday/link.jpg")
    link.external_attr = mode << 16
    source = make_zip(tmp_path / "link.zip", [("a.jpg", picture()), (link, b"/etc/passwd")])
    assert refused(source, folder) == (
        f"This zip holds {kind} (“holiday/link.jpg”), not a file; zip the pictures themselves."
    )


def test_a_zip_protected_by_a_password_is_refused(tmp_path, folder):
    source = tmp_path / "secret.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("a.jpg", picture())
        info = archive.getinfo("a.jpg")
        archive.writestr("b.jpg", picture(seed=2))
        info.flag_bits |= 0x1  # written so into the index when the zip is closed
    with zipfile.ZipFile(source) as archive, pytest.raises(RuntimeError, match="encrypted"):
        archive.read("a.jpg")
    assert refused(source, folder) == (
        "This zip is protected by a password; zip the pictures again without one."
    )


def test_a_zip_compressed_in_a_way_that_cannot_be_read_is_refused(tmp_path, folder):
    source = make_zip(tmp_path / "deflate64.zip", [("a.jpg", picture())])
    data = source.read_bytes()
    at = central_entry(data, "a.jpg") + 10
    source.write_bytes(patched(data, at, (9).to_bytes(2, "little")))
    assert refused(source, folder) == (
        "This zip is compressed with Deflate64, which cannot be read here; zip the pictures "
        "again with ordinary (Deflate) compression."
    )


def test_a_zip_bomb_is_refused_before_it_is_expanded(tmp_path, folder):
    source = make_zip(tmp_path / "bomb.zip", [("a.jpg", picture()), ("bomb.png", bytes(50 * MB))])
    assert source.stat().st_size < 100_000
    message = refused(source, folder, max_bytes=10 * MB, max_picture_bytes=100 * MB)
    assert message.startswith("This zip looks like a zip bomb: “bomb.png” expands ")
    assert message.endswith(" times, to 50 MB, as no picture does; it is refused.")


def test_a_zip_whose_pictures_come_to_more_than_a_job_takes_is_refused(tmp_path, folder):
    members = [(f"{i}.png", picture("PNG", side=100, seed=i)) for i in range(3)]
    total = sum(len(data) for _, data in members)
    source = make_zip(tmp_path / "big.zip", members, zipfile.ZIP_STORED)
    assert refused(source, folder, max_bytes=total - 1) == (
        f"This zip's pictures come to {size_text(total, round_up=True)} unpacked; at most "
        f"{size_text(total - 1)} are accepted in one job."
    )
    assert len(inputs.unpack_zip(source, folder, **(LIMITS | {"max_bytes": total}))) == 3


def test_a_zip_of_more_pictures_than_a_job_takes_is_refused(tmp_path, folder):
    members = [(f"{i}.jpg", picture(seed=i)) for i in range(3)]
    source = make_zip(tmp_path / "three.zip", members)
    assert refused(source, folder, max_pictures=2) == (
        "This zip holds 3 pictures; at most 2 are accepted in one job."
    )


def test_a_zip_without_pictures_is_refused(tmp_path, folder):
    members = [
        ("notes.txt", b"hello"),
        ("__MACOSX/._a.jpg", picture()),
        (".hidden.jpg", picture()),
        ("photos/", b""),
    ]
    source = make_zip(tmp_path / "none.zip", members)
    assert refused(source, folder) == (
        "This zip holds no pictures (PNG, JPEG, WebP, BMP, GIF, TIFF, HEIC)."
    )


def test_a_zip_the_disk_has_no_room_for_is_refused_before_it_is_written(
    tmp_path, folder, monkeypatch
):
    source = make_zip(tmp_path / "a.zip", [("a.jpg", picture())])
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(inputs.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 100))
    assert refused(source, folder) == inputs.DISK_FULL


# --- Zips that lie: sizes enforced as the bytes arrive -----------------------------------


def test_a_member_larger_than_its_declared_size_is_cut_there_and_reported_damaged(tmp_path, folder):
    honest = picture(seed=1)
    liar = np.random.default_rng(7).bytes(12 * MB)  # the zip says 1 MB
    source = make_zip(tmp_path / "liar.zip", [("a.jpg", honest), ("b.png", liar)])
    data = source.read_bytes()
    at = central_entry(data, "b.png") + 24  # its declared (uncompressed) size
    assert int.from_bytes(data[at : at + 4], "little") == len(liar)
    source.write_bytes(patched(data, at, MB.to_bytes(4, "little")))

    found = inputs.unpack_zip(source, folder, **(LIMITS | {"max_bytes": 10 * MB}))

    assert found[0] == Picture("a.jpg")
    assert found[1].name == "b.png"
    assert found[1].error is not None
    assert found[1].error.startswith("This picture is damaged in the zip and cannot be read (")
    assert held(folder) == ["000000"]  # nothing of the liar is kept
    assert file_for(folder, 0).read_bytes() == honest


class Handed(io.BytesIO):
    """A member's stream that hands over more than the zip declared; says how far it was read."""

    def __init__(self, size: int) -> None:
        super().__init__(bytes(size))
        self.read_to = 0

    def close(self) -> None:
        if not self.closed:
            self.read_to = self.tell()
        super().close()


def test_bytes_past_what_the_zip_declared_stop_the_unpack_at_max_bytes(
    tmp_path, folder, monkeypatch
):
    source = make_zip(tmp_path / "small.zip", [("a.png", picture("PNG"))])
    handed = Handed(30 * MB)  # as a zip reader that believed another size would
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *args, **kwargs: handed)

    message = refused(source, folder, max_bytes=10 * MB, max_picture_bytes=100 * MB)

    assert message == (
        "This zip's pictures come to more than 10 MB unpacked; at most 10 MB are accepted in "
        "one job."
    )
    assert 10 * MB < handed.read_to <= 10 * MB + inputs.CHUNK_BYTES  # no further than needed


def test_a_picture_past_its_limit_as_bytes_arrive_is_an_error(tmp_path, folder, monkeypatch):
    source = make_zip(tmp_path / "small.zip", [("a.png", picture("PNG")), ("b.jpg", picture())])
    streams = [Handed(30 * MB), Handed(1000)]
    handed = iter(streams)
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: next(handed))

    found = inputs.unpack_zip(source, folder, **(LIMITS | {"max_picture_bytes": 5 * MB}))

    assert found == [
        Picture("a.png", "This picture is more than 5 MB; a picture up to 5 MB is accepted."),
        Picture("b.jpg"),
    ]
    assert 5 * MB < streams[0].read_to <= 5 * MB + inputs.CHUNK_BYTES  # no further than needed
    assert held(folder) == ["000001"]
    assert file_for(folder, 1).read_bytes() == bytes(1000)


class DiskFull(io.FileIO):
    """A new file on a disk that fills up on the first write."""

    def write(self, data) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_unpacking_stops_it_and_leaves_no_half_file(
    tmp_path, folder, monkeypatch
):
    source = make_zip(tmp_path / "a.zip", [("a.jpg", picture())])
    monkeypatch.setattr(inputs, "_create", lambda target: DiskFull(target, "xb"))
    assert refused(source, folder) == (
        "The server's disk is full, so these pictures cannot be kept; try again later."
    )


# --- Pictures one at a time -------------------------------------------------------------


def test_intake_writes_each_picture_as_it_comes_and_counts_them(folder):
    first, second, third = picture(seed=1), picture("PNG", seed=2), picture(seed=3)
    intake = Intake(folder, **LIMITS)

    assert intake.add("holiday/IMG_1.jpg", first) == Picture("holiday/IMG_1.jpg")
    assert intake.add("holiday\\b\x00.png", io.BytesIO(second)) == Picture("holiday/b.png")
    assert intake.add("\x1b", bytearray(third)) == Picture("picture 3")

    assert intake.pictures == [
        Picture("holiday/IMG_1.jpg"),
        Picture("holiday/b.png"),
        Picture("picture 3"),
    ]
    assert intake.total_bytes == len(first) + len(second) + len(third)
    for position, data in enumerate((first, second, third)):
        assert file_for(folder, position).read_bytes() == data
    intake.pictures.clear()  # a copy: the intake's own list stays
    assert len(intake.pictures) == 3


def test_intake_keeps_a_picture_over_its_limit_as_an_error_without_writing_it(folder):
    big = picture("PNG", side=300, seed=1)
    intake = Intake(folder, **(LIMITS | {"max_picture_bytes": 100_000}))

    from_bytes = intake.add("big.png", big)
    from_file = intake.add("big again.png", io.BytesIO(big))
    small = intake.add("small.jpg", picture())

    size = size_text(len(big), round_up=True)
    assert from_bytes == Picture(
        "big.png", f"This picture is {size}; a picture up to 100 KB is accepted."
    )
    assert from_file == Picture(
        "big again.png", "This picture is more than 100 KB; a picture up to 100 KB is accepted."
    )
    assert small == Picture("small.jpg")
    assert held(folder) == ["000002"]  # each keeps its place
    assert intake.total_bytes == len(picture())


def test_intake_refuses_bytes_past_the_jobs_limit_and_keeps_no_half_file(folder):
    first, second = picture("PNG", side=100, seed=1), picture("PNG", side=100, seed=2)
    intake = Intake(folder, **(LIMITS | {"max_bytes": len(first) + len(second) - 1}))
    intake.add("a.png", first)

    for data in (second, io.BytesIO(second)):
        with pytest.raises(BatchInputError) as caught:
            intake.add("b.png", data)
        assert str(caught.value) == (
            f"These pictures come to more than {size_text(intake.max_bytes)}; at most "
            f"{size_text(intake.max_bytes)} are accepted in one job."
        )
        assert held(folder) == ["000000"]
        assert intake.pictures == [Picture("a.png")]
        assert intake.total_bytes == len(first)


def test_intake_refuses_one_picture_more_than_a_job_takes(folder):
    intake = Intake(folder, **(LIMITS | {"max_pictures": 2}))
    intake.add("a.jpg", picture(seed=1))
    intake.add("b.jpg", picture(seed=2))
    with pytest.raises(BatchInputError) as caught:
        intake.add("c.jpg", picture(seed=3))
    assert str(caught.value) == "A job takes at most 2 pictures; send the rest in another job."
    assert held(folder) == ["000000", "000001"]
    assert len(intake.pictures) == 2


def test_intake_never_writes_over_a_file_already_there(folder):
    file_for(folder, 0).write_bytes(b"left by someone else")
    intake = Intake(folder, **LIMITS)
    with pytest.raises(FileExistsError):
        intake.add("a.jpg", picture())
    assert file_for(folder, 0).read_bytes() == b"left by someone else"
    assert intake.pictures == []


def test_intake_on_a_full_disk_says_so_and_keeps_no_half_file(folder, monkeypatch):
    intake = Intake(folder, **LIMITS)
    intake.add("a.jpg", picture())
    monkeypatch.setattr(inputs, "_create", lambda target: DiskFull(target, "xb"))
    with pytest.raises(BatchInputError, match=r"^The server's disk is full, so these"):
        intake.add("b.jpg", picture(seed=2))
    assert held(folder) == ["000000"]
    assert intake.pictures == [Picture("a.jpg")]
