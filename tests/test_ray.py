"""Batch jobs on Ray (`classifier.jobs.ray_runner`): on a local Ray with 2 CPUs, the same
answers as the in-process pipeline for every photo, from a folder, a zip, a list of files
and a storage URI; outputs as CSV, JSON and Parquet; rows saved to the history.

Needs the `ray` extra (`pip install '.[ray]'`): without it the Ray runs skip, except with
CI=true, where a missing Ray is a failure.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from classifier import images, models
from classifier.jobs import pipeline, ray_runner
from classifier.predict import classify
from tests.conftest import jpeg, variations
from tests.test_kinds import keep_a_model_of

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),  # Ray Data's own
]
MODEL = "efficientnet_lite0"
BROKEN = b"\xff\xd8\xff not really a jpeg"


@pytest.fixture(scope="module")
def ray_installed() -> None:
    """Skip without Ray; on CI (CI=true), fail instead."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{ray_runner.NOT_INSTALLED}; CI=true requires the Ray tests.")
        pytest.skip(ray_runner.NOT_INSTALLED)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """Two hundred and forty small real photos (the cat and the coffee, varied) in three
    folders, a broken JPEG and a text file."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    cat, coffee = Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())
    for number, picture in enumerate(variations(cat, 120, 1) + variations(coffee, 120, 2)):
        picture.thumbnail((200, 200))
        path = folder / f"folder {number // 100}" / f"photo {number:03d}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(jpeg(picture, 85))
    (folder / "broken.jpg").write_bytes(BROKEN)
    (folder / "notes.txt").write_text("not a photo")
    return folder


@pytest.fixture(scope="module")
def in_process(photo_folder, lite0) -> dict[str, pipeline.Outcome]:
    """The in-process pipeline's answer for every file of the folder, by its path."""
    paths = sorted(photo_folder.rglob("*.jpg"))
    return {str(outcome.path): outcome for outcome in pipeline.classify_files(lite0, paths)}


def assert_same_answers(rows: list[dict], expected: list[pipeline.Outcome]) -> None:
    """Each row gives its photo's in-process answer: the same top class, its probability
    within 1e-5, the same top 3; a file that failed, the same sentence."""
    assert len(rows) == len(expected)
    for row, outcome in zip(rows, expected, strict=True):
        assert row["sha256"] == outcome.digest
        if outcome.prediction is None:
            assert row["error"] == outcome.error and row["label"] is None
            continue
        top = outcome.prediction.top(3)
        assert row["error"] is None
        assert (row["label"], row["index"]) == (top[0].label, top[0].index), row["file"]
        assert row["probability"] == pytest.approx(top[0].probability, abs=1e-5)
        ranked = json.loads(row["top_k"])
        assert [entry["index"] for entry in ranked] == [entry.index for entry in top]
        assert (row["width"], row["height"], row["image_format"]) == (
            outcome.prediction.width,
            outcome.prediction.height,
            outcome.prediction.image_format,
        )


def test_a_folder_on_ray_gives_the_in_process_answers_writes_csv_and_saves(
    ray_installed, photo_folder, in_process, tmp_path, monkeypatch
):
    from classifier import history

    database = tmp_path / "history.db"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", f"sqlite:///{database}")
    output = tmp_path / "answers.csv"

    result = ray_runner.run(
        MODEL,
        [str(photo_folder)],
        address=None,
        num_cpus=2,
        top_k=3,
        output=output,
        fmt="csv",
        save=True,
        recursive=True,
    )

    assert (result.model, result.notice) == (MODEL, "")
    assert (result.classified, result.failed, result.saved) == (240, 1, 240)
    assert result.workers == 2  # one engine per actor, one actor per CPU
    # In the order the command line finds them, each with the in-process answer.
    assert [row["file"] for row in result.rows] == list(in_process)
    assert_same_answers(result.rows, list(in_process.values()))
    broken = result.rows[0]
    assert broken["file"].endswith("broken.jpg")
    assert broken["error"] == (
        "This JPEG file is incomplete or damaged; try saving or downloading it again."
    )
    with output.open(newline="") as text:
        written = list(csv.DictReader(text))
    assert len(written) == 241 and tuple(written[0]) == ray_runner.ROW_FIELDS
    assert written[5]["label"] == result.rows[5]["label"]
    as_json = json.loads(ray_runner.export(result.rows, "json"))
    assert len(as_json) == 241 and as_json[5]["top_k"] == json.loads(result.rows[5]["top_k"])

    store = history.HistoryStore(f"sqlite:///{database}")
    try:
        assert store.count() == 240
        saved = store.find(limit=None, with_thumbnails=True)
    finally:
        store.dispose()
    by_digest = {row["sha256"]: row for row in result.rows}
    for record in saved[:20]:
        row = by_digest[record.sha256]
        assert (record.source, record.model, len(record.top_k)) == ("cli", MODEL, 3)
        assert record.file_name == Path(row["file"]).name
        assert record.top_k[0].label == row["label"]
        assert Image.open(io.BytesIO(record.thumbnail)).size[0] <= 256  # made by a worker
    assert "thumbnail" not in result.rows[0]


