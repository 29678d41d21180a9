"""Keeping added models in the database (`classifier/models/own.py`): the registry on
both databases, keeping a file next to its row, rewriting a damaged copy, removing a model,
and the command line `classifier models add/remove`, which keeps and removes them.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

import pytest

from classifier import history, models
from classifier.history import registry
from classifier.predict import classify
from tests.conftest import EXAMPLES, photo
from tests.helpers import cli

pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)


# --- The registry, on SQLite and PostgreSQL -------------------------------------------


DETAILS = {"size": 224, "classes": 2, "class_names": ["a", "b"], "scaling": "raw"}


def test_the_registry_keeps_a_model_and_its_file_together(database_url):
    store = history.HistoryStore(database_url)
    try:
        entry = registry.add_model(store, "Mine", "LiteRT file", "ab" * 32, DETAILS, b"file")
        assert [m.name for m in registry.list_models(store)] == ["Mine"]
        assert registry.get_model(store, "Mine") == entry
        assert registry.model_data(store, "Mine") == b"file"
        with pytest.raises(registry.ModelNameTaken, match="exists already"):
            registry.add_model(store, "Mine", "other", "cd" * 32, DETAILS, b"other file")
        assert registry.model_data(store, "Mine") == b"file"  # the first one is untouched
        assert registry.remove_model(store, "Mine") is True
        assert registry.remove_model(store, "Mine") is False
        assert registry.model_data(store, "Mine") is None
        assert registry.list_models(store) == []
        with store._engine.connect() as conn:  # no file left without its row
            assert conn.exec_driver_sql("SELECT count(*) FROM model_files").scalar_one() == 0
    finally:
        store.dispose()


def test_a_read_only_store_refuses_to_add_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    history.HistoryStore(url).dispose()
    store = history.HistoryStore(url, read_only=True)
    try:
        with pytest.raises(history.HistoryReadOnlyError):
            registry.add_model(store, "Mine", "x", "ab" * 32, DETAILS, b"file")
    finally:
        store.dispose()


# --- Real model files (built with tf-keras and the TFLite converter) ------------------


@pytest.mark.slow
def test_a_damaged_copy_in_the_data_folder_is_rewritten_from_the_database(made):
    model = models.save("Desk things", models.read_model(made["float_zip"]), "minus_one_to_one")
    path = model.path()
    path.write_bytes(b"garbage")
    spec = models.find("Desk things").spec()
    assert spec.engine_file == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == model.entry.sha256


@pytest.mark.slow
def test_removing_a_model_removes_its_file_and_its_engine(made):
    model = models.save("Gone soon", models.read_model(made["float_zip"]), "minus_one_to_one")
    models.load("Gone soon")
    assert models.remove("Gone soon") is True
    assert not model.path().exists()
    assert not models.is_loaded("Gone soon")
    with pytest.raises(
        models.UnknownModel, match=re.escape("or an added model. Received: 'Gone soon'")
    ):
        models.load("Gone soon")


# The command line: `classifier models add` reads a file and keeps it, `models remove` removes
# it; what it reads is tested in tests/test_upload.py, the rest of the CLI in tests/test_cli.py.


@pytest.mark.slow
def test_the_command_line_adds_predicts_with_and_removes_a_model(made, tmp_path):
    zip_path = tmp_path / "converted_keras.zip"
    zip_path.write_bytes(made["keras_zip"])

    done = cli("models", "add", "Desk things", str(zip_path))
    assert done.returncode == 0, done.stderr
    assert "added Desk things: 3 classes, 224x224, minus_one_to_one" in done.stderr
    listed = cli("models")
    assert "Desk things  (added" in listed.stdout and "3: Cat, Coffee, Rocket" in listed.stdout
    done = cli("predict", "--model", "Desk things", "--json", str(EXAMPLES / "cat.jpg"))
    assert done.returncode == 0, done.stderr
    (answer,) = json.loads(done.stdout)
    assert answer["model"] == "Desk things"
    assert answer["top_k"][0]["label"] == "Cat"
    assert len(answer["top_k"]) == 3  # the default top 5, but the model has 3 classes
    expected = classify(photo("cat"), models.load("Desk things"))
    assert answer["top_k"][0]["probability"] == pytest.approx(expected.top1.probability, abs=1e-6)
    again = cli("models", "add", "Desk things", str(zip_path))
    assert again.returncode == 1 and "exists already" in again.stderr
    assert cli("models", "remove", "Desk things").returncode == 0
    gone = cli("predict", "--model", "Desk things", str(EXAMPLES / "cat.jpg"))
    assert gone.returncode == 2 and "Received: 'Desk things'" in gone.stderr


@pytest.mark.slow
def test_the_command_line_asks_for_the_preprocessing_when_the_file_does_not_say(made, tmp_path):
    model_path, labels_path = tmp_path / "plain.tflite", tmp_path / "labels.txt"
    model_path.write_bytes(models.read_model(made["float_zip"]).data)
    labels_path.write_text("cat\ncoffee\nrocket\n")
    args = [sys.executable, "-m", "classifier", "models", "add", "Plain", str(model_path)]
    done = subprocess.run(
        [*args, "--labels", str(labels_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "add --preprocess with one of" in done.stderr
    done = subprocess.run(
        [*args, "--labels", str(labels_path), "--preprocess", "minus_one_to_one"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [m.name for m in models.all_models()] == ["Plain"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Give the model a name"),
        ("   ", "Give the model a name"),
        ("x" * 61, "at most 60 characters"),
        ("MobileNetV2", "name of a built-in model"),
        ("efficientnet_lite0", "name of a built-in model"),
        ("a\x00b", "control characters"),
    ],
)
def test_unusable_model_names_are_refused(name, message):
    with pytest.raises(models.ModelFileError, match=re.escape(message)):
        models.check_name(name)


def test_names_are_tidied():
    assert models.check_name("  Cats   and dogs ") == "Cats and dogs"
