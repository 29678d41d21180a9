"""The HTTP API under load, against the Gradio image-classifier demo's own API.

`python -m benchmarks --api` runs this suite alone. Both servers run on this machine in
the same run: the app (`streamlit run`, through `server.serve`, serving
`POST /api/v1/predict` with EfficientNet-Lite0 on LiteRT and its default queue settings)
and Gradio's published image-classifier demo (`benchmarks/gradio_demo.py`: `gr.Interface`,
Keras MobileNetV2 with `model.predict`, random weights offline, Gradio's default queue),
in an interpreter that has gradio ($BENCHMARK_GRADIO_PYTHON, see `browser.gradio_python`).
Without gradio, the app's rows run alone, without a ratio.

Each side is called as a program calls it: the app with httpx (`POST /api/v1/predict`,
multipart `file`, `model`, `top_k=3`, `save=false`), the demo with gradio_client
(`Client(url).predict(handle_file(path), api_name=...)`, which uploads the file and
follows the queue's event stream, as Gradio documents for its API). Both are asked for
the top 3 classes (the demo's `gr.Label(num_top_classes=3)`), and neither saves anything.

The callers run in a worker process per side and level (`python -m benchmarks.api SIDE
URL PHOTO CLIENTS SECONDS`), one client object and thread per simulated client, each
sending the next request as soon as its answer arrives (a closed loop), for a fixed time.
Threads, not processes: on 2 cores, more processes would take CPU from the servers; the
workers' own CPU time is measured and reported, so that their share is visible. The
Gradio side's worker runs in the Gradio interpreter: gradio_client comes with gradio
there, and installing it into the app's environment would upgrade click (which Streamlit
uses) and add huggingface_hub; the app's environment stays as its requirements make it.

Per round, for each level of 1, 4 and 16 clients, the app's worker and the demo's run one
after the other, in alternating order from round to round (app first in even rounds), so
a slow patch of the shared machine falls on both. A round of one side at one level is
one sample: its throughput (answers per second, from the moment all clients start to the
moment the last answer arrives), its median and 95th-percentile latency, its errors
(anything but a 200 with an answer; a 503 from the app's queue counts), and the server's
peak RSS (VmRSS of the server process and any children, sampled every 50 ms on
the same monotonic clock as the workers' windows). Before the rounds each side has an
untimed warm-up level, and each client makes one untimed call before its window opens.

At 1 client each round also runs the app's caller without keep-alive (a new connection
per request), right after the others: on a reused connection, Streamlit's server holds
each response back by about 40 ms (Streamlit binds its listening socket with protocol 0,
so asyncio does not set TCP_NODELAY on its connections, and Nagle's algorithm waits for
the caller's delayed ACK), and this row shows how much of the app's latency at 1 client
that is.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import browser
from benchmarks.report import Row, ratio, say
from benchmarks.server import ROOT, serve
from benchmarks.timing import Stats

THROUGHPUT_GROUP = "API, throughput"
LATENCY_GROUP = "API, latency per request"
MEMORY_GROUP = "API, server memory under load"
LEVELS = (1, 4, 16)
TARGET_LEVEL = 16
TARGET_THROUGHPUT = 2.0  # the app's answers per second against Gradio's, at 16 clients
TOP_K = 3  # the demo's gr.Label(num_top_classes=3)
SAMPLE_EVERY_S = 0.05
APP, GRADIO, APP_NEW = "app", "gradio", "app-new-connection"
NAMES = {
    APP: "app (POST /api/v1/predict)",
    GRADIO: "Gradio demo (gradio_client)",
    APP_NEW: "app, a new connection per request",
}


# --- The worker: the callers of one side at one level --------------------------------


def _app_caller(url: str, photo: Path, keep_alive: bool = True):
    """Return a function that sends the photo once and returns an error's name or None.

    With `keep_alive` (httpx's default) the requests share one connection; without it,
    each request opens its own, as a program calling `httpx.post` each time does.
    """
    import httpx

    limits = httpx.Limits() if keep_alive else httpx.Limits(max_keepalive_connections=0)
    http = httpx.Client(base_url=url, timeout=300, limits=limits)
    data = photo.read_bytes()
    fields = {"model": "efficientnet_lite0", "top_k": str(TOP_K), "save": "false"}

    def call() -> str | None:
        try:
            answer = http.post(
                "/api/v1/predict", files={"file": (photo.name, data, "image/jpeg")}, data=fields
            )
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if answer.status_code != 200:
            return str(answer.status_code)
        if len(answer.json()["predictions"][0]["top_k"]) != TOP_K:
            return "no answer"
        return None

    return call


def _gradio_caller(url: str, photo: Path):
    """Return a function that sends the photo once through gradio_client (see _app_caller)."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    # Gradio names an Interface's endpoint after its function (/classify_image here);
    # older versions named it /predict.
    api_name = "/predict" if "/predict" in named else next(iter(named))

    def call() -> str | None:
        try:
            answer = client.predict(handle_file(str(photo)), api_name=api_name)
        except Exception as exc:  # whatever the client raises is an error of this request
            return type(exc).__name__
        return None if answer.get("label") else "no answer"

    call.api_name = api_name
    return call


def worker(side: str, url: str, photo: Path, clients: int, seconds: float) -> dict:
    """Run `clients` closed-loop callers for `seconds`; return what they measured.

    Each caller makes one untimed call, then all start together; a caller sends no new
    request after `seconds`, and the window ends when the last answer arrives.
    """
    make = {
        APP: _app_caller,
        APP_NEW: functools.partial(_app_caller, keep_alive=False),
        GRADIO: _gradio_caller,
    }[side]
    window: dict[str, float] = {}

    def opened() -> None:  # run by the last caller to reach the barrier, before any goes on
        window.update(start=time.monotonic(), cpu=time.process_time())

    ready = threading.Barrier(clients, action=opened)
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    ends: list[float] = []
    names: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        try:
            call = make(url, photo)
            call()  # untimed: connections, and the Gradio client's config
        except BaseException:
            ready.abort()  # the others stop waiting: the worker fails
            raise
        ready.wait()
        deadline = window["start"] + seconds
        mine, failed = [], collections.Counter()
        while time.monotonic() < deadline:
            started = time.monotonic()
            error = call()
            if error is None:
                mine.append(time.monotonic() - started)
            else:
                failed[error] += 1
        with lock:
            latencies.extend(mine)
            errors.update(failed)
            ends.append(time.monotonic())
            names.append(getattr(call, "api_name", "/api/v1/predict"))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(ends) != clients:
        raise RuntimeError("Expected every caller to finish its window; see the errors above.")
    return {
        "start": window["start"],
        "end": max(ends),
        "latencies": latencies,
        "errors": dict(errors),
        "client_cpu_s": time.process_time() - window["cpu"],
        "api_name": names[0],
    }


# --- The servers' memory and CPU -----------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """Return a process and its descendants (that still run)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pending += [int(child) for child in children.read_text().split()]
    return found


def _tree_now(pid: int) -> tuple[float, float]:
    """Return a process tree's resident memory (MB) and CPU time so far (s)."""
    rss_kb, ticks = 0, 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kb += int(line.split()[1])
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return rss_kb / 1024, ticks / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Samples a server's memory and CPU on the monotonic clock, in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float, float]] = []  # (monotonic s, MB, CPU s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), *_tree_now(self.pid)))
            self._stop.wait(SAMPLE_EVERY_S)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.monotonic(), *_tree_now(self.pid)))

    def during(self, start: float, end: float) -> tuple[float, float]:
        """Return the peak RSS (MB) and the CPU seconds used between two moments."""
        inside = [s for s in self.samples if start <= s[0] <= end] or self.samples[-1:]
        before = max((s for s in self.samples if s[0] <= start), default=self.samples[0])
        after = min((s for s in self.samples if s[0] >= end), default=self.samples[-1])
        return max(s[1] for s in inside), after[2] - before[2]


