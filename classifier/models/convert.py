"""Open a model file someone added, in a process of its own, and report what it is.

    python -m classifier.models.convert inspect MODEL.tflite
    python -m classifier.models.convert inspect-onnx MODEL.onnx
    python -m classifier.models.convert convert keras|h5 SOURCE OUTPUT.tflite
    python -m classifier.models.convert classifier MODEL OUTPUT.tflite
    python -m classifier.models.convert features BASE OUTPUT.tflite
    python -m classifier.models.convert fuse BASE HEAD.npz OUTPUT.zip
    python -m classifier.models.convert maps BASE OUTPUT.tflite

`classifier` exports a built-in network as the server runs it, `features` its feature
extractor (for taught models), `fuse` a taught model as one LiteRT file (its download)
and `maps` a network's last feature map and its linear head ("Where it looked"): the
files of `classifier.models.derived`. They build Keras models, so they run here too.

The parent (`classifier.models.derived.run_convert`) runs this as a child process: a
model file can carry code, or be crafted to crash the program that parses it, and
converting a Keras model imports TensorFlow (about 700 MB), which the server should
never hold. The child prints one JSON object on its last line: `{"ok": true, ...details}` or
`{"ok": false, "message": "one sentence"}`.

An ONNX file is parsed with `onnx` first and refused before any runtime opens it when it
uses operators outside ONNX Runtime's own domains (custom code), keeps tensors in other
files (external data: a path in it is never followed) or is not one picture in, one vector
of class scores out; only then does ONNX Runtime open it, from its bytes.

Keras files are read without running anything they carry: their configuration is
checked first (no Lambda layer, nothing but Keras's own classes), then loaded with
`safe_mode=True`. A Keras 2 HDF5 file (Teachable Machine's `keras_model.h5`) is
loaded from a copy whose configuration drops what Keras 3 refuses: `groups` in
DepthwiseConv2D and the Keras 2 module paths.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Classes Keras writes into a configuration that are not layers, initializers and the like.
_KERAS_INTERNALS = {"Functional", "Sequential", "Model", "DTypePolicy", "FloatDTypePolicy"}
# Values Keras 3 writes into a configuration (tensors, arrays, slices): data, not code.
# Keras layers that read files or other models named in their configuration.
_READS_FILES = {"TFSMLayer", "StringLookup", "IntegerLookup", "TextVectorization"}
_KERAS_VALUES = {
    "__keras_tensor__", "__tensor__", "__numpy__", "__bytes__", "__slice__", "__ellipsis__",
    "__typespec__", "__tuple__",
}  # fmt: skip


# What a crafted file may make this process spend is bounded before any parser runs on it.
MAX_INPUT_SIDE = 1024  # pixels: a picture classifier's input (224 to 600 in practice)
MAX_CONFIG_BYTES = 4_000_000  # a Keras configuration (a few hundred KB in practice)
MAX_NAME_LENGTH = 1000  # characters of any name in a Keras configuration
MAX_BUFFERS = 100_000  # a LiteRT file's buffers (hundreds in practice)
# Bytes a LiteRT file may hold beyond its buffers (its graph, tensors and names: tens of KB).
UNUSED_BYTES_ALLOWED = 1024 * 1024
MAX_SECONDS_PER_PICTURE = 5  # processor time of one test picture (large CNNs: under a second)


class Refused(Exception):
    """The file cannot be added; the message is one sentence for a person."""


def _read_keras_config(fmt: str, source: Path) -> dict[str, Any]:
    """Read a Keras file's configuration, refusing one larger than MAX_CONFIG_BYTES."""
    too_large = (
        "This Keras file's configuration is larger than "
        f"{MAX_CONFIG_BYTES // 1_000_000} MB; a model's configuration takes a few hundred KB, "
        "so it is refused."
    )
    if fmt == "keras":
        with zipfile.ZipFile(source) as archive:
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise Refused(too_large)
            with archive.open("config.json") as member:
                raw = member.read(MAX_CONFIG_BYTES + 1)
    else:
        import h5py

        with h5py.File(source, "r") as file:
            if "model_config" not in file.attrs:
                raise Refused(
                    "This HDF5 file holds only weights, not a model; save the whole model "
                    "(model.save) and add that."
                )
            if file.attrs.get_id("model_config").get_storage_size() > MAX_CONFIG_BYTES:
                raise Refused(too_large)
            raw = file.attrs["model_config"]
    if len(raw) > MAX_CONFIG_BYTES:
        raise Refused(too_large)
    try:
        config = json.loads(raw if isinstance(raw, str) else bytes(raw).decode("utf-8"))
        names = [value for obj in _objects(config) for value in _names(obj)]
    except RecursionError:
        raise Refused("This Keras file's configuration is nested too deeply to read.") from None
    if any(len(name) > MAX_NAME_LENGTH for name in names):
        raise Refused(
            f"This Keras file names a layer with more than {MAX_NAME_LENGTH:,} characters; "
            "it is refused."
        )
    return config


