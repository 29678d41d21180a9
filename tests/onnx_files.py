"""ONNX model files made offline for the added-model tests.

- Real PyTorch networks exported by `torch.onnx.export` (the TorchScript exporter, as most
  people's exports are), with the module kept so a test can ask PyTorch for its own answer.
  PyTorch is installed for the tests on Python 3.11 only: mark those tests `needs_torch`.
- A good classifier written with `onnx.helper` alone, for every Python version, with a
  NumPy copy of its arithmetic.
- Files a person might add that the app must refuse, each wrong in one way only: a custom
  operation, weights kept in another file, two inputs or two outputs, an input that is not
  a picture, an output that is not one score per class, a picture too large, bytes that are
  not a model at all, and a file cut in half.

Weights are random but seeded. Given pictures, a model's last layer is solved so each gets
a class of its own and its top five well apart, as a trained model would (`ranked_logits`);
without, photos get different scores, though often the same top class.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from classifier import images, models
from classifier.images import CROP_FRACTION
from tests.conftest import PHOTOS, photo
from tests.model_fixtures import TM_CLASSES

OPSET = 17
IR_VERSION = 8  # ONNX 1.13's; ONNX Runtime reads it
SIZE = 224

needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="PyTorch is not installed (it is installed for the tests on Python 3.11 only)",
)


# --- Networks exported from PyTorch -------------------------------------------------------


@dataclass(frozen=True)
class TorchModel:
    """A PyTorch module and the .onnx file it was exported to."""

    module: Any  # torch.nn.Module, in eval mode
    path: Path
    layout: str  # "NCHW" or "NHWC": how the file's input holds a batch of pictures
    softmax: bool  # whether the module ends in Softmax (gives probabilities)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """PyTorch's own output for a float32 batch laid out as the file's input is."""
        import torch

        with torch.no_grad():
            out = self.module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        return out.numpy()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """PyTorch's class probabilities for a float32 batch laid out as the file's input is."""
        out = self.logits(batch)
        return out if self.softmax else softmax(out)


TORCH_SHARPNESS = 60.0  # the length of each class's weights when no pictures are given


def torch_cnn_model(
    path: Path,
    classes: int = 3,
    *,
    layout: str = "NCHW",
    size: int = SIZE,
    dynamic_size: bool = False,
    softmax: bool = False,
    seed: int = 0,
    pictures: np.ndarray | None = None,
) -> TorchModel:
    """Export a small seeded torch.nn CNN to `path` and return it with its module.

    Two Conv2d+BatchNorm2d+ReLU blocks, AdaptiveAvgPool2d, Flatten and Linear; input
    "input" (N, 3, H, W), or (N, H, W, 3) permuted inside with layout="NHWC"; output
    "logits", or probabilities with softmax=True. The batch is always dynamic, the height
    and width with dynamic_size=True.

    Given `pictures` (a float32 batch laid out as the input, already scaled), the Linear
    layer is solved so picture i gets class i % classes, as a trained model would, with
    its next classes in turn well apart (see `ranked_logits`).
    """
    import torch
    from torch import nn

    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout is NCHW or NHWC, not {layout!r}")

    class ChannelsLastInput(nn.Module):
        """Take (N, H, W, 3) pictures, as TensorFlow does, and hand on (N, 3, H, W)."""

        def forward(self, x):
            return x.permute(0, 3, 1, 2)

    with torch.random.fork_rng(devices=[]):  # the global generator is left as it was
        torch.manual_seed(seed)
        body = nn.Sequential(
            *([ChannelsLastInput()] if layout == "NHWC" else []),
            nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        linear = nn.Linear(32, classes)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in body.modules():
            if isinstance(norm, nn.BatchNorm2d):  # as if trained: statistics of their own
                n = norm.num_features
                norm.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                norm.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                norm.weight.copy_(0.5 + torch.rand(n, generator=generator))
                norm.bias.copy_(0.1 * torch.randn(n, generator=generator))
        body.eval()
        if pictures is None:
            # Random directions, but none along what every picture shares (the features of
            # a blank one), so that photos differ in their top class, not only in its score.
            blank = body(
                torch.zeros((1, 3, size, size) if layout == "NCHW" else (1, size, size, 3))
            )
            weights = _sharp_directions(
                torch.randn(classes, 32, generator=generator).double().numpy(),
                blank[0].double().numpy(),
                TORCH_SHARPNESS,
            )
            bias = np.zeros(classes)
        else:
            features = body(torch.from_numpy(np.ascontiguousarray(pictures, dtype=np.float32)))
            weights, bias = _solved_head(features.double().numpy(), classes)
        linear.weight.copy_(torch.from_numpy(weights.astype(np.float32)))
        linear.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    module = nn.Sequential(body, linear, *([nn.Softmax(dim=1)] if softmax else []))
    module.eval()

    shape = (1, 3, size, size) if layout == "NCHW" else (1, size, size, 3)
    axes = {0: "batch"}
    if dynamic_size:
        axes.update({2: "height", 3: "width"} if layout == "NCHW" else {1: "height", 2: "width"})
    path = Path(path)
    with warnings.catch_warnings():  # the exporter's notices are for PyTorch's developers
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(shape),),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": axes, "logits": {0: "batch"}},
        )
    return TorchModel(module, path, layout, softmax)


def torch_cnn(
    path: Path,
    classes: int = 3,
    *,
    layout: str = "NCHW",
    size: int = SIZE,
    dynamic_size: bool = False,
    softmax: bool = False,
    seed: int = 0,
    pictures: np.ndarray | None = None,
) -> Path:
    """Export the small seeded CNN of `torch_cnn_model` to `path` and return the path."""
    return torch_cnn_model(
        path,
        classes,
        layout=layout,
        size=size,
        dynamic_size=dynamic_size,
        softmax=softmax,
        seed=seed,
        pictures=pictures,
    ).path


def _sharp_directions(random: np.ndarray, blank: np.ndarray, length: float) -> np.ndarray:
    """Class weights: random rows made orthogonal to a blank picture's features (what every
    picture shares), then `length` long."""
    along = blank / max(np.linalg.norm(blank), 1e-12)
    rows = random - np.outer(random @ along, along)
    return length * rows / np.linalg.norm(rows, axis=1, keepdims=True)


def ranked_logits(count: int, classes: int) -> np.ndarray:
    """The logits a head solved on `count` pictures gives them: picture i has class
    i % classes first (8), the next classes after it in turn 2.5 lower each, down to a
    sixth, and the rest -7, so every photo's top five are well apart."""
    logits = np.full((count, classes), -7.0)
    for i in range(count):
        for rank in range(min(classes, 6)):
            logits[i, (i + rank) % classes] = 8.0 - 2.5 * rank
    return logits