def test_a_zip_a_file_and_a_storage_uri_on_ray_give_the_in_process_answers(
    ray_installed, photo_folder, in_process, tmp_path
):
    photos = sorted((photo_folder / "folder 1").glob("*.jpg"))  # photos 100 to 199
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in photos[::2]:
            zipped.write(path, f"some/{path.name}")
        zipped.writestr("broken.jpg", BROKEN)
        zipped.writestr("__MACOSX/._photo.jpg", b"junk")  # no picture: skipped
    single = photo_folder / "folder 0" / "photo 007.jpg"
    storage = photo_folder / "folder 2"  # photos 200 to 239
    output = tmp_path / "answers.parquet"

    result = ray_runner.run(
        MODEL,
        [str(archive), str(single), storage.as_uri(), str(tmp_path / "missing.jpg")],
        address=None,
        num_cpus=2,
        top_k=3,
        output=output,
        fmt="parquet",
        save=False,
        recursive=False,
        batch_size=16,
    )

    zipped_names = ["broken.jpg", *(f"some/{path.name}" for path in photos[::2])]
    stored = sorted(storage.glob("*.jpg"))
    assert [row["file"] for row in result.rows] == [
        *(f"{archive}/{name}" for name in zipped_names),
        str(single),
        *(path.as_uri() for path in stored),
        str(tmp_path / "missing.jpg"),
    ]
    assert (result.classified, result.failed) == (50 + 1 + 40, 2)
    expected = [in_process[str(photo_folder / "broken.jpg")]]
    expected += [in_process[str(path)] for path in [*photos[::2], single, *stored]]
    assert_same_answers(result.rows[:-1], expected)
    assert result.rows[-1]["error"] == "cannot read the file (No such file or directory)"

    import pyarrow.parquet as pq

    table = pq.read_table(output)
    assert table.num_rows == len(result.rows) and tuple(table.column_names) == (
        ray_runner.ROW_FIELDS
    )
    assert table.column("label").to_pylist() == [row["label"] for row in result.rows]


# --- Without Ray: what the workers get, and the one sentence when Ray is missing ----------


@pytest.mark.parametrize("kind", list(models.Kind), ids=[k.value for k in models.Kind])
def test_the_shipped_model_answers_as_the_loaded_one(
    kind, own_database, lite0, lite0_tflite, chelsea_png, coffee_jpeg
):
    """Pickled (as Ray sends it), with the engine file's bytes, not its path: every kind of
    model rebuilt from it gives the loaded model's probabilities."""
    loaded = models.load(keep_a_model_of(kind, lite0_tflite, chelsea_png, coffee_jpeg))
    shipped = ray_runner.ShippedModel.ship(loaded)
    assert (shipped.kind, shipped.class_names) == (kind.value, loaded.spec.class_names)
    assert (shipped.head is not None) == (kind is models.Kind.TAUGHT)
    rebuilt = pickle.loads(pickle.dumps(shipped)).loaded()
    if kind is not models.Kind.TAUGHT:
        assert rebuilt.engine.path is None  # opened from the bytes
    for data in (chelsea_png, coffee_jpeg):
        here, there = classify(data, loaded), classify(data, rebuilt)
        np.testing.assert_allclose(there.probabilities, here.probabilities, atol=1e-6)
        row = ray_runner.classify_picture(rebuilt, data, 3, shipped)
        assert row["label"] == here.top1.label and row["sha256"] == images.content_digest(data)
        assert row["probability"] == pytest.approx(here.top1.probability, abs=1e-6)
    assert ray_runner.classify_picture(rebuilt, BROKEN, 3, shipped)["error"]


def test_without_ray_one_sentence_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ray_runner.RayRunError) as raised:
        ray_runner.run(MODEL, [str(tmp_path)], address=None, top_k=3, output=None, fmt="csv")
    assert str(raised.value) == "Ray is not installed here: pip install '.[ray]'"


def test_the_command_line_classifies_a_folder_on_a_local_ray(
    ray_installed, photo_folder, in_process, tmp_path
):
    from tests.helpers import cli

    output = tmp_path / "answers.parquet"
    ran = cli("predict", str(photo_folder), "-r", "--model", MODEL, "--ray",
              "--output", str(output), "--format", "parquet")  # fmt: skip

    assert ran.returncode == 1, ran.stderr  # the broken JPEG failed; the rest answered
    assert "240 classified, 1 failed on Ray (" in ran.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(output).to_pylist()
    by_file = {row["file"]: row for row in table}
    assert len(by_file) == 241
    for path, outcome in list(in_process.items())[:40]:
        if outcome.prediction is not None:
            assert by_file[path]["label"] == outcome.prediction.top1.label

    printed = cli("predict", str(photo_folder / "folder 0"), "--model", MODEL, "--ray", "--json")
    answers = json.loads(printed.stdout)
    assert printed.returncode == 0 and len(answers) == 100
    assert answers[0]["top_k"][0]["label"] == in_process[answers[0]["file"]].prediction.top1.label


def test_output_without_ray_is_a_usage_error(photo_folder):
    from tests.helpers import cli

    ran = cli("predict", str(photo_folder / "broken.jpg"), "--output", "x.csv")
    assert ran.returncode == 2
    assert ran.stderr.strip() == "error: --output goes with --ray (without, answers are printed)"
