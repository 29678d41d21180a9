"""ONNX models, end to end: read and checked by the real child process, run on the real
ONNX Runtime, kept in the database, and used by everything above the engine.

- Crafted files (`tests/onnx_files.py`, and two made here) are refused with one sentence
  each, and a file's external weights are never opened.
- A PyTorch export answers as PyTorch itself does on the same input, within 1e-4, before
  and after it is kept; channels-last, any-size and softmax-ending exports are told apart.
- A kept model's file is in its database row and copied back by its digest, on SQLite
  and PostgreSQL; Where it looked, batch jobs and the HTTP API use it like any other.
- A file that makes ONNX Runtime ask for gigabytes is the child's problem, not the server's.

Tests that export with PyTorch are marked `needs_torch`; the rest need only onnx.helper.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import re
import resource
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from classifier import explain, images, jobs, models
from classifier.config import get_settings
from classifier.history import registry
from classifier.jobs import runner as runners
from classifier.models import ModelError, ModelFileError, own, upload
from classifier.predict import classify
from tests import onnx_files as of
from tests.conftest import EXAMPLES, photo
from tests.onnx_files import needs_torch

pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)

LABELS = b"red\ngreen\nblue\n"  # the helper-made models' three classes
NAME = "Helper ONNX"
PHOTO_NAMES = tuple(path.stem for path in sorted(EXAMPLES.glob("*.jpg")))  # the five examples


def nothing_kept(tmp_path: Path) -> bool:
    folder = tmp_path / "data" / "models"
    return models.all_models() == [] and (not folder.exists() or not any(folder.iterdir()))


def decoded(name: str, size: int = of.SIZE) -> images.DecodedImage:
    """An example photo decoded as the app decodes it for a model of `size` pixels."""
    return images.decode_image(photo(name), min_side=images.min_side_for(size))


def nchw(batch: np.ndarray) -> np.ndarray:
    return batch.transpose(0, 3, 1, 2)


# --- Crafted files: one sentence each -------------------------------------------------------


def grey_input_model() -> bytes:
    """A classifier of one-channel pictures, (1, 1, 224, 224): not RGB."""
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["pixel_values"], ["pool"]),
            helper.make_node("Flatten", ["pool"], ["features"]),
            helper.make_node("Gemm", ["features", "fc.weight", "fc.bias"], ["logits"], transB=1),
        ],
        "grey_input",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 1, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
        [
            numpy_helper.from_array(np.ones((3, 1), np.float32), "fc.weight"),
            numpy_helper.from_array(np.zeros(3, np.float32), "fc.bias"),
        ],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", of.OPSET)], ir_version=of.IR_VERSION
    ).SerializeToString()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            of.custom_op_model,
            "This ONNX model uses the custom operation MagicOp of “com.example.custom”",
            id="custom operation",
        ),
        pytest.param(
            of.two_inputs_model,
            "This model has 2 input(s) and 1 output(s); an image classifier has one of each.",
            id="two inputs",
        ),
        pytest.param(
            of.two_outputs_model,
            "This model has 1 input(s) and 2 output(s); an image classifier has one of each.",
            id="two outputs",
        ),
        pytest.param(of.not_an_image_model, "not a batch of pictures", id="not an image"),
        pytest.param(grey_input_model, "only RGB pictures are supported", id="grey"),
        pytest.param(
            of.not_a_vector_output_model,
            "gives output of shape [1, 4, 224, 224], not one vector of class scores",
            id="map output",
        ),
        pytest.param(
            of.huge_input_model,
            "takes pictures of 4096 x 4096 pixels; at most 1024 x 1024 are accepted",
            id="huge input",
        ),
        pytest.param(of.garbage, "This file is not a model this app can read", id="garbage"),
        pytest.param(
            lambda: of.truncated(of.valid_helper_model()),
            "This ONNX file cannot be read: it is damaged or cut short.",
            id="truncated",
        ),
    ],
)
def test_a_crafted_file_is_refused_with_one_sentence_and_nothing_is_kept(make, message, tmp_path):
    with pytest.raises(ModelFileError, match=re.escape(message)) as raised:
        models.read_model(make(), LABELS)
    assert "\n" not in str(raised.value) and "Traceback" not in str(raised.value)
    assert nothing_kept(tmp_path)


IN_OPEN, IN_ACCESS = 0x20, 0x01  # <sys/inotify.h>


@contextlib.contextmanager
def watched_for_opening(path: Path) -> Iterator[Callable[[], bool]]:
    """Yield a function telling whether any process (a child too) opened or read `path`
    since the watch began, as Linux's inotify saw it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux's")
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    try:
        watch = libc.inotify_add_watch(fd, os.fsencode(path), IN_OPEN | IN_ACCESS)
        assert watch >= 0, os.strerror(ctypes.get_errno())

        def opened() -> bool:
            try:
                return bool(os.read(fd, 4096))
            except BlockingIOError:
                return False

        yield opened
    finally:
        os.close(fd)