def _names(obj: dict[str, Any]) -> list[str]:
    """Return the class name and the name in its settings (the strings Keras keeps)."""
    settings = obj.get("config")
    name = settings.get("name") if isinstance(settings, dict) else None
    return [value for value in (obj["class_name"], name) if isinstance(value, str)]


def _objects(config: Any):
    """Yield every serialized object (a dict with a class_name) in a configuration."""
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str):
            yield config
        for value in config.values():
            yield from _objects(value)
    elif isinstance(config, list):
        for value in config:
            yield from _objects(value)


def check_keras_config(config: dict[str, Any], keras) -> None:
    """Refuse a configuration with a Lambda layer or any class Keras does not ship.

    Raises:
        Refused: naming the layer or class.
    """
    families = (
        keras.layers,
        keras.initializers,
        keras.regularizers,
        keras.constraints,
        keras.activations,
    )
    for obj in _objects(config):
        name = obj["class_name"]
        settings = obj.get("config")
        layer_name = settings.get("name") if isinstance(settings, dict) else None
        called = f" “{layer_name}”" if layer_name else ""
        if name in ("Lambda", "TFOpLambda", "__lambda__"):
            raise Refused(
                f"This model has a {'Lambda' if name == '__lambda__' else name} "
                f"layer{called}, which runs Python code stored in the "
                "file; models with code are refused."
            )
        if name in _READS_FILES:
            raise Refused(
                f"This model has a {name} layer{called}, which reads files named in the model; "
                "it is refused."
            )
        registered = obj.get("registered_name")
        custom = isinstance(registered, str) and ">" in registered
        module = obj.get("module")
        keras_function = name == "function" and str(module).startswith("keras")
        known = (
            name in _KERAS_INTERNALS
            or name in _KERAS_VALUES
            or keras_function
            or any(hasattr(f, name) for f in families)
        )
        if custom or not known:
            raise Refused(
                f"This model uses {name}{called}, which is not part of Keras; custom layers "
                "and objects need their code, and code from model files is not run here."
            )


def _keras3_compatible(config: Any) -> None:
    """Rewrite a Keras 2 configuration, in place, into what Keras 3 reads."""
    for obj in _objects(config):
        # Keras 2 module paths (tf_keras.src.engine.functional) and Keras 2 values
        # (BatchNormalization's axis as a list) fail Keras 3's own deserializer; without
        # a module, Keras 3 reads the object the way it reads Keras 2 files. The classes
        # were checked before this: they are all Keras's own.
        obj.pop("module", None)
        obj.pop("registered_name", None)
        if obj["class_name"] == "DepthwiseConv2D" and isinstance(obj.get("config"), dict):
            obj["config"].pop("groups", None)


