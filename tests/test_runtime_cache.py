"""The engine cache: checksums, repairs, stale files, unwritable folders and Ctrl-C.

Each test gets a cache folder of its own (CLASSIFIER_CACHE_DIR), so the engine layer
opens a new engine there; damage is only ever done to copies of the session's file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from classifier import cli, models
from classifier.runtime import cache, engines
from tests.conftest import ROOT

NAME = "efficientnet_lite0"
REBUILT = "The cached engine file for EfficientNet-Lite0 was damaged and has been rebuilt."
UNVERIFIED = (
    "The cached engine file for EfficientNet-Lite0 could not be verified and has been rebuilt."
)


def copy_engine(lite0, folder: Path) -> Path:
    """Copy the session's exported EfficientNet-Lite0 file and its checksum into a folder."""
    source = models.cached_engine_path(NAME)
    assert source is not None and cache.verify_engine_file(source) is None
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    shutil.copyfile(source, target)
    shutil.copyfile(cache.checksum_path(source), cache.checksum_path(target))
    return target


def flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    flipped = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    return data[:middle] + flipped + data[middle + 64 :]


DAMAGES = {
    "truncated": lambda data: data[: len(data) // 3],
    "last byte cut": lambda data: data[:-1],
    "zeros": lambda data: bytes(len(data)),
    "text": lambda data: b"this is not a model\n" * 1000,
    "garbage": lambda data: np.random.default_rng(0).bytes(len(data)),
    "flipped middle bytes": flip_middle,
}


def damage(path: Path, kind: str) -> None:
    path.write_bytes(DAMAGES[kind](path.read_bytes()))


def engine_warnings(caplog) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name.startswith("classifier.runtime.") and r.levelno >= logging.WARNING
    ]


def load_into(cache_dir: Path, monkeypatch) -> models.LoadedModel:
    monkeypatch.setenv("CLASSIFIER_CACHE_DIR", str(cache_dir))
    return models.load(NAME)


def finished_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


# --- 1. A damaged engine file -------------------------------------------------------------


def test_an_exported_file_verifies_and_needs_its_checksum(lite0, tmp_path):
    path = copy_engine(lite0, tmp_path)
    assert cache.verify_engine_file(path) is None
    record = json.loads(cache.checksum_path(path).read_text())
    assert record["size"] == path.stat().st_size and len(record["sha256"]) == 64

    cache.checksum_path(path).write_text("{not json")
    assert cache.verify_engine_file(path) == "its checksum file cannot be read"
    cache.checksum_path(path).unlink()
    assert cache.verify_engine_file(path) == cache.NO_CHECKSUM


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_verification_refuses_every_damaged_file(kind, lite0, tmp_path):
    path = copy_engine(lite0, tmp_path)
    damage(path, kind)
    assert cache.verify_engine_file(path) is not None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "notice"),
    [(kind, REBUILT) for kind in DAMAGES]
    + [("no checksum file", UNVERIFIED), ("checksum matches but LiteRT refuses it", REBUILT)],
)
def test_a_damaged_engine_file_is_set_aside_and_rebuilt(
    kind, notice, lite0, tmp_path, monkeypatch, caplog, coffee_jpeg
):
    from classifier.predict import classify

    path = copy_engine(lite0, tmp_path)
    if kind == "no checksum file":
        cache.checksum_path(path).unlink()
    elif kind == "checksum matches but LiteRT refuses it":
        path.write_bytes(b"this is not a model\n" * 1000)
        cache.checksum_path(path).write_text(
            json.dumps(
                {
                    "size": path.stat().st_size,
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                }
            )
        )
    else:
        damage(path, kind)
    damaged = path.read_bytes()

    loaded = load_into(tmp_path, monkeypatch)
    assert loaded.cache_notice == notice
    [warning] = engine_warnings(caplog)
    assert str(path) in warning.getMessage() and warning.exc_info is None
    assert path.with_name(path.name + ".corrupt").read_bytes() == damaged  # kept aside
    assert isinstance(loaded.engine, engines.ExportingEngine)  # rebuilt like a first load
    assert classify(coffee_jpeg, loaded).top1.label == "espresso"

    loaded.engine.wait()
    assert loaded.engine.backend == "LiteRT"
    assert cache.verify_engine_file(path) is None
    assert classify(coffee_jpeg, loaded).top1.label == "espresso"
    assert models.load(NAME).cache_notice == ""  # said once

    monkeypatch.setenv("CLASSIFIER_THREADS", "1")  # another engine: as the next process would
    again = models.load(NAME)
    assert isinstance(again.engine, engines.LiteRTEngine) and again.cache_notice == ""
    assert classify(coffee_jpeg, again).top1.label == "espresso"
    assert len(engine_warnings(caplog)) == 1