def _solved_head(features: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights (classes, features) and bias solving features -> `ranked_logits`, least
    squares; exact while the pictures are no more than the features and differ."""
    center = features.mean(axis=0)
    solution = np.linalg.lstsq(
        features - center, ranked_logits(len(features), classes), rcond=None
    )[0]
    weights = solution.T
    bias = ranked_logits(len(features), classes).mean(axis=0) - weights @ center
    return weights, bias


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of a batch of logits, one row per picture."""
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


# --- A good file written with onnx.helper -------------------------------------------------


HELPER_SHARPNESS = 8.0  # the length of each class's weights when no pictures are given


def _helper_weights(
    classes: int, seed: int, pictures: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {
        "conv.weight": rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32),
        "conv.bias": rng.normal(0, 0.1, 8).astype(np.float32),
    }
    if pictures is None:
        blank = np.maximum(weights["conv.bias"], 0).astype(np.float64)
        fc = _sharp_directions(rng.normal(0, 1, (classes, 8)), blank, HELPER_SHARPNESS)
        bias = np.zeros(classes)
    else:
        fc, bias = _solved_head(_helper_features(pictures, weights), classes)
    weights["fc.weight"] = fc.astype(np.float32)
    weights["fc.bias"] = bias.astype(np.float32)
    return weights


def _helper_features(batch_nchw: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    """Conv (3 by 3, stride 2, padded), Relu and GlobalAveragePool, in float64 NumPy."""
    x = np.pad(np.asarray(batch_nchw, dtype=np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
    conv = np.einsum("nchwij,kcij->nkhw", windows, weights["conv.weight"].astype(np.float64))
    conv += weights["conv.bias"][None, :, None, None]
    return np.maximum(conv, 0).mean(axis=(2, 3))


def _classifier_graph(
    weights: dict[str, np.ndarray],
    input_name: str,
    input_shape: list[int | str],
    name: str,
) -> onnx.GraphProto:
    """Conv(stride 2) -> Relu -> GlobalAveragePool -> Flatten -> Gemm, to "logits"."""
    batch = input_shape[0]
    classes = weights["fc.weight"].shape[0]
    return helper.make_graph(
        [
            helper.make_node(
                "Conv",
                [input_name, "conv.weight", "conv.bias"],
                ["conv"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[1, 1, 1, 1],
            ),
            helper.make_node("Relu", ["conv"], ["relu"]),
            helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
            helper.make_node("Flatten", ["pool"], ["features"]),
            helper.make_node("Gemm", ["features", "fc.weight", "fc.bias"], ["logits"], transB=1),
        ],
        name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        [numpy_helper.from_array(array, key) for key, array in weights.items()],
    )


def _model(graph: onnx.GraphProto, *extra_opsets: tuple[str, int]) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", OPSET)]
    opsets += [helper.make_opsetid(domain, version) for domain, version in extra_opsets]
    return helper.make_model(
        graph, opset_imports=opsets, ir_version=IR_VERSION, producer_name="onnx-files-test"
    )


def _checked(model: onnx.ModelProto) -> bytes:
    """The model's bytes, once the ONNX checker (with shape inference) found it well formed."""
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def valid_helper_model(
    classes: int = 3, size: int = SIZE, seed: int = 0, pictures: np.ndarray | None = None
) -> bytes:
    """A good classifier made with onnx.helper, no PyTorch: "pixel_values" (batch, 3, size,
    size) float32 to "logits" (batch, classes) through Conv, Relu, GlobalAveragePool,
    Flatten and Gemm.

    Given `pictures` (a float32 (N, 3, H, W) batch, already scaled), the Gemm is solved so
    picture i gets class i % classes, its next classes in turn well apart (`ranked_logits`;
    exact for up to 8 pictures).
    """
    graph = _classifier_graph(
        _helper_weights(classes, seed, pictures),
        "pixel_values",
        ["batch", 3, size, size],
        "helper_cnn",
    )
    return _checked(_model(graph))


def valid_helper_reference(
    batch_nchw: np.ndarray,
    classes: int = 3,
    seed: int = 0,
    pictures: np.ndarray | None = None,
) -> np.ndarray:
    """The class probabilities the `valid_helper_model` made with these arguments gives a
    float32 (N, 3, H, W) batch, worked out with NumPy."""
    weights = _helper_weights(classes, seed, pictures)
    features = _helper_features(batch_nchw, weights)
    fc = weights["fc.weight"].astype(np.float64)
    return softmax(features @ fc.T + weights["fc.bias"])


# --- Files the app must refuse ------------------------------------------------------------


def _image_input(name: str = "pixel_values", side: int = SIZE) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, side, side])


def _head(source: str, classes: int = 3, seed: int = 0) -> tuple[list, list]:
    """GlobalAveragePool -> Flatten -> Gemm from a (1, 3, H, W) tensor to "logits"."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("GlobalAveragePool", [source], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["features"]),
        helper.make_node("Gemm", ["features", "fc.weight", "fc.bias"], ["logits"], transB=1),
    ]
    initializers = [
        numpy_helper.from_array(rng.normal(0, 1, (classes, 3)).astype(np.float32), "fc.weight"),
        numpy_helper.from_array(np.zeros(classes, np.float32), "fc.bias"),
    ]
    return nodes, initializers


def _logits(classes: int = 3) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])


def custom_op_model() -> bytes:
    """A classifier with an operation of its own ("MagicOp" in domain "com.example.custom"),
    whose code is not in the file."""
    nodes, initializers = _head("magic")
    magic = helper.make_node("MagicOp", ["pixel_values"], ["magic"], domain="com.example.custom")
    graph = helper.make_graph(
        [magic, *nodes], "custom_op", [_image_input()], [_logits()], initializers
    )
    return _model(graph, ("com.example.custom", 1)).SerializeToString()


def external_data_model(location: str = "weights.bin", folder: Path | None = None) -> bytes:
    """A good classifier but for its Conv weights, which are kept in another file named
    `location` (read from beside the model, or wherever `location` points).

    Returns the .onnx file's bytes. Given a folder, also writes `model.onnx` and the
    weights file there (location must then be a plain file name), so the pair is known to
    open together.
    """
    weights = _helper_weights(3, 0)
    graph = _classifier_graph(weights, "pixel_values", [1, 3, SIZE, SIZE], "external_weights")
    conv = next(tensor for tensor in graph.initializer if tensor.name == "conv.weight")
    raw = conv.raw_data
    onnx.external_data_helper.set_external_data(conv, location, offset=0, length=len(raw))
    conv.ClearField("raw_data")
    data = _model(graph).SerializeToString()
    if folder is not None:
        if Path(location).name != location:
            raise ValueError("only a plain file name can be written beside the model")
        (Path(folder) / location).write_bytes(raw)
        (Path(folder) / "model.onnx").write_bytes(data)
    return data


def two_inputs_model() -> bytes:
    """A classifier of two pictures at once: their sum, pooled, to three class scores."""
    nodes, initializers = _head("sum")
    graph = helper.make_graph(
        [helper.make_node("Add", ["image_a", "image_b"], ["sum"]), *nodes],
        "two_inputs",
        [_image_input("image_a"), _image_input("image_b")],
        [_logits()],
        initializers,
    )
    return _checked(_model(graph))


def not_an_image_model() -> bytes:
    """A classifier of a vector of 10 numbers, not of a picture: (1, 10) to (1, 3)."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["values", "fc.weight", "fc.bias"], ["logits"], transB=1)],
        "not_an_image",
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, [1, 10])],
        [_logits()],
        [
            numpy_helper.from_array(rng.normal(0, 1, (3, 10)).astype(np.float32), "fc.weight"),
            numpy_helper.from_array(np.zeros(3, np.float32), "fc.bias"),
        ],
    )
    return _checked(_model(graph))