def convert(fmt: str, source: Path, output: Path) -> dict[str, Any]:
    """Check, load and export a Keras model to LiteRT; return what `inspect` reports."""
    try:  # before TensorFlow is imported: a refused file costs this process little
        config = _read_keras_config(fmt, source)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise Refused(f"This Keras file cannot be read ({_one_line(exc)}).") from None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    check_keras_config(config, keras)
    with tempfile.TemporaryDirectory() as folder:
        path = source
        if fmt == "h5":
            import h5py

            _keras3_compatible(config)
            path = Path(folder) / "model.h5"
            shutil.copyfile(source, path)
            with h5py.File(path, "r+") as file:
                file.attrs["model_config"] = json.dumps(config)
        elif fmt == "keras":
            path = Path(folder) / "model.keras"  # Keras reads the format from the name
            shutil.copyfile(source, path)
        try:
            model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as exc:  # Keras's own words name its internals: for the log only
            print(f"Keras cannot load the model: {_one_line(exc)}", file=sys.stderr)
            raise Refused(
                "Keras cannot load this model: it may be damaged, or saved by a Keras version "
                "this app cannot read."
            ) from None
    parameters = int(model.count_params())
    hint = _scaling_in_model(config)
    try:
        model.export(str(output), format="litert", verbose=False)
    except Exception as exc:
        raise Refused(f"This model cannot be converted to LiteRT ({_one_line(exc)}).") from None
    report = inspect(output)
    report["parameters"] = parameters
    report["scaling_hint"] = report.get("scaling_hint") or hint
    return report


def _scaling_in_model(config: dict[str, Any]) -> str | None:
    """Say "raw" when the model rescales pixels itself (a Rescaling or Normalization layer)."""
    names = [obj["class_name"] for obj in _objects(config)]
    return "raw" if {"Rescaling", "Normalization"} & set(names) else None


def inspect(path: Path) -> dict[str, Any]:
    """Open a .tflite with LiteRT, check it is an image classifier, run it once, describe it."""
    from ai_edge_litert.interpreter import Interpreter

    _check_extent(path.read_bytes())
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        _check_input_sides(interpreter)  # before any tensor is allocated
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        message = str(exc)
        if custom := re.search(r"unresolved custom op: (\w+)", message):
            raise Refused(
                f"This LiteRT model uses the custom operation {custom[1]}, which needs code "
                "of its own; models with custom operations are refused."
            ) from None
        if "Select TensorFlow op" in message or "Flex" in message:
            raise Refused(
                "This LiteRT model needs TensorFlow operations that LiteRT alone cannot run."
            ) from None
        raise Refused(f"LiteRT cannot open this model ({_one_line(exc)}).") from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise Refused(
            f"This model has {len(inputs)} input(s) and {len(outputs)} output(s); an image "
            "classifier has one of each."
        )
    given, answer = inputs[0], outputs[0]
    shape = [int(n) for n in given["shape"]]
    if len(shape) != 4:
        raise Refused(f"This model takes input of shape {shape}, not a batch of pictures.")
    layout = "NCHW" if shape[1] in (1, 3) and shape[3] not in (1, 3) else "NHWC"
    height, width, channels = (shape[2], shape[3], shape[1]) if layout == "NCHW" else shape[1:]
    if channels != 3:
        raise Refused(
            f"This model takes pictures with {channels} channel(s); only RGB is supported."
        )
    if height != width:
        raise Refused(
            f"This model takes {width}x{height} pictures; only square inputs are supported."
        )
    out_shape = [int(n) for n in answer["shape"]]
    classes = int(np.prod(out_shape[1:])) if len(out_shape) >= 2 else 0
    if classes < 2:
        raise Refused(f"This model gives output of shape {out_shape}, not class scores.")
    for detail in (given, answer):
        if np.dtype(detail["dtype"]).name not in ("float32", "uint8", "int8"):
            raise Refused(
                f"This model uses {np.dtype(detail['dtype']).name} data; expected "
                "float32, uint8 or int8."
            )
    in_scale, in_zero = given["quantization"]
    out_scale, out_zero = answer["quantization"]
    for detail, scale in ((given, in_scale), (answer, out_scale)):
        if np.dtype(detail["dtype"]) != np.float32 and not scale > 0:
            raise Refused("This quantized model has no quantization scale, so it cannot be run.")
    kind, failing = _output_kind(interpreter, given, answer, classes)
    hint = None
    if np.dtype(given["dtype"]) != np.float32:
        from classifier.models.upload import scaling_for_quantized_input

        hint = scaling_for_quantized_input(
            float(in_scale), int(in_zero), signed=np.dtype(given["dtype"]) == np.int8
        )
    return {
        "ok": True,
        "size": height,
        "layout": layout,
        "classes": classes,
        "input_dtype": np.dtype(given["dtype"]).name,
        "input_quantization": [float(in_scale), int(in_zero)],
        "output_dtype": np.dtype(answer["dtype"]).name,
        "output_quantization": [float(out_scale), int(out_zero)],
        "outputs": kind,
        "failing_scalings": failing,  # preprocessings it gives non-numbers for
        "scaling_hint": hint,
        "parameters": None,
    }


