"""`python -m benchmarks [--quick] [--browser | --api | --batch | --evaluation | --onnx | --memory]
[--cache-dir DIR] [--json FILE]`.

Prints a markdown table of the measurements.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from benchmarks import (
    api,
    batch,
    batch_page,
    browser,
    cold_start,
    end_to_end,
    evaluation,
    explain,
    inference,
    memory_return,
    onnx_model,
    own_model,
    page,
    photos,
    server,
    teach,
    teach_memory,
)
from benchmarks.report import Row, markdown, say, write_json


def build_parser() -> argparse.ArgumentParser:
    """Return the command line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure the app against naive baselines and print a markdown table.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repeats, 8 batch images, a 10,000-row history, 60 uploads (about 2 minutes)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="the engine cache to use (default: a new temporary one, so the run exports)",
    )
    parser.add_argument(
        "--browser",
        action="store_true",
        help="only the browser rows: the app against Gradio's image-classifier demo in "
        "Chromium (gradio from requirements-benchmarks.txt, see BENCHMARK_GRADIO_PYTHON)",
    )
    parser.add_argument(
        "--api",
        action="store_true",
        help="only the API rows: POST /api/v1/predict under 1, 4 and 16 concurrent clients "
        "against Gradio's image-classifier demo called with gradio_client (gradio from "
        "requirements-benchmarks.txt, see BENCHMARK_GRADIO_PYTHON)",
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help="only the folder rows: `python -m classifier predict FOLDER -r` and classify_files "
        "on 300 photos against the bare limit (a LiteRT loop in one process per core), the "
        "one-by-one path and a Keras model.predict script; then a 500-photo job from the "
        "Batch page in Chromium: the server's peak memory",
    )
    parser.add_argument(
        "--evaluation",
        action="store_true",
        help="only the evaluation rows: `python -m classifier evaluate DIR` with two models on "
        "1,000 labelled photos against `predict DIR -r` once per model (60 photos and no target "
        "with --quick)",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="only the added-ONNX-model rows: EfficientNet-Lite0 ported to PyTorch, exported to "
        "ONNX and added to the app, against a raw ONNX Runtime session and against the built-in "
        "efficientnet_lite0 on LiteRT (same weights); needs torch (requirements-dev.txt)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="only the memory-return rows: the server's RSS after Classify sessions, a Teach "
        "session with 200 photos and a 100-photo batch job ended, in Chromium (also in the "
        "full run)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows as JSON")
    return parser


def configure_environment(scratch: Path, cache_dir: Path | None) -> None:
    """Run offline with empty Keras and data directories, like the tests do.

    Set before anything imports Keras, which reads KERAS_HOME once at import.
    Child processes inherit these settings.
    """
    os.environ.update(
        {
            "CLASSIFIER_OFFLINE": "1",
            "KERAS_HOME": str(scratch / "keras"),
            "CLASSIFIER_CACHE_DIR": str(cache_dir or scratch / "engines"),
            "CLASSIFIER_DATA_DIR": str(scratch / "data"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    )
    os.environ.pop("CLASSIFIER_DATABASE_URL", None)
    os.environ.pop("CLASSIFIER_MODEL", None)  # memory is measured with the default model


def installed_version(*distributions: str) -> str:
    """Return the version of the first of these distributions that is installed."""
    for distribution in distributions:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def describe_machine(quick: bool, torch: bool = False) -> str:
    """Return one line naming the machine, the versions and the mode of this run
    (`torch`: PyTorch's too, which exports the ONNX suite's model)."""
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(
        f"{name} {installed_version(*distributions)}"
        for name, distributions in (
            ("TensorFlow", ("tensorflow-cpu", "tensorflow")),
            ("Keras", ("keras",)),
            ("LiteRT", ("ai-edge-litert",)),
            ("ONNX Runtime", ("onnxruntime",)),
            ("Streamlit", ("streamlit",)),
            ("Pillow", ("pillow",)),
            *((("PyTorch", ("torch",)),) if torch else ()),
        )
    )
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {versions}; "
        f"{'quick' if quick else 'full'} run"
    )


def main(argv: list[str] | None = None) -> int:
    """Run every suite, print the table to stdout and optionally write JSON."""
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="classifier-benchmarks-") as scratch_name:
        scratch = Path(scratch_name)
        configure_environment(scratch, args.cache_dir)
        picture = scratch / "cat.jpg"
        picture.write_bytes(photos.end_to_end_inputs()["small JPEG"])
        rows: list[Row] = []
        if args.browser:  # a suite of its own: it runs a second server (Gradio) beside the app
            rows += browser.run(scratch, quick=args.quick)
        elif args.api:  # a suite of its own too: the app's server and Gradio's, under load
            rows += api.run(scratch, quick=args.quick)
        elif args.batch:  # a suite of its own: it keeps every core busy, a process per core
            rows += batch.run(scratch, quick=args.quick)
            rows += batch_page.run(quick=args.quick)  # a 500-photo job from the browser
        elif args.evaluation:  # a suite of its own too: whole processes on every core
            rows += evaluation.run(scratch, quick=args.quick)
        elif args.onnx:  # a suite of its own: it needs torch, which the app does not
            rows += onnx_model.run(scratch, quick=args.quick)
        elif args.memory:
            rows += memory_return.run(scratch, quick=args.quick)
        else:
            rows += inference.run(scratch, quick=args.quick)
            rows += own_model.run(scratch, quick=args.quick)
            rows += teach.run(scratch, quick=args.quick)
            rows += explain.run(quick=args.quick)
            rows += end_to_end.run(quick=args.quick)
            rows += end_to_end.run_batch(quick=args.quick)
            rows += cold_start.run(scratch, picture, quick=args.quick)
            rows += page.run(scratch, quick=args.quick)
            rows += server.run(scratch, quick=args.quick)
            rows += teach_memory.run(scratch, quick=args.quick)
            rows += memory_return.run(scratch, quick=args.quick)
    say("done")
    print(describe_machine(args.quick, torch=args.onnx), end="\n\n")
    print(markdown(rows))
    if args.json:
        write_json(rows, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