@pytest.mark.parametrize("where", ["absolute path", "relative path out of its folder"])
def test_weights_kept_in_another_file_are_refused_and_that_file_is_never_opened(
    where, tmp_path, caplog
):
    import onnxruntime

    # The pair is a working model when its weights file is beside it...
    of.external_data_model("weights.bin", folder=tmp_path)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    assert session.run(None, {"pixel_values": np.zeros((1, 3, 224, 224), np.float32)})
    weights = tmp_path / "weights.bin"
    marker = b"SECRET-WEIGHTS!!"
    weights.write_bytes(marker * (weights.stat().st_size // len(marker)))  # same size
    # ...and the file added points at it: by its absolute path, or from the folder where an
    # added file waits while it is checked (<data dir>/tmp/added-model-*/) back up to it.
    location = str(weights) if where == "absolute path" else "../../../weights.bin"
    assert (tmp_path / "data" / "tmp" / "added-model-x" / location).resolve() == weights

    caplog.set_level(logging.INFO)
    with watched_for_opening(weights) as opened:
        with pytest.raises(ModelFileError) as raised:
            models.read_model(of.external_data_model(location), LABELS)
        assert not opened()
        weights.read_bytes()  # the watch works: reading the file is seen
        assert opened()
    assert str(raised.value) == (
        "This ONNX file keeps 1 of its tensors in other files (external data), which are never "
        "read here; export the model as one file."
    )
    assert all(marker.decode() not in record.getMessage() for record in caplog.records)
    assert nothing_kept(tmp_path)


def test_a_model_file_over_the_size_setting_is_refused_by_its_size(monkeypatch):
    data = of.valid_helper_model()
    assert 1_400 < len(data) < 1_500
    monkeypatch.setenv("CLASSIFIER_MAX_MODEL_BYTES", "1000")
    with pytest.raises(
        ModelFileError,
        match=re.escape("This file is 1.5 KB; model files up to 1 KB are accepted."),
    ):
        models.read_model(data, LABELS)


# --- Zips and labels --------------------------------------------------------------------------


def test_a_zip_of_the_model_and_its_labels_needs_no_labels_file():
    candidate = models.read_model(of.zip_with_labels(of.valid_helper_model(), ["a", "b", "c"]))
    assert candidate.format == "onnx"
    assert candidate.class_names == ("a", "b", "c")
    assert candidate.source == "zip (model.onnx) from onnx-files-test"


def test_an_onnx_file_alone_asks_for_its_labels():
    with pytest.raises(ModelFileError, match=re.escape("An ONNX file needs a labels file")):
        models.read_model(of.valid_helper_model())


def test_labels_must_name_as_many_classes_as_the_model_gives_scores():
    with pytest.raises(
        ModelFileError,
        match=re.escape(
            "The model gives 3 class scores but the labels name 2 classes; they must match."
        ),
    ):
        models.read_model(of.valid_helper_model(), b"left\nright\n")
    with pytest.raises(ModelFileError, match="labels name 4 classes"):
        models.read_model(of.zip_with_labels(of.valid_helper_model(), ["a", "b", "c", "d"]))


# --- PyTorch exports answer as PyTorch does -------------------------------------------------


@pytest.fixture(scope="module")
def torch_nchw(tmp_path_factory) -> of.TorchModel:
    """A PyTorch CNN (NCHW, ImageNet preprocessing) trained, as it were, to give each example
    photo its own class: the five classes are the photos' names."""
    crops = [images.fit_to_input(decoded(name).image, 224, 0.875) for name in PHOTO_NAMES]
    pictures = nchw(upload.scaling("imagenet").scale(np.stack(crops).astype(np.float32)))
    path = tmp_path_factory.mktemp("torch") / "cnn.onnx"
    return of.torch_cnn_model(path, len(PHOTO_NAMES), pictures=pictures)


@needs_torch
def test_a_pytorch_export_answers_as_pytorch_does_before_and_after_it_is_kept(torch_nchw):
    data = torch_nchw.path.read_bytes()
    candidate = models.read_model(data, "\n".join(PHOTO_NAMES).encode())
    assert candidate.format == "onnx" and candidate.source.startswith("ONNX file from pytorch ")
    assert candidate.details["layout"] == "NCHW" and candidate.details["size"] == 224
    assert candidate.details["size_assumed"] is False
    assert candidate.details["outputs"] == "logits"
    assert candidate.detected_scaling == "imagenet" and candidate.detected_crop == 0.875
    trying = candidate.loaded("imagenet")
    spec = candidate.spec("imagenet")
    models.save("Photos by PyTorch", candidate, "imagenet")
    kept = models.load("Photos by PyTorch")
    assert kept.engine.backend == "ONNX Runtime"

    for name in PHOTO_NAMES:
        picture = decoded(name).image
        expected = torch_nchw.run(nchw(spec.prepare(picture)))[0]
        for answer in (classify(photo(name), trying), classify(photo(name), kept)):
            assert np.array_equal(answer.model_input, spec.crop(picture))  # the same input
            np.testing.assert_allclose(answer.probabilities, expected, atol=1e-4)
            assert [c.index for c in answer.top(5)] == np.argsort(-expected).tolist()
            assert answer.top1.label == name  # its own class: scaled and cropped as trained


@needs_torch
def test_a_channels_last_export_leaves_the_preprocessing_to_the_person(tmp_path):
    model = of.torch_cnn_model(tmp_path / "nhwc.onnx", layout="NHWC")
    candidate = models.read_model(model.path.read_bytes(), LABELS)
    assert candidate.details["layout"] == "NHWC"
    assert candidate.detected_scaling is None and candidate.detected_crop == 1.0
    chosen = candidate.loaded("zero_to_one")  # once the person chose
    for name in ("cat", "rocket"):
        expected = model.run(candidate.spec("zero_to_one").prepare(decoded(name).image))[0]
        answer = classify(photo(name), chosen)
        np.testing.assert_allclose(answer.probabilities, expected, atol=1e-4)


@needs_torch
def test_an_export_of_any_picture_size_is_given_224_pixels(tmp_path):
    model = of.torch_cnn_model(tmp_path / "any_size.onnx", dynamic_size=True)
    candidate = models.read_model(model.path.read_bytes(), LABELS)
    assert candidate.details["size"] == 224 and candidate.details["size_assumed"] is True
    spec = candidate.spec("imagenet")
    answer = classify(photo("coffee"), candidate.loaded("imagenet"))
    assert answer.model_input.shape == (224, 224, 3)
    expected = model.run(nchw(spec.prepare(decoded("coffee").image)))[0]
    np.testing.assert_allclose(answer.probabilities, expected, atol=1e-4)


@needs_torch
def test_an_export_ending_in_softmax_gives_probabilities_softmaxed_once(tmp_path):
    model = of.torch_cnn_model(tmp_path / "softmax.onnx", softmax=True)
    candidate = models.read_model(model.path.read_bytes(), LABELS)
    assert candidate.details["outputs"] == "probabilities"
    spec = candidate.spec("imagenet")
    expected = model.run(nchw(spec.prepare(decoded("flower").image)))[0]
    assert np.abs(of.softmax(expected[np.newaxis])[0] - expected).max() > 0.01  # twice differs
    answer = classify(photo("flower"), candidate.loaded("imagenet"))
    np.testing.assert_allclose(answer.probabilities, expected, atol=1e-4)


# --- Kept like every added model, on both databases ---------------------------------------------


def helper_reference(loaded: models.LoadedModel, name: str) -> np.ndarray:
    """What the helper-made model gives an example photo, worked out with NumPy."""
    picture = decoded(name, loaded.spec.input_size).image
    return of.valid_helper_reference(nchw(loaded.spec.prepare(picture)))[0]


def test_an_onnx_model_is_kept_in_its_row_and_copied_back_by_its_digest(
    database_url, monkeypatch, tmp_path
):
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", database_url)
    try:
        data = of.valid_helper_model()
        digest = hashlib.sha256(data).hexdigest()
        kept = models.save(NAME, models.read_model(data, LABELS), "imagenet")
        assert kept.entry.sha256 == digest
        assert registry.model_data(own.store(), NAME) == data
        path = tmp_path / "data" / "models" / f"{digest}.onnx"
        assert kept.path() == path and path.read_bytes() == data
        assert "centre crop 87.5% of the short side" in kept.preprocessing

        loaded = models.load(NAME)
        assert loaded.engine.backend == "ONNX Runtime"
        first = classify(photo("cat"), loaded)
        np.testing.assert_allclose(first.probabilities, helper_reference(loaded, "cat"), atol=1e-4)
        assert first.top1.label in ("red", "green", "blue")

        path.unlink()  # lost from the data folder
        again = classify(photo("cat"), models.load(NAME))
        assert path.read_bytes() == data
        np.testing.assert_allclose(again.probabilities, first.probabilities, atol=1e-6)

        # A second server on the same database, with a data folder of its own.
        monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path / "second"))
        models.forget(NAME)  # this process's engine: the other server opens its own
        elsewhere = models.load(NAME)
        assert elsewhere.engine.backend == "ONNX Runtime"
        assert (tmp_path / "second" / "models" / f"{digest}.onnx").read_bytes() == data
        answer = classify(photo("cat"), elsewhere)
        np.testing.assert_allclose(answer.probabilities, first.probabilities, atol=1e-6)

        assert models.remove(NAME) is True
        assert not (tmp_path / "second" / "models" / f"{digest}.onnx").exists()
        assert registry.model_data(own.store(), NAME) is None
        assert models.all_models() == []
    finally:
        own.close_stores()  # before the PostgreSQL schema is dropped