def _check_extent(data: bytes) -> None:
    """Refuse a LiteRT file that holds much more than its model uses (e.g. appended zeros,
    which would be kept, stored and copied to every server as if they were the model)."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAsModel(data, 0)
        count = model.BuffersLength()
        if count > MAX_BUFFERS:
            raise Refused(f"This LiteRT file declares {count:,} buffers; it is refused.")
        used = 0
        for number in range(count):
            buffer = model.Buffers(number)
            used += buffer.DataLength()
            if buffer.Offset() > 1:  # data stored after the model, at an offset in the file
                if buffer.Offset() + buffer.Size() > len(data):
                    raise Refused("This LiteRT file is damaged: its contents point outside it.")
                used += buffer.Size()
    except Refused:
        raise
    except Exception:  # offsets that point outside the file
        raise Refused("This LiteRT file is damaged: its contents point outside it.") from None
    unused = len(data) - used
    if unused > UNUSED_BYTES_ALLOWED + used // 4:
        raise Refused(
            f"This LiteRT file holds {unused / 1_000_000:,.1f} MB that its model does not use "
            "(data after the model); it is refused."
        )


def _check_input_sides(interpreter) -> None:
    """Refuse inputs larger than MAX_INPUT_SIDE on a side, before memory is set aside."""
    for detail in interpreter.get_input_details():
        sides = [int(n) for n in detail["shape"][1:] if int(n) not in (1, 3)]
        if any(side > MAX_INPUT_SIDE for side in sides):
            raise Refused(
                f"This model takes pictures of {' x '.join(map(str, sides))} pixels; at most "
                f"{MAX_INPUT_SIDE} x {MAX_INPUT_SIDE} are accepted."
            )


def _test_inputs(given) -> list[tuple[str, np.ndarray]]:
    """Return test pictures as each preprocessing a person may pick makes them (random
    pixels, scaled), or as random values for a quantized input."""
    from classifier.models.upload import SCALINGS

    rng = np.random.default_rng(0)
    dtype = np.dtype(given["dtype"])
    shape = [int(n) for n in given["shape"]]
    if dtype != np.float32:
        info = np.iinfo(dtype)
        return [
            ("random values", rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype))
            for _ in range(2)
        ]
    pixels = rng.uniform(0, 255, shape).astype(np.float32)
    channels_last = shape[-1] == 3
    scaled = []
    for name, scaling in SCALINGS.items():
        if channels_last or name != "imagenet":  # its mean/std are per channel, last
            scaled.append((name, scaling.scale(pixels).astype(np.float32)))
    return scaled


def _output_kind(interpreter, given, answer, classes: int) -> tuple[str, list[str]]:
    """Run test pictures, one per preprocessing: are the outputs probabilities, scores or
    logits? Return that and the preprocessings the model gives non-numbers for.

    Raises:
        Refused: it gives non-numbers whatever the preprocessing, or is too slow.
    """
    out_scale, out_zero = answer["quantization"]
    quantized = np.dtype(answer["dtype"]) != np.float32

    def run(batch: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(given["index"], batch)
        interpreter.invoke()
        values = interpreter.get_tensor(answer["index"]).astype(np.float64)
        return (values - out_zero) * out_scale if quantized else values

    tolerance = max(1e-3, classes * float(out_scale))
    kind, failing = _answers_kind(_test_inputs(given), run, tolerance)
    return kind, failing if np.dtype(given["dtype"]) == np.float32 else []


def _answers_kind(
    tests: list[tuple[str, np.ndarray]], run: Callable[[np.ndarray], np.ndarray], tolerance: float
) -> tuple[str, list[str]]:
    """Run each named test batch (`run` gives its output values), each within
    MAX_SECONDS_PER_PICTURE of processor time: are the outputs probabilities, scores or
    logits? Return that and the names of the tests giving non-numbers.

    Raises:
        Refused: it gives non-numbers for every test, or is too slow.
    """
    kinds, failing = set(), []
    for name, batch in tests:
        started = time.thread_time()  # one thread runs it: processor time, however busy
        values = np.asarray(run(batch), dtype=np.float64).reshape(-1)
        seconds = time.thread_time() - started
        if seconds > MAX_SECONDS_PER_PICTURE:
            raise Refused(
                f"This model takes {seconds:.1f} s of processor time per picture; at most "
                f"{MAX_SECONDS_PER_PICTURE} s are accepted."
            )
        if not np.all(np.isfinite(values)):
            failing.append(name)
            continue
        in_unit = values.min() >= -1e-6 and values.max() <= 1 + 1e-6
        if in_unit and abs(values.sum() - 1) <= tolerance:
            kinds.add("probabilities")
        elif in_unit:
            kinds.add("scores")
        else:
            kinds.add("logits")
    if len(failing) == len(tests):
        raise Refused("This model gives non-numbers (NaN or infinity) on test pictures.")
    kind = "logits" if "logits" in kinds else "scores" if "scores" in kinds else "probabilities"
    return kind, failing


# --- ONNX ---------------------------------------------------------------------------------

# Operator domains ONNX Runtime implements itself: ONNX's own, its ML operators, and its
# contrib operators (`com.microsoft`, which optimised exports use). Any other domain needs a
# library of custom code, which is never loaded here.
ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
ONNX_FLOAT_TYPES = {1: "float32", 10: "float16"}  # TensorProto.FLOAT, TensorProto.FLOAT16
DYNAMIC_SIZE = 224  # what a model taking any picture size is given


def _onnx_messages(message, kind):
    """Yield every message of type `kind` anywhere inside `message`, however deep: in the
    main graph, in the bodies of If, Loop and Scan nodes, in local functions, in sparse
    tensors and node attributes, and in any field a later ONNX version adds."""
    from google.protobuf.message import Message

    if isinstance(message, kind):
        yield message
    for field, value in message.ListFields():
        if field.type != field.TYPE_MESSAGE:  # numbers, strings, bytes: nothing inside
            continue
        for inner in (value,) if isinstance(value, Message) else value:
            yield from _onnx_messages(inner, kind)


def _onnx_dims(value) -> list[int | None]:
    """Return a graph input's or output's dimensions (None: not fixed in the file; some
    converters write 0 or -1 for that)."""
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in shape.dim]


def _read_onnx(data: bytes):
    """Parse an ONNX file and refuse what cannot be run safely here, before any runtime."""
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        raise Refused("This ONNX file cannot be read: it is damaged or cut short.") from None
    if not model.HasField("graph") or not model.graph.node:
        raise Refused("This ONNX file holds no model graph: it is damaged or cut short.")
    external = [
        tensor.name
        for tensor in _onnx_messages(model, onnx.TensorProto)
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data
    ]
    if external:
        raise Refused(
            f"This ONNX file keeps {len(external):,} of its tensors in other files (external "
            "data), which are never read here; export the model as one file."
        )
    local = {(function.domain, function.name) for function in model.functions}
    for node in _onnx_messages(model, onnx.NodeProto):
        if node.domain not in ONNX_DOMAINS and (node.domain, node.op_type) not in local:
            raise Refused(
                f"This ONNX model uses the custom operation {node.op_type} of “{node.domain}”, "
                "which needs code of its own; models with custom operations are refused."
            )
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx.checker.ValidationError and the C++ checker's own
        raise Refused(f"This ONNX file is not a valid model ({_one_line(exc)}).") from None
    return model


def inspect_onnx(path: Path) -> dict[str, Any]:
    """Check an .onnx file is an image classifier without custom code or other files, open it
    with ONNX Runtime, run it once per preprocessing, and describe it."""
    from classifier.images import CROP_FRACTION
    from classifier.runtime.engines import onnx_channels_first

    model = _read_onnx(path.read_bytes())
    stored = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in stored]
    outputs = list(model.graph.output)
    if len(inputs) != 1 or len(outputs) != 1:
        raise Refused(
            f"This model has {len(inputs)} input(s) and {len(outputs)} output(s); an image "
            "classifier has one of each."
        )
    given, answer = inputs[0], outputs[0]
    elem = given.type.tensor_type.elem_type
    if not given.type.HasField("tensor_type") or elem not in ONNX_FLOAT_TYPES:
        raise Refused(
            "This model's input is not a tensor of float32 or float16 pixels; expected a "
            "batch of pictures."
        )
    if answer.type.tensor_type.elem_type not in ONNX_FLOAT_TYPES:
        raise Refused(
            "This model's output is not float class scores (it may give class numbers); "
            "export the layer before any argmax."
        )
    dims = _onnx_dims(given)
    if len(dims) != 4:
        raise Refused(
            f"This model takes input of {len(dims)} dimension(s), not a batch of pictures "
            "(batch, channels, height, width)."
        )
    channels_first = onnx_channels_first(dims)
    if channels_first is not None:
        layout = "NCHW" if channels_first else "NHWC"
        sides = dims[2:] if channels_first else dims[1:3]
    else:
        raise Refused(
            "This model's input has no dimension of 3 colour channels; only RGB pictures are "
            "supported."
        )
    if dims[0] not in (None, 1):
        raise Refused(
            f"This model takes batches of exactly {dims[0]} pictures; export it with a batch "
            "of one or a dynamic batch."
        )
    fixed = {side for side in sides if side is not None}
    if len(fixed) > 1:
        height, width = sides
        raise Refused(
            f"This model takes {width}x{height} pictures; only square inputs are supported."
        )
    size = next(iter(fixed), DYNAMIC_SIZE)
    if size > MAX_INPUT_SIDE or size < 1:
        raise Refused(
            f"This model takes pictures of {size} x {size} pixels; at most "
            f"{MAX_INPUT_SIDE} x {MAX_INPUT_SIDE} are accepted."
        )
    session = _onnx_session(path)
    shape = [1, 3, size, size] if layout == "NCHW" else [1, size, size, 3]
    dtype = np.float16 if elem == 10 else np.float32
    kind, failing, classes = _onnx_output_kind(session, given.name, shape, layout, dtype)
    parameters = int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    producer = "".join(ch for ch in producer if ch.isprintable())  # shown in a terminal too
    return {
        "ok": True,
        "format": "onnx",
        "size": size,
        "size_assumed": not fixed,
        "layout": layout,
        "classes": classes,
        "input_dtype": ONNX_FLOAT_TYPES[elem],
        "outputs": kind,
        "failing_scalings": failing,
        # torchvision's and timm's preprocessing for channels-first models; NHWC ones
        # (Keras or TensorFlow exports) do not say.
        "scaling_hint": "imagenet" if layout == "NCHW" else None,
        "crop_hint": CROP_FRACTION if layout == "NCHW" else None,
        "parameters": parameters,
        "producer": producer[:100],
        "opset": max(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0
        ),
    }


def _onnx_session(path: Path):
    """Open the file with ONNX Runtime on one thread, as the app does (reading no other file)."""
    from classifier.runtime.engines import onnx_session

    try:
        return onnx_session(path.read_bytes(), 1)
    except Exception as exc:
        raise Refused(f"ONNX Runtime cannot open this model ({_one_line(exc)}).") from None


def _onnx_output_kind(
    session, name: str, shape: list[int], layout: str, dtype
) -> tuple[str, list[str], int]:
    """Run a test picture per preprocessing: are the outputs probabilities, scores or logits?
    Return that, the preprocessings giving non-numbers, and the number of classes.

    Raises:
        Refused: the output is not one vector of class scores, the model fails or is too slow.
    """
    from classifier.models.upload import SCALINGS

    side = shape[2] if layout == "NCHW" else shape[1]
    pixels = np.random.default_rng(0).uniform(0, 255, (1, side, side, 3)).astype(np.float32)
    tests = []
    for scaling_name, scaling in SCALINGS.items():
        batch = scaling.scale(pixels)
        batch = batch.transpose(0, 3, 1, 2) if layout == "NCHW" else batch
        tests.append((scaling_name, np.ascontiguousarray(batch, dtype=dtype)))
    classes = []

    def run(batch: np.ndarray) -> np.ndarray:
        try:
            (values,) = session.run(None, {name: batch})
        except Exception as exc:
            raise Refused(f"The model failed on a test picture ({_one_line(exc)}).") from None
        values = np.asarray(values)
        if values.ndim < 1 or values.shape[0] != 1 or sum(d > 1 for d in values.shape[1:]) != 1:
            raise Refused(
                f"This model gives output of shape {list(values.shape)}, not one vector of "
                "class scores."
            )
        classes.append(int(np.prod(values.shape[1:])))
        return values

    kind, failing = _answers_kind(tests, run, 1e-3)
    return kind, failing, classes[-1]


def _feature_model(model):
    """Return a model giving the input of a built-in network's classifier layer, flattened.

    The classifier layer is the last one with weights (a Dense layer, or MobileNet's 1x1
    convolution); its input is the pooled feature vector (after MobileNetV3's last
    hard-swish layer, the vector its own classifier reads).
    """
    import keras

    classifier = next(layer for layer in reversed(model.layers) if layer.weights)
    features = keras.layers.Flatten(name="features")(classifier.input)
    return keras.Model(model.inputs, features, name=f"{model.name}_features")


def classifier(name: str, output: Path) -> dict[str, Any]:
    """Export a built-in network with its ImageNet weights (and its checksum file) to
    `output`: the engine file a server opens, made without TensorFlow in the server."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from classifier.models import builtin
    from classifier.runtime import cache

    spec = builtin.get_spec(name)
    cache.export_litert(spec.build("imagenet"), output, spec.title)
    return {"ok": True}


