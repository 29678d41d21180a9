"""Fresh processes: time to the first prediction, and peak memory.

Each process is `python -c CODE` started from the repository root with the
benchmark's environment. It prints one JSON line once it has its first
prediction: the wall-clock time then, which the parent subtracts from the time
it started the process, and its peak resident memory so far.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import lite0
from benchmarks.report import Row, ratio, say
from benchmarks.timing import Stats
from classifier.config import PROJECT_ROOT, get_settings

GROUP = "Cold start, to first prediction"
MEMORY_GROUP = "Memory, peak RSS"
MODEL = lite0.NAME
TARGET_WARM_SECONDS = 1.5
TARGET_WARM_OVER_NAIVE = 0.25
TARGET_EMPTY_OVER_NAIVE = 1.0
CLI_GROUP = "Command line, whole process"
TARGET_CLI_SECONDS = 0.5
TARGET_CLI_OVER_TENSORFLOW = 0.15

# Peak memory is the kernel's high-water mark of this process (VmHWM). Not
# getrusage's ru_maxrss: Linux carries that over from the parent through fork
# and exec, so a child of this TensorFlow-sized benchmark would report its size.
_REPORT = """
import json, time
ready = time.time()
with open("/proc/self/status") as status:
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"ready": ready, "peak_rss_kb": peak_kb, "model": model_name}))
"""
# argv: model name ("" for the default model), picture file.
APP_PROCESS = (
    """
import sys
from classifier.predict import classify
model_name = classify(open(sys.argv[2], "rb").read(), sys.argv[1] or None).model
"""
    + _REPORT
)
# The obvious script: import TensorFlow, build the Keras model, decode with Pillow, predict.
NAIVE_PROCESS = (
    """
import sys
import tensorflow as tf
import numpy as np
from PIL import Image
from classifier import models
spec = models.get_spec(sys.argv[1])
model = spec.build(spec.weights_file())
image = Image.open(sys.argv[2]).convert("RGB").resize((spec.input_size, spec.input_size))
model.predict(spec.preprocess(np.asarray(image, dtype=np.float32)[np.newaxis]), verbose=0)
model_name = spec.name
"""
    + _REPORT
)


def start_process(label: str, code: str, model: str, picture: Path, cache_dir: Path) -> dict:
    """Run a fresh Python process; return its report plus `seconds` to its first prediction."""
    say(label)
    env = {**os.environ, "CLASSIFIER_CACHE_DIR": str(cache_dir)}
    started = time.time()
    finished = subprocess.run(
        [sys.executable, "-c", code, model, str(picture)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"A benchmark process failed:\n{finished.stderr[-3000:]}")
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    return {**report, "seconds": report["ready"] - started}


def run(scratch: Path, picture: Path, *, quick: bool) -> list[Row]:
    """Time warm-cache, empty-cache and naive processes, then measure the app's peak memory."""
    lite0.load()  # so that the warm runs find the model exported
    warm_cache = get_settings().cache_dir
    # Untimed first runs, so the OS file cache holds the libraries for every timed run.
    start_process("cold start: untimed naive run", NAIVE_PROCESS, MODEL, picture, warm_cache)
    start_process("cold start: untimed app run", APP_PROCESS, MODEL, picture, warm_cache)

    def fresh_cache() -> Path:
        return Path(tempfile.mkdtemp(prefix="engines-", dir=scratch))

    kinds = {
        "warm cache": (APP_PROCESS, lambda: warm_cache),
        "empty cache": (APP_PROCESS, fresh_cache),
        "naive": (NAIVE_PROCESS, lambda: warm_cache),
    }
    # Round by round, so that a slow patch of the shared machine falls on every kind.
    rounds = 1 if quick else 3
    reports: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for number in range(1, rounds + 1):
        for kind, (code, cache_dir) in kinds.items():
            label = f"cold start: {kind}, round {number} of {rounds}"
            reports[kind].append(start_process(label, code, MODEL, picture, cache_dir()))
    warm, empty, naive = (Stats.of(report["seconds"] for report in reports[kind]) for kind in kinds)
    warm_ratio, empty_ratio = ratio(warm, naive), ratio(empty, naive)
    rows = [
        Row(
            GROUP,
            "app, warm engine cache",
            "s",
            warm,
            baseline="naive",
            ratio=warm_ratio,
            target=f"≤ {TARGET_WARM_SECONDS} s and ≤ {TARGET_WARM_OVER_NAIVE}×",
            met=warm.median <= TARGET_WARM_SECONDS and warm_ratio <= TARGET_WARM_OVER_NAIVE,
        ),
        Row(
            GROUP,
            "app, empty engine cache",
            "s",
            empty,
            baseline="naive",
            ratio=empty_ratio,
            target=f"≤ {TARGET_EMPTY_OVER_NAIVE}×",
            met=empty_ratio <= TARGET_EMPTY_OVER_NAIVE,
            note="a fresh CLASSIFIER_CACHE_DIR per run",
        ),
        Row(GROUP, "naive process (TensorFlow + Keras + predict)", "s", naive),
    ]

    memory_reports = [
        start_process(f"memory: default model, run {i}", APP_PROCESS, "", picture, warm_cache)
        for i in range(1, (1 if quick else 3) + 1)
    ]
    app_memory = Stats.of((report["peak_rss_kb"] for report in memory_reports), scale=1 / 1024)
    naive_memory = Stats.of((report["peak_rss_kb"] for report in reports["naive"]), scale=1 / 1024)
    loaded = memory_reports[0]["model"]
    default = get_settings().default_model
    if loaded == default:
        memory_note = f"loaded {loaded} and classified one picture"
    else:
        memory_note = f"the default model {default} fell back to {loaded} with a notice"
    rows += [
        Row(
            MEMORY_GROUP,
            "app process, default model",
            "MB",
            app_memory,
            baseline="naive",
            ratio=ratio(app_memory, naive_memory),
            note=memory_note,
        ),
        Row(MEMORY_GROUP, "naive process (TensorFlow + Keras)", "MB", naive_memory),
    ]
    return rows + command_line(picture, warm_cache, quick=quick)