# --- Everything above the engine ----------------------------------------------------------------


@pytest.fixture
def helper_kept() -> models.LoadedModel:
    """The helper-made ONNX model, kept as NAME and loaded."""
    models.save(NAME, models.read_model(of.valid_helper_model(), LABELS), "imagenet")
    return models.load(NAME)


def test_where_it_looked_for_an_onnx_model_is_an_occlusion_map_of_its_own_answer(helper_kept):
    prediction = classify(photo("coffee"), helper_kept)
    found = explain.explain(helper_kept, prediction.model_input)
    assert found.method == explain.OCCLUSION
    assert found.probabilities == pytest.approx(prediction.probabilities, abs=1e-6)
    heat = found.map(prediction.top1.index)
    assert heat.shape[0] == heat.shape[1]
    assert explain.MIN_GRID <= heat.shape[0] <= explain.MAX_GRID
    assert heat.max() == 1.0


def test_a_batch_job_with_an_onnx_model_answers_with_its_class_names(helper_kept):
    store = own.store()
    new = jobs.NewJob()
    for name in ("cat", "coffee", "rocket"):
        new.add(f"{name}.jpg", photo(name))
    job = new.submit(store, title="three", model=NAME, top_k=3, thumbnails=True, source="app")

    settings = get_settings()
    assert runners.Runner(settings.history_url(), settings.data_dir).run_next()

    job = jobs.get(store, job.public_id)
    assert (job.status, job.done, job.failed) == ("done", 3, 0)
    for item in jobs.items(store, job):
        alone = classify(photo(item.file_name.removesuffix(".jpg")), helper_kept)
        assert item.label == alone.top1.label and item.label in ("red", "green", "blue")
        assert item.probability == pytest.approx(alone.top1.probability, abs=1e-5)


