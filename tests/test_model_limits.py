"""Crafted model files cost little and get one sentence: sizes, zips, inputs, configurations,
non-numbers and slowness are refused before they cost memory or time.

Each file is made here, offline: by editing a real LiteRT file (the app's own
EfficientNet-Lite0 export), by writing zips as an attacker would, or (slow tests) with
TensorFlow's converter. The child process that reads a file reports its peak memory in
the server's log, which these tests read.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tracemalloc
import zipfile

import numpy as np
import pytest

from classifier import models
from classifier.models import ModelFileError, derived, own, upload
from classifier.runtime import child
from tests import model_fixtures as mf

MB = 1024 * 1024
LITE0_LABELS = "\n".join(f"class {i}" for i in range(1000)).encode()
CHEAP_MB = 500  # what a refused file may cost the child, at most


def child_peaks(caplog) -> list[int]:
    """Return the peak memory, in MB, of each child process that read a file."""
    return [
        int(match[1])
        for record in caplog.records
        if (match := re.search(r"models\.convert \w+: \w+, peak (\d+) MB", record.message))
    ]


def with_input_side(tflite: bytes, side: int) -> bytes:
    """Return the LiteRT file with its input tensor declared `side` x `side` pixels."""
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(tflite)
    model = schema.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    shape = graph.Tensors(graph.Inputs(0)).ShapeAsNumpy()  # a view into `data`
    assert list(shape) == [1, 224, 224, 3]
    shape[1:3] = side
    return bytes(data)


def keras_zip(config: bytes | None = None, *, chunks: tuple[bytes, int] | None = None) -> bytes:
    """A Keras 3 file (a zip of config.json and metadata.json); `chunks` writes a config of
    (piece, count) without holding it whole."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("config.json", "w", force_zip64=True) as member:
            if chunks is not None:
                piece, count = chunks
                for _ in range(count):
                    member.write(piece)
            member.write(config or b"{}")
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.12.0"}))
        archive.writestr("model.weights.h5", b"")
    return buffer.getvalue()


def refused(caplog, data: bytes, labels: bytes | None, message: str) -> None:
    """Assert that adding the file is refused with `message`, cheaply."""
    caplog.set_level(logging.INFO, logger="classifier.runtime.child")
    with pytest.raises(ModelFileError, match=re.escape(message)) as raised:
        models.read_model(data, labels)
    assert "\n" not in str(raised.value)
    assert all(peak < CHEAP_MB for peak in child_peaks(caplog)), child_peaks(caplog)


# --- LiteRT files ------------------------------------------------------------------------


def test_a_litert_input_of_30000_pixels_a_side_is_refused_before_memory_is_set_aside(
    caplog, lite0_tflite
):
    crafted = with_input_side(lite0_tflite, 30_000)
    refused(caplog, crafted, LITE0_LABELS, "takes pictures of 30000 x 30000 pixels; at most "
            "1024 x 1024 are accepted")  # fmt: skip
    assert child_peaks(caplog)  # the child read it, and said what it cost


def test_bytes_after_a_litert_model_are_refused(caplog, lite0_tflite):
    refused(caplog, lite0_tflite + bytes(30_000_000), LITE0_LABELS,
            "holds 30.0 MB that its model does not use")  # fmt: skip


def test_the_real_litert_model_is_accepted(caplog, lite0_tflite):
    caplog.set_level(logging.INFO, logger="classifier.runtime.child")
    candidate = models.read_model(lite0_tflite, LITE0_LABELS)
    assert candidate.details["size"] == 224
    assert candidate.details["failing_scalings"] == []
    [peak] = child_peaks(caplog)
    assert peak < CHEAP_MB


def test_a_zip_bomb_model_is_refused_by_its_size_before_it_is_unpacked(caplog, lite0_tflite):
    bomb = mf.zip_of({"model.tflite": lite0_tflite + bytes(500 * MB), "labels.txt": b"a\nb\n"})
    assert len(bomb) < 20 * MB
    tracemalloc.start()
    try:
        refused(caplog, bomb, None, "This zip expands to 542.9 MB; at most 100 MB of model and "
                "its labels are accepted")  # fmt: skip
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * MB  # never unpacked in the server
    assert child_peaks(caplog) == []  # nor handed to a child