def features(base: str, output: Path) -> dict[str, Any]:
    """Export a built-in network's feature extractor (with its checksum file) to `output`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from classifier.models import builtin
    from classifier.runtime import cache

    spec = builtin.get_spec(base)
    model = _feature_model(spec.build("imagenet"))
    cache.export_litert(model, output, f"{spec.title} features")
    return {"ok": True, "dimensions": int(model.output_shape[-1])}


def fuse(base: str, head: Path, output: Path) -> dict[str, Any]:
    """Write a taught model as Teachable Machine's LiteRT export: a zip of
    `model_unquant.tflite` (pixels scaled to [-1, 1] in, probabilities out) and `labels.txt`.

    The base network's own scaling is a Rescaling layer inside the file, so the file
    takes Teachable Machine's input whatever the base.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from classifier.models import builtin

    spec = builtin.get_spec(base)
    with np.load(head, allow_pickle=False) as npz:
        weights, bias = npz["weights"], npz["bias"]
        class_names = npz["class_names"].tolist()
    # The base's scaling is linear, a * pixel + c; pixel = 127.5 * (x + 1) for x in [-1, 1].
    a, c = (float(v) for v in spec.preprocess(np.array([1.0, 0.0], np.float32)))
    a -= c
    size = spec.input_size
    x = keras.Input((size, size, 3), name="image")
    scaled = keras.layers.Rescaling(127.5 * a, offset=127.5 * a + c, name="base_scaling")(x)
    vectors = _feature_model(spec.build("imagenet"))(scaled)
    classes = keras.layers.Dense(len(class_names), activation="softmax", name="classes")
    fused = keras.Model(x, classes(vectors), name="taught")
    classes.set_weights([weights, bias])
    with tempfile.TemporaryDirectory() as folder:
        tflite = Path(folder) / "model_unquant.tflite"
        fused.export(str(tflite), format="litert", verbose=False)
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.write(tflite, "model_unquant.tflite")
            archive.writestr(
                "labels.txt", "".join(f"{i} {name}\n" for i, name in enumerate(class_names))
            )
    return {"ok": True, "classes": len(class_names)}