@pytest.mark.server
def test_the_api_answers_with_an_onnx_models_classes(helper_kept, tmp_path):
    from benchmarks import server as server_tools
    from tests.test_api import API, client, predict

    expected = classify(photo("cat"), helper_kept).top(3)
    # own_database's database and data folder are tmp_path's, as the server's are.
    with server_tools.serve(tmp_path) as running, client(running.url) as http:
        listed = http.get(f"{API}/models").json()["models"]
        response = predict(http, ("cat.jpg", photo("cat")), model=NAME, top_k=3)
    assert NAME in [model["name"] for model in listed]
    assert response.status_code == 200, response.text
    (answer,) = response.json()["predictions"]
    assert answer["model"] == NAME
    assert [c["label"] for c in answer["top_k"]] == [c.label for c in expected]
    np.testing.assert_allclose(
        [c["probability"] for c in answer["top_k"]], [c.probability for c in expected], atol=1e-5
    )


# --- A file that asks ONNX Runtime for gigabytes ---------------------------------------------


def memory_hungry_model(gigabytes: int = 3) -> bytes:
    """A valid classifier (pooled colour to three scores) that adds the mean of a constant
    tensor of `gigabytes` GiB, which ONNX Runtime fills while it runs a picture."""
    elements = gigabytes * 2**30 // 4  # float32
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["pixel_values"], ["pool"]),
            helper.make_node("Flatten", ["pool"], ["colour"]),
            helper.make_node("ConstantOfShape", ["shape"], ["huge"], value=one),
            helper.make_node("ReduceMean", ["huge"], ["mean"], axes=[1], keepdims=0),
            helper.make_node("Add", ["colour", "mean"], ["logits"]),
        ],
        "memory_hungry",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(np.array([3, elements // 3], np.int64), "shape")],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", of.OPSET)], ir_version=of.IR_VERSION
    ).SerializeToString()


def test_a_model_asking_for_gigabytes_is_stopped_in_the_child_and_the_server_carries_on(
    caplog, tmp_path
):
    caplog.set_level(logging.INFO, logger="classifier.runtime.child")
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with pytest.raises(ModelFileError) as raised:
        models.read_model(memory_hungry_model(), LABELS)
    assert str(raised.value) == (
        "Reading this model needed more than 1,024 MB of memory; it was stopped."
    )
    assert any("inspect-onnx: memory" in record.getMessage() for record in caplog.records)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before_mb < 500
    assert nothing_kept(tmp_path)

    # The server is unharmed: the next file is read, kept and answers.
    models.save(NAME, models.read_model(of.valid_helper_model(), LABELS), "imagenet")
    answer = classify(photo("palace"), models.load(NAME))
    assert answer.top1.label in ("red", "green", "blue")


# --- What a file may hide deeper down -----------------------------------------------------

EXTERNAL_DATA = (
    "This ONNX file keeps 1 of its tensors in other files (external data), which are never "
    "read here; export the model as one file."
)


@pytest.mark.parametrize(
    "make",
    [of.external_data_in_a_function_model, of.external_sparse_constant_model],
    ids=["in an If inside a local function", "a Constant's sparse value"],
)
def test_a_file_named_anywhere_inside_the_model_is_refused_and_never_read(
    make, tmp_path, monkeypatch
):
    import onnxruntime

    from classifier.runtime.engines import OnnxEngine

    monkeypatch.chdir(tmp_path)  # ONNX Runtime looks for a relative path from here
    (tmp_path / "secret.bin").write_bytes(bytes([5, 6, 7, 8]) + b"\0" * 12)
    data = make("secret.bin")
    # Opened as ONNX Runtime opens it by default, the model answers with the file's bytes.
    plain = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    leaked = plain.run(None, {"pixel_values": np.zeros((1, 3, 224, 224), np.float32)})[0]
    assert leaked.ravel()[0] != 0

    with pytest.raises(ModelFileError) as raised:
        models.read_model(data, b"a\nb\nc\nd\n")
    assert str(raised.value) == EXTERNAL_DATA
    assert nothing_kept(tmp_path)
    # The app's own sessions read no other file either, whoever hands them such a model.
    with pytest.raises(Exception, match="onnx-no-external-data-"):  # looked for there only
        OnnxEngine(data, 1)


def test_a_custom_operation_inside_a_local_functions_if_is_refused_by_the_check():
    with pytest.raises(ModelFileError) as raised:
        models.read_model(of.custom_op_in_a_function_model(), b"a\nb\nc\nd\n")
    assert str(raised.value) == (
        "This ONNX model uses the custom operation Evil of “evil.ops”, which needs code of its "
        "own; models with custom operations are refused."
    )


def test_an_export_leaving_its_channels_unnamed_is_taken_as_channels_first():
    candidate = models.read_model(of.unnamed_channels_model(), LABELS)
    assert (candidate.details["layout"], candidate.details["size"]) == ("NCHW", 224)
    assert candidate.details["size_assumed"] is True
    assert candidate.detected_scaling == "imagenet"
    loaded = candidate.loaded("imagenet")
    batch = loaded.spec.prepare(decoded("coffee").image)
    expected = of.valid_helper_reference(nchw(batch))
    assert np.allclose(loaded.engine.run(batch), expected, atol=1e-5)


def test_dimensions_written_as_minus_one_are_taken_as_not_fixed():
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("GlobalAveragePool", ["x"], ["pool"]),
             helper.make_node("Flatten", ["pool"], ["logits"])],
            "minus_one",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, -1, -1])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [-1, 3])],
        ),
        opset_imports=[helper.make_opsetid("", of.OPSET)],
        ir_version=of.IR_VERSION,
    )  # fmt: skip
    candidate = models.read_model(model.SerializeToString(), LABELS)
    assert (candidate.details["size"], candidate.details["size_assumed"]) == (224, True)