def not_a_vector_output_model() -> bytes:
    """A picture in, a map out: (1, 3, 224, 224) to (1, 4, 224, 224) by one Conv, not one
    score per class."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node(
                "Conv",
                ["pixel_values", "conv.weight"],
                ["segments"],
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
            )
        ],
        "not_a_vector",
        [_image_input()],
        [helper.make_tensor_value_info("segments", TensorProto.FLOAT, [1, 4, SIZE, SIZE])],
        [
            numpy_helper.from_array(
                rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "conv.weight"
            )
        ],
    )
    return _checked(_model(graph))


def two_outputs_model() -> bytes:
    """A picture in, two outputs: three class scores, and the pooled colour as well."""
    nodes, initializers = _head("pixel_values")
    graph = helper.make_graph(
        nodes,
        "two_outputs",
        [_image_input()],
        [_logits(), helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 3])],
        initializers,
    )
    return _checked(_model(graph))


def huge_input_model(side: int = 4096) -> bytes:
    """A classifier of pictures `side` pixels square (4096 unless told): pooled
    colour to three class scores."""
    nodes, initializers = _head("pixel_values")
    graph = helper.make_graph(
        nodes, "huge_input", [_image_input(side=side)], [_logits()], initializers
    )
    return _checked(_model(graph))


def garbage(size: int = 10_000, seed: int = 0) -> bytes:
    """Seeded random bytes that begin like no known file (nor a protobuf message)."""
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    return b"\x00\xff\x00\xff" + data[4:]  # field number 0: no protobuf starts so


def truncated(data: bytes) -> bytes:
    """The first half of a file's bytes, as a download cut short leaves it."""
    return data[: len(data) // 2]


def zip_with_labels(model_bytes: bytes, labels: list[str], model_name: str = "model.onnx") -> bytes:
    """A zip of the model (as `model_name`) and `labels.txt`, one class name a line."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(model_name, model_bytes)
        archive.writestr("labels.txt", "".join(f"{label}\n" for label in labels))
    return buffer.getvalue()


# --- The desk-things model the page, command line and browser tests add ------------------


def onnx_pictures() -> np.ndarray:
    """The example photos of PHOTOS as a torchvision model is given them: the short side's
    centre crop, ImageNet mean/std, channels first."""
    scale = models.SCALINGS["imagenet"].scale
    seen = [
        images.fit_to_input(images.decode_image(photo(name)).image, 224, CROP_FRACTION)
        for name in PHOTOS
    ]
    return np.stack([scale(picture.astype(np.float32)).transpose(2, 0, 1) for picture in seen])


def desk_things_onnx(path: Path, *, dynamic_size: bool = False) -> TorchModel:
    """A PyTorch CNN exported to `path` that tells the cat, coffee and rocket photos apart
    (TM_CLASSES, in that order) as a torchvision model sees them."""
    return torch_cnn_model(
        path, len(TM_CLASSES), dynamic_size=dynamic_size, pictures=onnx_pictures()
    )


TM_LABELS = "".join(f"{name}\n" for name in TM_CLASSES).encode()


# --- Files that hide what they do deeper down ---------------------------------------------


def _if_in_a_local_function(
    then: onnx.GraphProto, output: str, dtype: type = np.float32
) -> onnx.FunctionProto:
    """A local function "local.fn"/"Hidden" whose If node always takes `then` (whose output
    has four values of `dtype`)."""
    empty = helper.make_graph(
        [helper.make_node("Constant", [], ["nothing"], value=numpy_helper.from_array(
            np.zeros(4, dtype)))],
        "else",
        [],
        [helper.make_tensor_value_info(
            "nothing", helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), [4])],
    )  # fmt: skip
    return helper.make_function(
        "local.fn",
        "Hidden",
        ["condition"],
        [output],
        [helper.make_node("If", ["condition"], [output], then_branch=then, else_branch=empty)],
        [helper.make_opsetid("", OPSET)],
    )


def _calling_hidden(function: onnx.FunctionProto, *extra_opsets: tuple[str, int]) -> bytes:
    """A classifier whose scores are the picture's mean times zero plus what `function`
    gives: so its answer is whatever the hidden part read or computed."""
    nodes = [
        helper.make_node("Constant", [], ["yes"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("Hidden", ["yes"], ["hidden"], domain="local.fn"),
        helper.make_node("Cast", ["hidden"], ["scores"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixel_values"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["scores", "nothing"], ["flat"]),
        helper.make_node("Unsqueeze", ["flat", "axis"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "hidden",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])],
        [
            numpy_helper.from_array(np.array(0, np.float32), "zero"),
            numpy_helper.from_array(np.array([0], np.int64), "axis"),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", OPSET),
            helper.make_opsetid("local.fn", 1),
            *(helper.make_opsetid(domain, version) for domain, version in extra_opsets),
        ],
        functions=[function],
        ir_version=IR_VERSION,
    )
    return model.SerializeToString()


def _kept_elsewhere(data_type: int, location: str, length: int) -> TensorProto:
    """A tensor of four values whose bytes are to be read from the file at `location`."""
    tensor = TensorProto(name="kept_elsewhere", data_type=data_type, dims=[4])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        tensor.external_data.add(key=key, value=value)
    return tensor


def external_data_in_a_function_model(location: str) -> bytes:
    """A model whose four class scores are the first four bytes of the file at `location`,
    named by a tensor inside an If node inside a local function (not the main graph)."""
    stolen = _kept_elsewhere(TensorProto.UINT8, location, 4)
    then = helper.make_graph(
        [helper.make_node("Constant", [], ["read"], value=stolen)],
        "then",
        [],
        [helper.make_tensor_value_info("read", TensorProto.UINT8, [4])],
    )
    return _calling_hidden(_if_in_a_local_function(then, "read", np.uint8))


def external_sparse_constant_model(location: str) -> bytes:
    """A model whose scores come from a Constant node's sparse value, its values kept in the
    file at `location`."""
    values = _kept_elsewhere(TensorProto.FLOAT, location, 16)
    indices = numpy_helper.from_array(np.arange(4, dtype=np.int64), "indices")
    sparse = helper.make_sparse_tensor(values, indices, [4])
    then = helper.make_graph(
        [helper.make_node("Constant", [], ["read"], sparse_value=sparse)],
        "then",
        [],
        [helper.make_tensor_value_info("read", TensorProto.FLOAT, [4])],
    )
    return _calling_hidden(_if_in_a_local_function(then, "read"))


def custom_op_in_a_function_model() -> bytes:
    """A model calling an operation of its own ("Evil" of "evil.ops") inside an If node
    inside a local function."""
    then = helper.make_graph(
        [helper.make_node("Evil", [], ["read"], domain="evil.ops")],
        "then",
        [],
        [helper.make_tensor_value_info("read", TensorProto.FLOAT, [4])],
    )
    return _calling_hidden(_if_in_a_local_function(then, "read"), ("evil.ops", 1))


def unnamed_channels_model(classes: int = 3) -> bytes:
    """A good classifier whose input leaves the channels unnamed, as Hugging Face exports do:
    (batch_size, num_channels, height, width), all dynamic."""
    graph = _classifier_graph(
        _helper_weights(classes, 0),
        "pixel_values",
        ["batch_size", "num_channels", "height", "width"],
        "unnamed_channels",
    )
    return _checked(_model(graph))


def batch_of_one_in_disguise_model(classes: int = 3) -> bytes:
    """A classifier that declares a dynamic batch but reshapes its features to one row, so
    it fails on a batch of several pictures."""
    weights = _helper_weights(classes, 0)
    graph = _classifier_graph(weights, "pixel_values", ["batch", 3, SIZE, SIZE], "disguised")
    flatten = next(node for node in graph.node if node.op_type == "Flatten")
    reshape = helper.make_node("Reshape", ["pool", "one_row"], ["features"])
    nodes = [reshape if node is flatten else node for node in graph.node]
    graph.ClearField("node")
    graph.node.extend(nodes)
    graph.initializer.append(numpy_helper.from_array(np.array([1, -1], np.int64), "one_row"))
    return _model(graph).SerializeToString()


def endless_loop_model(iterations: int = 2_000_000_000) -> bytes:
    """A classifier that first adds one to a number `iterations` times (a Loop): far past any
    time limit on every picture."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["go"], ["go_on"]),
            helper.make_node("Add", ["count", "one"], ["counted"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("go", TensorProto.BOOL, []),
            helper.make_tensor_value_info("count", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("go_on", TensorProto.BOOL, []),
            helper.make_tensor_value_info("counted", TensorProto.FLOAT, []),
        ],
        [numpy_helper.from_array(np.array(1, np.float32), "one")],
    )
    nodes, initializers = _head("pixel_values")
    loop = helper.make_node("Loop", ["trips", "", "start"], ["count"], body=body)
    graph = helper.make_graph(
        [loop, *nodes[:2], helper.make_node("Mul", ["count", "zero"], ["nothing"]),
         helper.make_node("Add", ["features", "nothing"], ["shifted"]),
         helper.make_node("Gemm", ["shifted", "fc.weight", "fc.bias"], ["logits"], transB=1)],
        "endless",
        [_image_input()],
        [_logits()],
        [*initializers,
         numpy_helper.from_array(np.array(iterations, np.int64), "trips"),
         numpy_helper.from_array(np.array(0, np.float32), "start"),
         numpy_helper.from_array(np.array(0, np.float32), "zero")],
    )  # fmt: skip
    return _model(graph).SerializeToString()
