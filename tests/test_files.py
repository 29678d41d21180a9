"""Files written whole or not at all, and the temporary files crashed writers leave."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from classifier import files


def test_write_atomically_replaces_the_file_and_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "export.csv"
    target.write_bytes(b"old")
    target.chmod(0o640)

    files.write_atomically(target, b"new content")

    assert target.read_bytes() == b"new content"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]
    files.write_atomically(tmp_path / "fresh.json", b"[]")
    assert (tmp_path / "fresh.json").read_bytes() == b"[]"


@pytest.mark.parametrize("existing", [b"the previous export\n", None], ids=["existing", "new"])
def test_write_atomically_leaves_nothing_half_written_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bytes | None
) -> None:
    target = tmp_path / "export.csv"
    if existing is not None:
        target.write_bytes(existing)

    def disk_fills_up(descriptor: int, data: bytes) -> None:
        os.write(descriptor, data[:10])  # some bytes made it before the disk was full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "_write_all", disk_fills_up)

    with pytest.raises(OSError, match="No space left on device"):
        files.write_atomically(target, b"x" * 100_000)

    if existing is None:
        assert list(tmp_path.iterdir()) == []
    else:
        assert target.read_bytes() == existing
        assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_every_temporary_name_is_swept_once_its_writer_is_gone(tmp_path: Path) -> None:
    """Engine exports, atomic writes and fused downloads share one temporary name: files a
    dead process left are deleted, a running writer's are kept, and old ones always go."""
    target = tmp_path / "model.tflite"
    mine = files.temporary_path(target)
    export = files.temporary_path(target, ".tflite")
    dead = target.with_name(f".{target.name}.999999999.0123abcd.tmp")  # no such process
    old = files.temporary_path(tmp_path / "vector.npy")
    kept = tmp_path / ".hidden.but.not.ours"
    for path in (mine, export, dead, old, kept):
        path.write_bytes(b"partial")
    dead_export = target.with_name(f".{target.name}.999999999.0123abce.tmp")  # a folder
    (dead_export / target.name).parent.mkdir()
    (dead_export / target.name).write_bytes(b"half an engine")
    hours_ago = time.time() - files.STALE_AFTER_SECONDS - 60
    os.utime(old, (hours_ago, hours_ago))

    removed = files.remove_stale_files(tmp_path)

    assert sorted(removed) == sorted([dead, dead_export, old])
    assert not dead_export.exists()
    assert mine.exists() and export.exists() and kept.exists()
    assert mine.name.startswith(".model.tflite.") and mine.name.endswith(".tmp")
    assert export.name.endswith(".tflite") and str(os.getpid()) in export.name
