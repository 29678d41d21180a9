"""classify_files: many files through one model, decoding overlapped with inference, and the
command line's `predict` on top of it."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from classifier import cli, images, predict
from classifier.errors import ModelError
from classifier.jobs import pipeline
from classifier.models.taught import HeadEngine
from classifier.runtime import engines
from tests.conftest import ROOT
from tests.helpers import CAT_CLASSES

EXAMPLES = ROOT / "assets" / "examples"


def workers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("classify")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, chelsea_png, coffee_jpeg) -> dict[str, Path]:
    """The example photos, a few more, and files that cannot be classified."""
    here = tmp_path_factory.mktemp("pipeline")
    contents = {
        "cat.jpg": (EXAMPLES / "cat.jpg").read_bytes(),
        "coffee.jpg": (EXAMPLES / "coffee.jpg").read_bytes(),
        "rocket.jpg": (EXAMPLES / "rocket.jpg").read_bytes(),
        "chelsea.png": chelsea_png,
        "espresso.jpg": coffee_jpeg,
        "notes.jpg": b"just some words\n" * 20,
        "truncated.jpg": coffee_jpeg[: len(coffee_jpeg) // 3],
    }
    paths = {}
    for name, data in contents.items():
        paths[name] = here / name
        paths[name].write_bytes(data)
    paths["missing.jpg"] = here / "missing.jpg"  # never written
    return paths


GOOD = ("cat.jpg", "coffee.jpg", "rocket.jpg", "chelsea.png", "espresso.jpg")
MIXED = (
    "cat.jpg", "missing.jpg", "coffee.jpg", "notes.jpg", "rocket.jpg", "truncated.jpg",
    "chelsea.png", "espresso.jpg", "missing.jpg", "cat.jpg",
)  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_one_outcome_per_path_in_order_and_the_failures_say_why(lite0, folder, workers):
    paths = [folder[name] for name in MIXED]

    outcomes = list(pipeline.classify_files(lite0, paths, workers=workers))

    assert [o.index for o in outcomes] == list(range(len(paths)))
    assert [o.path for o in outcomes] == paths
    failed = {o.path.name: o.error for o in outcomes if o.prediction is None}
    assert set(failed) == {"missing.jpg", "notes.jpg", "truncated.jpg"}
    assert failed["missing.jpg"] == "cannot read the file (No such file or directory)"
    assert "not a picture we can read" in failed["notes.jpg"]
    assert "incomplete or damaged" in failed["truncated.jpg"]
    for outcome in outcomes:
        if outcome.path.name == "missing.jpg":
            assert outcome.digest == ""
        else:
            assert outcome.digest == images.content_digest(outcome.path.read_bytes())
        if outcome.prediction is not None:
            assert outcome.error is None
            assert outcome.thumbnail is None  # not asked for
    by_name = {o.path.name: o.prediction for o in outcomes if o.prediction is not None}
    assert by_name["coffee.jpg"].top1.label == "espresso"
    assert {c.label for c in by_name["cat.jpg"].top(5)} & CAT_CLASSES
    assert not workers_alive()


def test_the_predictions_are_those_of_classify(lite0, folder):
    paths = [folder[name] for name in GOOD]

    outcomes = list(pipeline.classify_files(lite0, paths, workers=2))

    for path, outcome in zip(paths, outcomes, strict=True):
        alone = predict.classify(path.read_bytes(), lite0)
        got = outcome.prediction
        assert [c.label for c in got.top(5)] == [c.label for c in alone.top(5)]
        np.testing.assert_allclose(
            [c.probability for c in got.top(5)], [c.probability for c in alone.top(5)], atol=1e-6
        )
        np.testing.assert_allclose(got.probabilities, alone.probabilities, atol=1e-6)
        np.testing.assert_array_equal(got.model_input, alone.model_input)
        assert got.image.size == alone.image.size
        for name in (
            "model", "model_title", "requested_model", "weights_source", "notice", "backend",
            "image_format", "width", "height", "class_names", "weights_origin", "crop_fraction",
            "cached",
        ):  # fmt: skip
            assert getattr(got, name) == getattr(alone, name), name
        assert got.timings.inference_ms > 0


def test_digests_can_be_left_out(lite0, folder):
    paths = [folder[name] for name in ("cat.jpg", "notes.jpg", "missing.jpg")]

    outcomes = list(pipeline.classify_files(lite0, paths, digests=False))

    assert [o.digest for o in outcomes] == ["", "", ""]
    assert outcomes[0].prediction.top1 == predict.classify(paths[0].read_bytes(), lite0).top1


def test_thumbnails_are_made_when_asked(lite0, folder):
    paths = [folder[name] for name in ("cat.jpg", "notes.jpg", "chelsea.png")]

    outcomes = list(pipeline.classify_files(lite0, paths, thumbnails=True, workers=2))

    cat, notes, chelsea = outcomes
    assert notes.thumbnail is None  # it failed
    for outcome in (cat, chelsea):
        assert outcome.thumbnail == images.make_thumbnail(outcome.prediction.image)
        assert outcome.thumbnail[8:12] == b"WEBP"


class FailsOn:
    """An engine that fails on one picture's input (as an added model may), and has no twin,
    so the workers share it."""

    backend = "LiteRT"

    def __init__(self, engine, bad_batch: np.ndarray):
        self.engine, self.bad_batch = engine, bad_batch

    def run(self, batch: np.ndarray) -> np.ndarray:
        if np.array_equal(batch, self.bad_batch):
            raise ModelError("The model failed on this picture (a test).")
        return self.engine.run(batch)

    def wait(self) -> None:
        return None

    def twin(self, num_threads: int) -> None:
        return None


def test_a_picture_the_model_fails_on_is_an_error_and_the_rest_go_on(lite0, folder):
    decoded, _ = predict.decode(folder["rocket.jpg"].read_bytes(), lite0)
    failing = replace(lite0, engine=FailsOn(lite0.engine, lite0.spec.prepare(decoded.image)))
    paths = [folder[name] for name in ("cat.jpg", "rocket.jpg", "coffee.jpg", "rocket.jpg")]

    outcomes = list(pipeline.classify_files(failing, paths, workers=2))

    assert [o.error for o in outcomes] == [
        None,
        "The model failed on this picture (a test).",
        None,
        "The model failed on this picture (a test).",
    ]
    assert outcomes[1].digest == images.content_digest(folder["rocket.jpg"].read_bytes())
    assert outcomes[2].prediction.top1.label == "espresso"


@pytest.fixture
def counted_decodes(monkeypatch) -> list[Path]:
    """Count the pictures the workers have decoded."""
    decoded = []
    decode = predict.decode

    def counting(data, loaded):
        decoded.append(data)
        return decode(data, loaded)

    monkeypatch.setattr(predict, "decode", counting)
    return decoded


def wait_for(condition, seconds: float = 30) -> None:
    """Poll until the condition holds (a bound on a hang, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_closing_early_stops_the_workers_and_few_are_read_ahead(lite0, folder, counted_decodes):
    paths = [folder["coffee.jpg"]] * 60
    workers = 2
    outcomes = pipeline.classify_files(lite0, paths, workers=workers)
    taken = [next(outcomes) for _ in range(3)]
    ahead = 3 + pipeline.IN_FLIGHT_PER_WORKER * workers  # the window, refilled at each answer
    wait_for(lambda: len(counted_decodes) >= ahead)
    assert workers_alive()
    assert len(counted_decodes) == ahead  # and no more: the rest wait to be read

    outcomes.close()

    assert not workers_alive()
    assert [o.index for o in taken] == [0, 1, 2]
    assert len(counted_decodes) == ahead


def test_a_generator_dropped_unfinished_stops_its_workers(lite0, folder):
    outcomes = pipeline.classify_files(lite0, [folder["cat.jpg"]] * 20, workers=2)
    next(outcomes)
    del outcomes  # as when the loop reading it raised: the generator is closed

    assert not workers_alive()


def test_nothing_starts_before_the_first_outcome_is_asked_for(lite0, folder):
    outcomes = pipeline.classify_files(lite0, [folder["cat.jpg"]] * 4)
    assert not workers_alive()
    outcomes.close()
    assert list(pipeline.classify_files(lite0, [])) == []


def test_each_worker_runs_a_twin_of_the_engine(lite0, folder, monkeypatch):
    made: list[engines.LiteRTEngine] = []
    twin = engines.LiteRTEngine.twin

    def recorded(self, num_threads):
        made.append(twin(self, num_threads))
        return made[-1]

    monkeypatch.setattr(engines.LiteRTEngine, "twin", recorded)
    list(pipeline.classify_files(lite0, [folder["cat.jpg"]] * 6, workers=3))
    assert len(made) == 3
    assert len({id(engine) for engine in made}) == 3
    assert lite0.engine not in made

    made.clear()
    list(pipeline.classify_files(lite0, [folder["cat.jpg"]], workers=3))  # one file: one worker
    assert made == []  # the model's own engine


def test_twins_answer_as_the_engine_does(lite0):
    batch = lite0.spec.prepare(images.decode_image((EXAMPLES / "cat.jpg").read_bytes()).image)
    twin = lite0.engine.twin(1)
    assert twin is not lite0.engine
    np.testing.assert_allclose(twin.run(batch), lite0.engine.run(batch), atol=1e-6)

    rng = np.random.default_rng(0)
    head = HeadEngine(lite0.engine, rng.normal(size=(1000, 3)).astype(np.float32), np.zeros(3))
    head_twin = head.twin(1)
    assert head_twin._features is not head._features
    assert head_twin.weights is head.weights
    np.testing.assert_allclose(head_twin.run(batch), head.run(batch), atol=1e-6)

    assert engines.EagerKerasEngine(model=None).twin(1) is None  # Keras: shared


# --- The command line on top of it ---------------------------------------------------------


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr is when a person types the command."""

    def isatty(self) -> bool:
        return True


def run(*args: str, stderr_is_a_terminal: bool = True) -> tuple[int, str, str]:
    """Run `predict` with these arguments; return its status, stdout and stderr."""
    out, err = io.StringIO(), Terminal() if stderr_is_a_terminal else io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        status = cli.main(["predict", "--model", "efficientnet_lite0", *args])
    finally:
        sys.stdout, sys.stderr = saved
    return status, out.getvalue(), err.getvalue()


def on_screen(text: str) -> list[str]:
    """Return the lines a terminal shows for this text: a carriage return writes the line
    again from its start."""
    lines = []
    for written in text.split("\n"):
        line = ""
        for piece in written.split("\r"):
            line = piece + line[len(piece) :]
        lines.append(line.rstrip())
    return lines


def test_predict_draws_a_bar_on_a_terminal_and_clears_it(lite0, folder):
    names = ("cat.jpg", "notes.jpg", "coffee.jpg")
    status, out, err = run(*(str(folder[name]) for name in names))

    assert status == 1  # the text file
    assert "\r" not in out  # the answers are never mixed with the bar
    assert [answer.split("  (")[0] for answer in out.split("\n\n") if answer] == [
        str(folder["cat.jpg"]),
        str(folder["coffee.jpg"]),
    ]
    assert "\r[" in err and "] 3/3" in err  # drawn, up to the last picture
    error, last = on_screen(err)
    assert error.startswith(f"{folder['notes.jpg']}: This file is not a picture we can read")
    assert last == ""  # the bar was blanked before the error and at the end


@pytest.mark.parametrize(
    ("args", "terminal"), [(("--json",), True), ((), False)], ids=["json", "not a terminal"]
)
def test_predict_draws_no_bar_in_json_or_off_a_terminal(lite0, folder, args, terminal):
    files = [str(folder["cat.jpg"]), str(folder["coffee.jpg"])]
    status, out, err = run(*args, *files, stderr_is_a_terminal=terminal)

    assert status == 0
    assert err == ""
    if args:
        assert [entry["file"] for entry in json.loads(out)] == files


def test_standard_input_keeps_its_place_among_the_files(lite0, folder, monkeypatch, coffee_jpeg):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(coffee_jpeg)))
    files = [str(folder["cat.jpg"]), "-", str(folder["missing.jpg"]), str(folder["rocket.jpg"])]
    status, out, err = run("--json", *files)

    assert status == 1
    entries = json.loads(out)
    assert [entry["file"] for entry in entries] == files
    assert entries[1]["top_k"][0]["label"] == "espresso"
    assert entries[2] == {
        "file": files[2],
        "error": "cannot read the file (No such file or directory)",
    }
    assert err == f"{files[2]}: cannot read the file (No such file or directory)\n"


def test_predict_save_keeps_each_files_digest_and_thumbnail(lite0, folder, monkeypatch, tmp_path):
    from classifier.history import HistoryStore

    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    names = ("coffee.jpg", "notes.jpg", "cat.jpg", "chelsea.png")
    status, _, err = run("--save", *(str(folder[name]) for name in names))

    assert status == 1
    assert "saved 3 prediction(s) to the history" in err
    store = HistoryStore(url)
    rows = store.find(sort="oldest", limit=None)
    store.dispose()
    assert [row.file_name for row in rows] == ["coffee.jpg", "cat.jpg", "chelsea.png"]
    for row in rows:
        data = folder[row.file_name].read_bytes()
        assert row.sha256 == images.content_digest(data)
        picture = predict.classify(data, lite0).image
        assert row.thumbnail == images.make_thumbnail(picture)