# --- 2. Stale temporary files -------------------------------------------------------------


def test_opening_an_engine_removes_stale_temporary_files(lite0, tmp_path, monkeypatch):
    path = copy_engine(lite0, tmp_path)
    dead, alive, stem = finished_pid(), os.getpid(), path.stem
    name = path.name
    stale = [
        tmp_path / f".{name}.{dead}.0000000a.tflite",  # a killed export
        tmp_path / f".{name}.{dead}.0000000b.tflite",  # killed before writing anything
        tmp_path / f".mobilenet_v2-0123456789abcdef.tflite.{dead}.0000000c.tflite",  # another's
        tmp_path / f".{stem}.json.{dead}.0000000d.tmp",  # a checksum file being written
        tmp_path / f".{name}.{alive}.0000000e.tflite",  # a running process, but hours old
    ]
    running = tmp_path / f".{name}.{alive}.0000000f.tflite"  # an export under way: kept
    others = [path, cache.checksum_path(path), tmp_path / "notes.txt", tmp_path / ".hidden"]
    for i, file in enumerate([*stale, running, *others[2:]]):
        file.write_bytes(b"x" * 1000 * (i % 2))
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale[-1], (two_hours_ago, two_hours_ago))

    loaded = load_into(tmp_path, monkeypatch)
    assert isinstance(loaded.engine, engines.LiteRTEngine)
    assert [file for file in stale if file.exists()] == []
    assert running.exists() and all(file.exists() for file in others)


# --- 3. A cache folder that cannot be written ---------------------------------------------