def test_a_model_looping_past_the_time_limit_is_stopped_with_one_sentence(monkeypatch):
    from classifier.runtime import engines

    monkeypatch.setattr(engines, "MAX_RUN_SECONDS", 1.0)
    engine = engines.OnnxEngine(of.endless_loop_model(), 2)
    with pytest.raises(ModelError) as raised:
        engine.run(np.zeros((1, 224, 224, 3), np.float32))
    assert str(raised.value) == "The model took more than 1 s on this picture and was stopped."


def test_a_batch_declared_dynamic_but_fixed_at_one_runs_one_picture_at_a_time():
    from classifier.runtime.engines import OnnxEngine

    engine = OnnxEngine(of.batch_of_one_in_disguise_model(), 1)
    pictures = np.random.default_rng(0).uniform(-1, 1, (4, 224, 224, 3)).astype(np.float32)
    together = engine.run(pictures)
    alone = np.concatenate([engine.run(pictures[i : i + 1]) for i in range(4)])
    assert together.shape == (4, 3)
    assert np.allclose(together, alone, atol=1e-6)


def test_the_exporters_name_is_kept_without_control_characters():
    model = onnx.load_from_string(of.valid_helper_model())
    model.producer_name = "evil\x1b[31m\nexporter"
    candidate = models.read_model(model.SerializeToString(), LABELS)
    assert candidate.source == "ONNX file from evil[31mexporter"