# --- One side at one level ------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """One side's round at one level."""

    clients: int
    latencies_s: tuple[float, ...]
    errors: dict[str, int]
    window_s: float
    client_cpu_s: float
    server_cpu_s: float
    peak_mb: float
    api_name: str

    @property
    def answered(self) -> int:
        return len(self.latencies_s)

    @property
    def throughput(self) -> float:
        return self.answered / self.window_s

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q)) * 1000


def load(python: str, side: str, pid: int, url: str, photo: Path, clients: int, seconds: float):
    """Run one side's worker at one level and sample its server meanwhile; return a Level."""
    command = [python, "-m", "benchmarks.api", side, url, str(photo), str(clients), str(seconds)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with Sampler(pid) as sampler:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"The {side} worker failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.splitlines()[-1])
    peak, cpu = sampler.during(result["start"], result["end"])
    return Level(
        clients,
        tuple(result["latencies"]),
        result["errors"],
        result["end"] - result["start"],
        result["client_cpu_s"],
        cpu,
        peak,
        result["api_name"],
    )


# --- The suite -----------------------------------------------------------------------


def run(scratch: Path, *, quick: bool) -> list[Row]:
    """Load both APIs at 1, 4 and 16 clients in alternating rounds (see the docstring)."""
    python, why = browser.gradio_python()
    if python is None:
        say(f"api: the Gradio demo is skipped ({why}); the app's rows run without a ratio")
    rounds, seconds = (1, 4.0) if quick else (3, 8.0)
    photo = ROOT / "assets" / "examples" / "cat.jpg"
    say("api: exporting EfficientNet-Lite0 into the engine cache")
    browser.prepare_engines()
    sides: dict[str, tuple[str, int, str]] = {}  # side -> (python, server pid, url)
    results: dict[str, dict[int, list[Level]]] = {}
    idle: dict[str, float] = {}
    with contextlib.ExitStack() as servers:
        if python is not None:
            say("api: starting the Gradio demo")
            try:
                demo = servers.enter_context(browser.gradio_demo(python, scratch / "api-gradio"))
                sides[GRADIO] = (python, demo.pid, demo.url)
            except RuntimeError as exc:
                say(f"api: the Gradio demo is skipped ({exc})")
                why = str(exc).splitlines()[0]
        app = servers.enter_context(serve(scratch / "api-app"))
        sides = {APP: (sys.executable, app.pid, app.url), **sides}
        results = {side: {clients: [] for clients in LEVELS} for side in sides}
        results[APP_NEW] = {1: []}
        for side, (side_python, pid, url) in sides.items():
            say(f"api: warming up {NAMES[side]} (4 clients, untimed)")
            load(side_python, side, pid, url, photo, 4, min(seconds, 4.0))
            idle[side] = _tree_now(pid)[0]
        for number in range(rounds):
            order = list(sides) if number % 2 == 0 else list(reversed(sides))
            for clients in LEVELS:
                for side in order + ([APP_NEW] if clients == 1 else []):
                    side_python, pid, url = sides.get(side, sides[APP])
                    say(f"api: round {number + 1} of {rounds}, {clients} clients, {NAMES[side]}")
                    level = load(side_python, side, pid, url, photo, clients, seconds)
                    results[side][clients].append(level)
                    say(
                        f"api:   {level.throughput:.1f}/s, p50 {level.percentile(50):.0f} ms, "
                        f"p95 {level.percentile(95):.0f} ms, errors {level.errors or 0}, "
                        f"RSS {level.peak_mb:.0f} MB"
                    )
    return rows_of(results, idle, rounds, seconds, why)


def _pooled(levels: list[Level]) -> Level:
    """All rounds of one side at one level as one (for the notes)."""
    errors: collections.Counter[str] = collections.Counter()
    for level in levels:
        errors.update(level.errors)
    return Level(
        levels[0].clients,
        tuple(s for level in levels for s in level.latencies_s),
        dict(errors),
        sum(level.window_s for level in levels),
        sum(level.client_cpu_s for level in levels),
        sum(level.server_cpu_s for level in levels),
        max(level.peak_mb for level in levels),
        levels[0].api_name,
    )


def _plural(clients: int) -> str:
    return f"{clients} client{'s' if clients > 1 else ''}"


def _note(levels: list[Level], measure: str, rounds: int, seconds: float) -> str:
    """What a row's figure rests on: answers, errors and CPU, or the pooled percentiles."""
    pooled = _pooled(levels)
    if measure == "throughput":
        per_answer = 1000 / max(1, pooled.answered)
        errors = (
            ", ".join(f"{count} × {name}" for name, count in sorted(pooled.errors.items()))
            or "none"
        )
        return (
            f"{pooled.answered:,} answers in {rounds} × {seconds:.0f} s; errors: {errors}; "
            f"CPU per answer: server {pooled.server_cpu_s * per_answer:.1f} ms, "
            f"callers {pooled.client_cpu_s * per_answer:.1f} ms"
        )
    if measure == "p95":
        return (
            f"all rounds pooled: p50 {pooled.percentile(50):.0f} ms, "
            f"p95 {pooled.percentile(95):.0f} ms, max {pooled.percentile(100):.0f} ms"
        )
    return ""


MEASURES = {  # measure -> (group, what the row says, unit, value of one round)
    "throughput": (THROUGHPUT_GROUP, "answers per second", "answers/s", Level.throughput.fget),
    "p50": (LATENCY_GROUP, "p50 latency", "ms", lambda level: level.percentile(50)),
    "p95": (LATENCY_GROUP, "p95 latency", "ms", lambda level: level.percentile(95)),
}


def _new_connection_rows(
    results: dict[str, dict[int, list[Level]]], rounds: int, seconds: float
) -> list[Row]:
    """The app at 1 client without keep-alive, against itself with it."""
    rows = []
    for measure in ("throughput", "p50"):
        group, label, unit, value = MEASURES[measure]
        fresh = Stats.of(value(level) for level in results[APP_NEW][1])
        kept = Stats.of(value(level) for level in results[APP][1])
        note = _note(results[APP_NEW][1], measure, rounds, seconds)
        rows.append(
            Row(
                group,
                f"1 client · {label} · {NAMES[APP_NEW]}",
                unit,
                fresh,
                baseline="keep-alive",
                ratio=ratio(fresh, kept),
                note=note,
            )
        )
    return rows


def rows_of(
    results: dict[str, dict[int, list[Level]]],
    idle: dict[str, float],
    rounds: int,
    seconds: float,
    why: str,
) -> list[Row]:
    """Turn the rounds into rows: throughput, p50 and p95 per level and side, then memory.

    Each row's samples are its rounds; the target rows are the app's at 16 clients.
    """
    has_gradio = GRADIO in results
    rows = []
    for clients in LEVELS:
        for measure, (group, label, unit, value) in MEASURES.items():
            app = results[APP][clients]
            ours = Stats.of(value(level) for level in app)
            gradio = results[GRADIO][clients] if has_gradio else None
            theirs = Stats.of(value(level) for level in gradio) if gradio else None
            target, met = "", None
            if clients == TARGET_LEVEL and measure == "throughput":
                target = f"≥ {TARGET_THROUGHPUT:.0f}× Gradio"
                met = ratio(ours, theirs) >= TARGET_THROUGHPUT if theirs else None
            elif clients == TARGET_LEVEL and measure == "p95":
                target = "< Gradio"
                met = ratio(ours, theirs) < 1 if theirs else None
            note = _note(app, measure, rounds, seconds)
            if measure == "throughput" and not has_gradio:
                note += f"; no Gradio demo in this run ({why})"
            rows.append(
                Row(
                    group,
                    f"{_plural(clients)} · {label} · {NAMES[APP]}",
                    unit,
                    ours,
                    baseline="Gradio demo" if theirs else "",
                    ratio=ratio(ours, theirs) if theirs else None,
                    target=target,
                    met=met,
                    note=note,
                )
            )
            if gradio:
                note = _note(gradio, measure, rounds, seconds)
                if measure == "throughput":
                    note += f"; endpoint {gradio[0].api_name}"
                rows.append(
                    Row(
                        group,
                        f"{_plural(clients)} · {label} · {NAMES[GRADIO]}",
                        unit,
                        theirs,
                        note=note,
                    )
                )
        if clients == 1:
            rows += _new_connection_rows(results, rounds, seconds)
    peaks = {
        side: max(level.peak_mb for levels in by_level.values() for level in levels)
        for side, by_level in results.items()
        if side != APP_NEW
    }
    for side, peak in peaks.items():
        per_level = ", ".join(
            f"{max(level.peak_mb for level in results[side][clients]):.0f} MB at {clients}"
            for clients in LEVELS
        )
        compared = side == APP and has_gradio
        rows.append(
            Row(
                MEMORY_GROUP,
                f"peak RSS over all levels · {NAMES[side]}",
                "MB",
                Stats.of([peak]),
                baseline="Gradio demo" if compared else "",
                ratio=peak / peaks[GRADIO] if compared else None,
                target="< Gradio" if side == APP else "",
                met=peak < peaks[GRADIO] if compared else None,
                note=f"the server process and its children, sampled every "
                f"{SAMPLE_EVERY_S * 1000:.0f} ms; {idle[side]:.0f} MB after the warm-up; "
                f"peak per level: {per_level}",
            )
        )
    return rows


def main(argv: list[str]) -> int:
    """`python -m benchmarks.api SIDE URL PHOTO CLIENTS SECONDS`: one worker; JSON to stdout."""
    side, url, photo, clients, seconds = argv
    result = worker(side, url, Path(photo), int(clients), float(seconds))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