@pytest.fixture
def temporary_folder(tmp_path, monkeypatch) -> Path:
    """A system temporary folder of the test's own, where the fallback cache goes."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_an_unwritable_cache_folder_is_replaced_by_a_temporary_one_said_once(
    lite0, tmp_path, temporary_folder, monkeypatch, caplog
):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    fallback = cache.fallback_cache_dir()
    assert fallback.parent == temporary_folder
    fallback.mkdir(mode=0o700)
    warm = copy_engine(lite0, fallback)  # what an earlier run exported there

    loaded = load_into(blocked, monkeypatch)
    assert isinstance(loaded.engine, engines.LiteRTEngine) and loaded.engine.path == warm
    assert (
        loaded.cache_notice
        == f"The engine cache folder {blocked} cannot be written; using {fallback}."
    )
    [warning] = engine_warnings(caplog)
    assert warning.exc_info is None and "cannot be written" in warning.getMessage()
    assert models.cached_engine_path(NAME) == warm  # the models page and CLI see it

    monkeypatch.setenv("CLASSIFIER_THREADS", "1")  # another engine in the same process
    assert models.load(NAME).cache_notice == ""
    assert len(engine_warnings(caplog)) == 1


def test_a_shared_temporary_folder_that_is_not_ours_alone_is_not_used(temporary_folder):
    fallback = cache.fallback_cache_dir()
    fallback.mkdir()
    fallback.chmod(0o777)
    assert "others may write" in cache._why_not_private(fallback)
    fallback.chmod(0o700)
    assert cache._why_not_private(fallback) is None


def cli_environment(tmp_path: Path, cache_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CLASSIFIER_CACHE_DIR": str(cache_dir),
        "CLASSIFIER_OFFLINE": "1",
        "KERAS_HOME": str(tmp_path / "keras"),
        "CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 'history.db'}",
        "TMPDIR": str(tmp_path / "tmp"),
    }


@pytest.mark.slow
def test_the_cli_with_an_unwritable_cache_warns_in_one_line_and_starts_warm_next_time(
    tmp_path, photo_files
):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")
    (tmp_path / "tmp").mkdir()
    env = cli_environment(tmp_path, blocked)
    command = [sys.executable, "-m", "classifier", "predict", "--model", NAME]
    first = subprocess.run(
        [*command, str(photo_files["coffee"])], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert first.returncode == 0, first.stderr
    assert "espresso" in first.stdout
    assert "Traceback" not in first.stderr
    [line] = [line for line in first.stderr.splitlines() if "cannot be written" in line]
    assert str(blocked) in line

    script = (
        "import sys, pathlib\n"
        "from classifier.predict import classify\n"
        f"p = classify(pathlib.Path({str(photo_files['coffee'])!r}).read_bytes(), {NAME!r})\n"
        "assert p.backend == 'LiteRT', p.backend\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print(p.top1.label)\n"
    )
    second = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "espresso"


# --- 4. Ctrl-C ----------------------------------------------------------------------------


class BlockingModel:
    """Stands in for a Keras model whose export takes until the test lets it finish."""

    def __init__(self):
        self.exporting = threading.Event()
        self.finish = threading.Event()

    def export(self, path, format, verbose):
        Path(path).write_bytes(b"half")
        self.exporting.set()
        self.finish.wait()
        Path(path).write_bytes(b"whole")


def test_abandoning_an_export_deletes_its_folder_and_a_late_write_keeps_nothing(tmp_path):
    model, outcome = BlockingModel(), []

    def export():
        try:
            cache.export_litert(model, tmp_path / "m.tflite", "Model M")
        except BaseException as exc:
            outcome.append(exc)
        finally:
            model.exporting.set()  # never leave the test waiting

    thread = threading.Thread(target=export)
    thread.start()
    try:
        model.exporting.wait()
        [workspace] = tmp_path.iterdir()  # the export's private folder, with its partial file
        assert workspace.name.startswith(".m.tflite.") and workspace.is_dir()
        assert [p.read_bytes() for p in workspace.iterdir()] == [b"half"]

        assert cache.abandon_exports() == ["Model M"]
        assert not workspace.exists()
    finally:
        model.finish.set()  # the export writes its file again, late: it has no folder now
        thread.join()
    [abandoned] = outcome  # the export ended without moving its file into place
    assert isinstance(abandoned, cache.ExportAbandoned)
    assert list(tmp_path.iterdir()) == []
    assert cache.abandon_exports() == []


def test_an_export_without_interruption_writes_its_checksum(tmp_path):
    model = BlockingModel()
    model.finish.set()
    path = cache.export_litert(model, tmp_path / "m.tflite")
    assert path.read_bytes() == b"whole"
    assert cache.verify_engine_file(path) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.tflite"]


def test_ctrl_c_with_no_export_under_way_exits_130(monkeypatch, capsys, photo_files):
    def interrupted(name=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "load", interrupted)
    assert cli.main(["predict", str(photo_files["coffee"])]) == 130
    assert "interrupted" not in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_during_a_first_export_ends_cleanly(tmp_path, photo_files):
    # Ctrl-C can only be pressed while the export runs; on a busy machine it may end (and the
    # process exit 0) between seeing its partial file and the signal: then it is pressed
    # again, on a fresh cache, up to three times.
    for attempt in range(3):
        if _interrupt_a_first_export(tmp_path / f"attempt-{attempt}", photo_files) is not None:
            return
    pytest.fail("the export ended before Ctrl-C three times: nothing was interrupted")


def _interrupt_a_first_export(folder: Path, photo_files) -> int | None:
    """Press Ctrl-C during a first export; check the outcome; None if the export had ended."""
    cache_dir = folder / "engines"
    cache_dir.mkdir(parents=True)
    (folder / "tmp").mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "classifier", "predict", "--model", NAME,
         str(photo_files["coffee"])],
        env=cli_environment(folder, cache_dir), cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    printed = []
    for line in process.stdout:  # Keras answers first, then the export starts
        printed.append(line)
        if "espresso" in line:
            break
    assert any("espresso" in line for line in printed), process.communicate()[1]

    def partials() -> list[Path]:  # the export's private folder, and anything hidden
        return [p for p in cache_dir.iterdir() if p.name.startswith(".")]

    for _ in range(6000):  # the export's private folder exists from its start
        if partials() or process.poll() is not None:
            break
        time.sleep(0.01)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    _, stderr = process.communicate()
    assert "Traceback" not in stderr and "terminate called" not in stderr
    assert partials() == []
    finished = models.cached_engine_path(NAME, cache_dir)
    if process.returncode == 0:  # it had finished before the signal: a whole, verified file
        assert "interrupted" not in stderr
        assert finished is not None and cache.verify_engine_file(finished) is None
        return None
    assert process.returncode == 130, stderr
    if "interrupted: EfficientNet-Lite0 will be prepared again next time" in stderr.splitlines():
        assert finished is None  # prepared again next time, as it said
    else:  # on a busy machine the export can end between the check above and the signal
        assert finished is not None, f"no engine file, and nothing said: {stderr}"
        assert cache.verify_engine_file(finished) is None
    return process.returncode