def test_a_model_file_over_the_setting_is_refused(monkeypatch, lite0_tflite):
    monkeypatch.setenv("CLASSIFIER_MAX_MODEL_BYTES", "10000000")
    with pytest.raises(ModelFileError, match=re.escape("This file is 18.6 MB; model files up "
                                                       "to 10 MB are accepted.")):  # fmt: skip
        models.read_model(lite0_tflite, LITE0_LABELS)


# --- Keras files: refused before TensorFlow is imported ------------------------------------


def test_a_keras_file_with_a_10_mb_layer_name_costs_little(caplog):
    config = {"class_name": "Functional", "config": {"name": "a" * (10 * MB), "layers": []}}
    data = keras_zip(json.dumps(config).encode())
    assert len(data) < 100_000
    refused(caplog, data, b"a\nb\n", "configuration is larger than 4 MB")


def test_a_keras_layer_name_of_a_million_characters_is_refused(caplog):
    config = {"class_name": "Functional", "config": {"name": "a" * 1_000_000, "layers": []}}
    refused(caplog, keras_zip(json.dumps(config).encode()), b"a\nb\n",
            "names a layer with more than 1,000 characters")  # fmt: skip


def test_a_keras_file_of_whitespace_costs_little(caplog):
    data = keras_zip(chunks=(b" " * MB, 300))
    assert len(data) < 2 * MB
    refused(caplog, data, b"a\nb\n", "This zip expands to 314.6 MB")  # 300 MiB of spaces
    smaller = keras_zip(chunks=(b" " * MB, 50))  # within the size of a model: the child reads it
    refused(caplog, smaller, b"a\nb\n", "configuration is larger than 4 MB")
    assert child_peaks(caplog)


def test_a_keras_configuration_nested_too_deeply_is_one_sentence(caplog):
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    refused(caplog, keras_zip(deep), b"a\nb\n", "nested too deeply")


# --- Labels and zips ---------------------------------------------------------------------


def test_a_100_mb_labels_file_is_refused_before_it_is_decoded(lite0_tflite):
    labels = b"x\n" * (50 * MB)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="labels files up to 4 MB are accepted"):
            models.read_model(lite0_tflite, labels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * MB


def test_deeply_nested_json_labels_are_one_sentence():
    with pytest.raises(ModelFileError, match="must be a list of class names"):
        upload.parse_labels(b"[" * 100_000 + b"]" * 100_000)


def zip_of_empty_files(count: int) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for number in range(count):
            archive.writestr(f"{number:06}.txt", b"")
    return bytearray(buffer.getvalue())


def costs_the_server(data: bytes, message: str) -> int:
    """Return the bytes reading an upload took in this process before it was refused."""
    data = bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=message):
            upload.read_upload(data, None, 100 * MB)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_zip_whose_end_record_understates_its_files_is_refused_before_its_index_is_read():
    data = zip_of_empty_files(40_000)
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (2).to_bytes(2, "little") * 2  # "two files"
    assert costs_the_server(data, r"index is .* so it is refused") < MB


def test_a_zip64_archive_is_refused_whatever_its_classic_end_record_says():
    data = zip_of_empty_files(100_000)  # past 65,535 files: zip64 records
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 16] = (1).to_bytes(2, "little") * 2 + (46).to_bytes(4, "little")
    assert costs_the_server(data, "at most 64 are accepted") < MB


# --- Running: non-numbers and slowness (TensorFlow builds the models) ------------------------


def sqrt_model_tflite() -> bytes:
    """A float LiteRT model whose two scores are sqrt(mean(x) - 0.6): non-numbers for every
    input scaling but raw 0-255 pixels."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32)])
    def scores(x):
        root = tf.sqrt(tf.reduce_mean(x, axis=[1, 2, 3]) - 0.6)
        return tf.stack([root, 2 * root], axis=1)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [scores.get_concrete_function()], scores
    )
    return converter.convert()


def slow_model_tflite(steps: int) -> bytes:
    """A float LiteRT model that counts to `steps` in a loop before it answers."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32)])
    def scores(x):
        _, total = tf.while_loop(
            lambda i, t: i < steps, lambda i, t: (i + 1, t + 1.0), (tf.constant(0), 0.0)
        )
        mean = tf.reduce_mean(x, axis=[1, 2, 3]) + total * 0.0
        return tf.nn.softmax(tf.stack([mean, -mean], axis=1))

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [scores.get_concrete_function()], scores
    )
    return converter.convert()