def maps(base: str, output: Path) -> dict[str, Any]:
    """Export a built-in network up to its last feature map, and its head beside it.

    Only for a network whose feature map goes through global average pooling, then
    layers that change nothing at inference (Dropout, Reshape, Flatten), then one linear
    layer (Dense or a 1x1 Conv2D, with no activation but a softmax): its class activation
    map is then exact. The head is written to `<output stem>-head.npz` first, so a map
    model on disk always has it.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from classifier import files
    from classifier.models import builtin
    from classifier.runtime import cache

    spec = builtin.get_spec(base)
    model = spec.build("imagenet")
    pooling = [
        i for i, x in enumerate(model.layers) if isinstance(x, keras.layers.GlobalAveragePooling2D)
    ]
    if not pooling:
        raise Refused(f"{spec.title} does not end in global average pooling.")
    after = model.layers[pooling[-1] + 1 :]
    linear = [x for x in after if x.weights]
    inert = (
        keras.layers.Dropout,
        keras.layers.Reshape,
        keras.layers.Flatten,
        keras.layers.Activation,
    )
    if len(linear) != 1 or not all(x in linear or isinstance(x, inert) for x in after):
        raise Refused(f"{spec.title}'s head is not pooling and one linear layer.")
    (head,) = linear
    activations = [getattr(x, "activation", None) for x in after]
    if any(
        a not in (None, keras.activations.linear, keras.activations.softmax) for a in activations
    ):
        raise Refused(f"{spec.title}'s head has a non-linear activation before its softmax.")
    kernel, bias = (np.asarray(w, dtype=np.float32) for w in head.get_weights())
    buffer = io.BytesIO()
    np.savez(buffer, weights=kernel.reshape(-1, kernel.shape[-1]), bias=bias)
    files.write_atomically(output.with_name(f"{output.stem}-head.npz"), buffer.getvalue())
    features = keras.Model(model.inputs, model.layers[pooling[-1]].input, name=f"{model.name}_maps")
    cache.export_litert(features, output, f"{spec.title} maps")
    return {"ok": True, "shape": [int(d) for d in features.output_shape[1:]]}


def _building(what: str, build, *args) -> dict[str, Any]:
    """Run a build of our own; its failure is one sentence, not a crash report."""
    try:
        return build(*args)
    except Exception as exc:
        raise Refused(f"{what} could not be built ({_one_line(exc)}).") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _limit_processor_time() -> None:
    """Stop this process past the processor time its parent allows (SIGXCPU, then SIGKILL)."""
    seconds = os.environ.get("CLASSIFIER_CHILD_CPU_SECONDS", "")
    if seconds.isdigit() and int(seconds) > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_CPU, (int(seconds), int(seconds) + 5))


def _peak_mb() -> int:
    """Return this process's peak resident memory in MB since it started Python (0 where
    the system does not say)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def main(argv: list[str]) -> int:
    _limit_processor_time()
    try:
        if argv[:1] == ["inspect"] and len(argv) == 2:
            report = inspect(Path(argv[1]))
        elif argv[:1] == ["inspect-onnx"] and len(argv) == 2:
            report = inspect_onnx(Path(argv[1]))
        elif argv[:1] == ["convert"] and len(argv) == 4 and argv[1] in ("keras", "h5"):
            report = convert(argv[1], Path(argv[2]), Path(argv[3]))
        elif argv[:1] == ["classifier"] and len(argv) == 3:
            report = _building("The model", classifier, argv[1], Path(argv[2]))
        elif argv[:1] == ["features"] and len(argv) == 3:
            report = _building("The feature extractor", features, argv[1], Path(argv[2]))
        elif argv[:1] == ["maps"] and len(argv) == 3:
            report = _building("The map model", maps, argv[1], Path(argv[2]))
        elif argv[:1] == ["fuse"] and len(argv) == 4:
            report = _building("The fused model", fuse, argv[1], Path(argv[2]), Path(argv[3]))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Refused as exc:
        report = {"ok": False, "message": str(exc)}
    report["peak_mb"] = _peak_mb()
    sys.stdout.flush()
    print("\n" + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