def _wall_seconds(label: str, command: list[str], cache_dir: Path) -> float:
    """Run a command to its end; return the seconds from start to exit."""
    say(label)
    env = {**os.environ, "CLASSIFIER_CACHE_DIR": str(cache_dir)}
    started = time.perf_counter()
    finished = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise RuntimeError(f"A benchmark process failed:\n{finished.stderr[-3000:]}")
    return seconds


def command_line(picture: Path, warm_cache: Path, *, quick: bool) -> list[Row]:
    """Time `python -m classifier predict PICTURE` (warm cache) against importing TensorFlow."""
    commands = {
        "cli": [sys.executable, "-m", "classifier", "predict", "--model", MODEL, str(picture)],
        "tensorflow": [sys.executable, "-c", "import tensorflow"],
    }
    for kind, command in commands.items():  # untimed: the OS file cache holds the libraries
        _wall_seconds(f"command line: untimed {kind} run", command, warm_cache)
    rounds = 2 if quick else 5
    seconds: dict[str, list[float]] = {kind: [] for kind in commands}
    for number in range(1, rounds + 1):  # alternating, so a slow patch falls on both
        for kind, command in commands.items():
            label = f"command line: {kind}, round {number} of {rounds}"
            seconds[kind].append(_wall_seconds(label, command, warm_cache))
    cli, tensorflow = Stats.of(seconds["cli"]), Stats.of(seconds["tensorflow"])
    cli_ratio = ratio(cli, tensorflow)
    return [
        Row(
            CLI_GROUP,
            f"python -m classifier predict photo.jpg ({MODEL}, warm engine cache)",
            "s",
            cli,
            baseline="import tensorflow",
            ratio=cli_ratio,
            target=f"< {TARGET_CLI_SECONDS} s and < {TARGET_CLI_OVER_TENSORFLOW}×",
            met=cli.median < TARGET_CLI_SECONDS and cli_ratio < TARGET_CLI_OVER_TENSORFLOW,
            note="from start to exit, printing the top 5; imports neither SQLAlchemy, pandas "
            "nor TensorFlow",
        ),
        Row(CLI_GROUP, 'python -c "import tensorflow"', "s", tensorflow),
    ]