@pytest.mark.slow
def test_non_numbers_for_a_preprocessing_are_refused_for_it_and_never_shown(chelsea_png):
    from classifier.predict import classify

    candidate = models.read_model(sqrt_model_tflite(), b"left\nright\n")
    assert sorted(candidate.details["failing_scalings"]) == [
        "imagenet", "minus_one_to_one", "zero_to_one"
    ]  # fmt: skip
    with pytest.raises(ModelFileError, match=r"non-numbers .* pick another preprocessing"):
        models.save("Square roots", candidate, "minus_one_to_one")
    with pytest.raises(Exception, match="its scores are not numbers") as raised:
        classify(chelsea_png, candidate.loaded("minus_one_to_one"))
    assert type(raised.value).__name__ == "ModelError"
    answer = classify(chelsea_png, candidate.loaded("raw"))
    assert np.all(np.isfinite(answer.probabilities))


@pytest.mark.slow
def test_a_slow_model_is_refused_and_holds_up_no_export_of_the_apps_own(caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="classifier.runtime.child")
    slow = slow_model_tflite(100_000_000)  # 15-30 s of processor time a picture
    with pytest.raises(ModelFileError, match=r"takes [\d.]+ s of processor time per picture; "
                                             r"at most 5 s are accepted"):  # fmt: skip
        models.read_model(slow, b"up\ndown\n")

    # A person's file being checked (the checks' lock held) never holds up the app's own
    # exports: they take turns among themselves only.
    with child._light:
        maps = derived.open_exported(tmp_path / "maps.tflite", "maps", "efficientnet_lite0")
    assert maps.classes > 0


# --- What a killed server or another replica leaves behind ---------------------------------


def test_a_model_removed_on_another_server_leaves_no_file_on_this_one(own_database, monkeypatch,
                                                                      lite0_tflite):  # fmt: skip
    from classifier.history import registry

    kept = models.save("Lite copy", models.read_model(lite0_tflite, LITE0_LABELS), "raw")
    path = own.file_path(kept.entry)
    assert path.is_file()
    registry.remove_model(own.store(), "Lite copy")  # another server: the row, not our file
    assert models.drop_orphaned_files() == 0  # a file this new may be a model being kept
    monkeypatch.setattr(own, "ORPHAN_GRACE_SECONDS", 0)

    assert models.drop_orphaned_files() == 1
    assert not path.exists()


def test_a_file_left_by_a_killed_server_while_adding_is_deleted_later(own_database, tmp_path):
    import os
    import time

    scratch = tmp_path / "data" / "tmp"
    left = scratch / f"{upload.SCRATCH_PREFIX}killed"  # as `kill -9` during a check leaves it
    recent = scratch / f"{upload.SCRATCH_PREFIX}running"  # another check, still running
    for folder in (left, recent):
        folder.mkdir(parents=True)
        (folder / "source.tflite").write_bytes(b"model")
    old = time.time() - upload.STALE_SCRATCH_SECONDS - 60
    os.utime(left, (old, old))

    with pytest.raises(ModelFileError):
        models.read_model(b"not a model", None)
    with pytest.raises(ModelFileError, match="needs a labels file"):
        models.read_model(b"\x1c\x00\x00\x00TFL3" + bytes(32))

    assert not left.exists()
    assert (recent / "source.tflite").read_bytes() == b"model"


def test_labels_that_do_not_match_say_so_in_plain_numbers(lite0_tflite):
    with pytest.raises(ModelFileError, match=re.escape(
        "The model gives 1,000 class scores but the labels name 1 class; they must match."
    )):  # fmt: skip
        models.read_model(lite0_tflite, b"only\n")


@pytest.mark.slow
def test_a_keras_file_keras_cannot_load_is_one_sentence_without_its_internals(caplog):
    layer = {"module": "keras.layers", "class_name": "Dense", "registered_name": None,
             "config": {"name": "dense", "units": "many"}}  # fmt: skip
    config = {"module": "keras", "class_name": "Sequential", "registered_name": None,
              "config": {"name": "broken", "layers": [layer]}}  # fmt: skip
    caplog.set_level(logging.INFO, logger="classifier.runtime.child")
    with pytest.raises(ModelFileError) as raised:
        models.read_model(keras_zip(json.dumps(config).encode()), b"a\nb\n")
    assert str(raised.value) == (
        "Keras cannot load this model: it may be damaged, or saved by a Keras version this "
        "app cannot read."
    )
    assert any("Keras cannot load the model:" in r.message for r in caplog.records)  # the log
