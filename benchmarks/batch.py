"""A folder of photos: the command line and `classify_files` against the machine's limit.

The limit is what bare code gets from every core at once: one process per core, each a
loop of Pillow's draft decode, the crop and a bare LiteRT interpreter on one thread,
over its share of the folder. Against it, in alternating rounds: `python -m classifier
predict FOLDER -r` as a whole process, `classify_files` in this process (each worker
with a one-thread twin of the engine, and, for comparison, the workers sharing the
model's engine), `predict.classify` one file after another (the command line before the
pipeline), and the Keras script a person would write (`keras.utils.load_img`, then
`model.predict` on batches of 32), each in a process of its own.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps

from benchmarks import lite0, photos
from benchmarks.report import Row, ratio, say
from benchmarks.timing import Stats
from classifier import models
from classifier.config import PROJECT_ROOT
from classifier.predict import classify

GROUP = "Batches: a folder of photos"
CPU_GROUP = "Batches: CPU time per photo"
TARGET_OVER_LIMIT = 0.9  # the command line, start-up included, against the bare limit
UNIT = "photos/s"
LARGE = (4000, 3000)  # 12 MP, as a phone takes them
SMALL = (800, 600)
MARGIN = 64  # the large photos' noise is one field, read at a different offset for each
KERAS_BATCH = 32
KERAS_ROUNDS = 2
# The machine is shared: a measure during which other processes took more than this share
# of the CPU is run again (at most RETRIES times), after waiting up to QUIET_WAIT seconds
# for a quiet second.
INTERFERENCE = 0.05
RETRIES = 4
QUIET_WAIT = 120
TOP_K = 5
T = TypeVar("T")  # what a measure returns

BARE = "bare limit: one process per core (Pillow draft decode + crop + LiteRT, 1 thread each)"
CLI = "python -m classifier predict FOLDER -r (whole process, start-up included)"
PIPELINE = "classify_files in process (a 1-thread engine twin per worker)"
SHARED = "classify_files in process, the workers sharing the model's engine"
ONE_BY_ONE = "predict.classify one file after another (the command line before)"
KERAS = f"Keras script: load_img + model.predict in batches of {KERAS_BATCH}"


def make_folder(folder: Path, count: int) -> list[Path]:
    """Write `count` JPEGs (quality 90) made from the example photos: every third one
    4000 x 3000 (about 3.5 MB), the others 800 x 600, each with its own sensor-like noise.

    Returns:
        The files, in the order the command line finds them.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    height, width = LARGE[1] + MARGIN, LARGE[0] + MARGIN
    grey = rng.standard_normal((height, width, 1), dtype=np.float32) * photos.NOISE
    colour = rng.standard_normal((height, width, 3), dtype=np.float32) * (photos.NOISE / 2)
    noise = np.rint(grey + colour).clip(-127, 127).astype(np.int8)
    del grey, colour
    scaled: dict[str, np.ndarray] = {}
    paths = []
    for number in range(count):
        source = photos.SOURCES[(number // 3) % len(photos.SOURCES)]
        if number % 3 == 0:
            if source not in scaled:
                fitted = ImageOps.fit(photos.sample_photo(source), LARGE, Image.Resampling.BICUBIC)
                scaled[source] = np.asarray(fitted, dtype=np.int16)
            top, left = rng.integers(0, MARGIN, 2)
            window = noise[top : top + LARGE[1], left : left + LARGE[0]]
            pixels = np.clip(scaled[source] + window, 0, 255).astype(np.uint8)
        else:
            pixels = photos.photo(source, SMALL, seed=1000 + number)
        path = folder / f"photo-{number:04}.jpg"
        path.write_bytes(photos.encode(pixels, "JPEG"))
        paths.append(path)
    return paths


@dataclass(frozen=True)
class Measured:
    """One run over the folder: photos per second, CPU milliseconds per photo (every
    thread and process of the run), and seconds spent before the timed part, if any."""

    rate: float
    cpu_ms: float
    before: float = 0.0


def bare_loop(tflite: str, name: str, files: list[str], ready, start, finished) -> None:
    """One process of the bare limit: open the interpreter, say so, wait for the start,
    then decode, crop and run each file; put the time it finished and the CPU it took."""
    from ai_edge_litert.interpreter import Interpreter

    spec = models.get_spec(name)
    size = spec.input_size
    interpreter = Interpreter(model_path=tflite, num_threads=1)
    interpreter.allocate_tensors()
    given = interpreter.get_input_details()[0]["index"]
    answer = interpreter.get_output_details()[0]["index"]
    ready.put(os.getpid())
    start.wait()
    cpu = time.process_time()
    for file in files:
        with Image.open(file) as image:
            image.draft("RGB", (size, size))
            image = image.convert("RGB")
            side = min(image.size) * spec.crop_fraction
            left, top = (image.width - side) / 2, (image.height - side) / 2
            box = (left, top, left + side, top + side)
            pixels = np.asarray(
                image.resize((size, size), Image.Resampling.BILINEAR, box=box), np.float32
            )
        interpreter.set_tensor(given, spec.preprocess(pixels[np.newaxis]))
        interpreter.invoke()
        np.argsort(-interpreter.get_tensor(answer)[0])[:TOP_K]
    finished.put((time.perf_counter(), time.process_time() - cpu))


def bare_limit(tflite: Path, name: str, paths: list[Path], cores: int) -> Measured:
    """Return the bare limit, timed from the start signal to the last process's end; its
    `before` is the seconds its processes took to start and open their interpreter."""
    context = multiprocessing.get_context("spawn")  # never a fork of this process's threads
    ready, start, finished = context.Queue(), context.Event(), context.Queue()
    shares = [[str(path) for path in paths[core::cores]] for core in range(cores)]
    processes = [
        context.Process(target=bare_loop, args=(str(tflite), name, share, ready, start, finished))
        for share in shares
    ]
    launched = time.perf_counter()
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=600)
    started = time.perf_counter()
    start.set()
    ends, cpu = zip(*(finished.get(timeout=600) for _ in processes), strict=True)
    for process in processes:
        process.join()
    seconds = max(ends) - started
    return Measured(len(paths) / seconds, sum(cpu) / len(paths) * 1000, started - launched)


def command_line(folder: Path) -> Measured:
    """Measure `python -m classifier predict FOLDER -r` from start to exit."""
    count = sum(1 for _ in folder.glob("*.jpg"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "classifier", "predict", str(folder), "-r"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"The command line failed:\n{done.stderr[-3000:]}")
    return Measured(count / seconds, _children_cpu(before) / count * 1000)


def _children_cpu(before: resource.struct_rusage) -> float:
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def in_process(outcomes, count: int) -> Measured:
    """Measure consuming an iterator of Outcomes in this process."""
    cpu = time.process_time()
    started = time.perf_counter()
    for outcome in outcomes:
        if outcome.prediction is None:
            raise RuntimeError(f"{outcome.path}: {outcome.error}")
        outcome.prediction.top(TOP_K)
    seconds = time.perf_counter() - started
    return Measured(count / seconds, (time.process_time() - cpu) / count * 1000)


def one_by_one(loaded: models.LoadedModel, paths: list[Path]) -> Measured:
    """Measure `classify` on each file in turn, as the command line did."""
    cpu = time.process_time()
    started = time.perf_counter()
    for path in paths:
        classify(path.read_bytes(), loaded).top(TOP_K)
    seconds = time.perf_counter() - started
    return Measured(len(paths) / seconds, (time.process_time() - cpu) / len(paths) * 1000)


# What a person would write with Keras; argv: the model's name, the folder. It prints
# the seconds spent importing TensorFlow and building the model, then in the loop.
KERAS_SCRIPT = f"""
import json, sys, time
started = time.perf_counter()
import keras
import numpy as np
from classifier import models
spec = models.get_spec(sys.argv[1])
model = spec.build(spec.weights_file())
ready, cpu = time.perf_counter(), time.process_time()
paths = sorted(p for p in __import__("pathlib").Path(sys.argv[2]).glob("*.jpg"))
size = (spec.input_size, spec.input_size)
for first in range(0, len(paths), {KERAS_BATCH}):
    batch = np.stack([
        keras.utils.img_to_array(keras.utils.load_img(path, target_size=size))
        for path in paths[first : first + {KERAS_BATCH}]
    ])
    probabilities = model.predict(spec.preprocess(batch), verbose=0)
    top = np.argsort(-probabilities, axis=1)[:, :{TOP_K}]
loop, cpu = time.perf_counter() - ready, time.process_time() - cpu
print(json.dumps({{"setup": ready - started, "loop": loop, "cpu": cpu, "n": len(paths)}}))
"""


def keras_script(name: str, folder: Path) -> Measured:
    """Measure the Keras script's loop; `before` is its import and build time."""
    done = subprocess.run(
        [sys.executable, "-c", KERAS_SCRIPT, name, str(folder)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"The Keras script failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    count = report["n"]
    return Measured(count / report["loop"], report["cpu"] / count * 1000, report["setup"])


def _cpu_seconds() -> tuple[float, float]:
    """Return the CPU seconds the whole machine has been busy, and those of this process
    with its ended children (Linux; elsewhere both are 0)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return 0.0, 0.0
    user, nice, system, _, _, irq, softirq, steal = (int(field) for field in fields)
    machine = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return machine, own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class OthersShare:
    """The share of the machine's CPU that other processes use from now until `share()`."""

    def __init__(self) -> None:
        self.machine, self.ours = _cpu_seconds()
        self.started = time.perf_counter()

    def share(self) -> float:
        wall = time.perf_counter() - self.started
        machine, ours = _cpu_seconds()
        return max(0.0, (machine - self.machine) - (ours - self.ours)) / (wall * cores())


def measured_alone(measure: Callable[[], T], label: str = "batch") -> tuple[T, float, int]:
    """Run a measure while other processes leave the machine alone: wait (a while at most)
    for a quiet second, and run it again (a few times at most) if others took more than
    INTERFERENCE of the CPU meanwhile. Return it, the others' share, and the runs redone.
    `label` starts the lines said meanwhile (the suite's name)."""
    for redone in range(RETRIES + 1):
        deadline = time.monotonic() + QUIET_WAIT
        while time.monotonic() < deadline:
            second = OthersShare()
            time.sleep(1.0)
            if second.share() <= INTERFERENCE:
                break
            say(f"{label}: other processes are busy; waiting")
        during = OthersShare()
        result = measure()
        share = during.share()
        if share <= INTERFERENCE or redone == RETRIES:
            return result, share, redone
        say(f"{label}: other processes took {share:.0%} of the CPU meanwhile; measuring again")
    raise AssertionError("unreachable")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run(scratch: Path, *, quick: bool) -> list[Row]:
    """Measure every way over the same folder, in alternating rounds."""
    from classifier.jobs import pipeline  # (the jobs package imports the history)

    count = 30 if quick else 300
    rounds = 2 if quick else 5
    loaded = lite0.load()  # the model `predict` answers with, its engine file exported
    default = models.load(None)
    if default.name != loaded.name:
        raise RuntimeError(f"The default model is {default.name}; this suite expects {lite0.NAME}")
    tflite = models.cached_engine_path(loaded.name)
    say(f"batch: writing {count} photos")
    folder = scratch / "folder"
    paths = make_folder(folder, count)
    megabytes = sum(path.stat().st_size for path in paths) / 2**20
    alone = scratch / "one photo"
    alone.mkdir()
    (alone / paths[1].name).write_bytes(paths[1].read_bytes())
    workers = pipeline.default_workers()

    say("batch: untimed warm-up runs")
    command_line(alone)
    command_line(folder)
    in_process(pipeline.classify_files(loaded, paths[:6]), 6)

    def cli() -> Measured:
        return replace(command_line(folder), before=1 / command_line(alone).rate)

    measures: dict[str, Callable[[], Measured]] = {
        BARE: lambda: bare_limit(tflite, loaded.name, paths, cores()),
        CLI: cli,
        PIPELINE: lambda: in_process(
            pipeline.classify_files(loaded, paths, digests=False), len(paths)
        ),
        SHARED: lambda: in_process(
            pipeline._outcomes(loaded, paths, False, None, False, twins=False), len(paths)
        ),
        ONE_BY_ONE: lambda: one_by_one(loaded, paths),
        KERAS: lambda: keras_script(loaded.name, folder),
    }
    runs: dict[str, list[Measured]] = {name: [] for name in measures}
    shares: dict[str, list[float]] = {name: [] for name in measures}
    redone: dict[str, int] = dict.fromkeys(measures, 0)
    for number in range(1, rounds + 1):
        order = list(measures) if number % 2 else list(reversed(measures))
        for name in order:
            if name == KERAS and number > KERAS_ROUNDS:
                continue  # a minute a round, and far from the others
            say(f"batch: {name.split(':')[0].split(' (')[0]}, round {number} of {rounds}")
            result, share, again = measured_alone(measures[name])
            runs[name].append(result)
            shares[name].append(share)
            redone[name] += again
    rates = {name: Stats.of(run.rate for run in done) for name, done in runs.items()}
    cpu = {name: Stats.of(run.cpu_ms for run in done) for name, done in runs.items()}
    before = {name: float(np.median([run.before for run in done])) for name, done in runs.items()}
    limit = rates[BARE]
    cli_ratio = ratio(rates[CLI], limit)
    folder_note = (
        f"{count} JPEGs, {megabytes:,.0f} MB: every third 4000 × 3000 (12 MP), the others "
        f"800 × 600, quality 90, made from the example photos with noise; {loaded.name} "
        "(the default model here: offline, mobilenet_v2 falls back to it)"
    )
    notes = {
        BARE: f"{folder_note}; {cores()} processes, each on an interleaved 1/{cores()} of the "
        "photos; timed from a start signal once each has imported and opened its "
        f"interpreter (their start-up, not counted: {before[BARE]:.2f} s)",
        CLI: f"stdout to /dev/null; {workers} workers, as by default here; the same command "
        f"on a folder of one photo takes {before[CLI]:.2f} s (its start-up)",
        PIPELINE: f"{workers} workers, the model already loaded; no digests, as the "
        "command line without --save",
        SHARED: f"{workers} workers decoding, the model's engine ({_threads()} threads) "
        "running one picture at a time",
        ONE_BY_ONE: "read, decode, crop and run each file in turn, the engine on "
        f"{_threads()} threads",
        KERAS: f"{loaded.name} built in Keras with its real weights, in a process of its "
        "own; its loop only: importing TensorFlow and building the model took "
        f"{before[KERAS]:.1f} s more; load_img decodes whole pictures",
    }
    for name in measures:
        notes[name] += (
            f"; other processes took {np.median(shares[name]):.0%} of the CPU (at most "
            f"{max(shares[name]):.0%}) during the runs kept"
            + (f", {redone[name]} run(s) measured again" if redone[name] else "")
        )
    rows = []
    for name in measures:
        is_cli = name == CLI
        rows.append(
            Row(
                GROUP,
                name,
                UNIT,
                rates[name],
                baseline="bare limit",
                ratio=ratio(rates[name], limit),
                target=f"≥ {TARGET_OVER_LIMIT}× bare limit" if is_cli else "",
                met=cli_ratio >= TARGET_OVER_LIMIT if is_cli else None,
                note=notes[name],
            )
        )
    for name in measures:
        rows.append(
            Row(
                CPU_GROUP,
                name.split(" (")[0].split(":")[0],
                "ms",
                cpu[name],
                baseline="bare limit",
                ratio=ratio(cpu[name], cpu[BARE]),
            )
        )
    return rows


def _threads() -> int:
    from classifier.config import get_settings

    return get_settings().num_threads
