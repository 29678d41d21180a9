"""The app and Gradio's image-classifier demo in Chromium, as a person uses them.

`python -m benchmarks --browser` runs this suite alone. Both servers run on this machine
in the same run: the app (`streamlit run`, through `server.serve`) and Gradio's published
image-classifier demo (`benchmarks/gradio_demo.py`: Keras MobileNetV2 and `model.predict`,
random weights offline), in an interpreter that has gradio (requirements-benchmarks.txt):
$BENCHMARK_GRADIO_PYTHON, else this one if it can import gradio. Without gradio the app's
rows still run, without a ratio.

Measured, each in a new browser context (a new session) on an idle page:

- upload -> answer: from `set_input_files` to the answer being visible, for a 773x512
  JPEG and a 12 MP JPEG, in alternating rounds (app, Gradio, app, ...). Every upload is a
  different photo, so the app's prediction cache never answers. Gradio's Interface does not
  answer an upload by itself: its time includes clicking Submit as soon as the picture
  shows.
- the same on the page's own clock (performance.now), without Playwright's polling: for
  the app, to the answer entering the DOM; for Gradio, to the label entering the DOM,
  counting Submit as clicked the moment the uploaded picture is in the DOM.
- where the app's time goes, from the page's own clock: the page's WebSocket messages
  (recorded by an init script and decoded with Streamlit's protobuf classes), the upload's
  resource timing, and a MutationObserver that notes when the answer enters the page.
- History at 100,000 saved predictions: from clicking "History" to its table and caption.
- top-k: from moving the "Classes to show" slider by one to the table showing that many.
- 8 sessions uploading at once: upload -> answer in each, errors, rows saved.
- the servers' resident memory afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks import photos
from benchmarks.report import Row, ratio, say
from benchmarks.server import (
    ROOT,
    Server,
    _free_port,
    chromium,
    chromium_missing,
    running,
    serve,
)
from benchmarks.timing import Stats

UPLOAD_GROUP = "Browser, upload → answer"
BREAKDOWN_GROUP = "Browser, where the app's upload → answer goes"
CLOCK_GROUP = "Browser, upload → answer on the page's own clock"
PAGE_GROUP = "Browser, other interactions"
CONCURRENT_GROUP = "Browser, 8 sessions uploading at once"
MEMORY_GROUP = "Browser, server memory"
TARGET_RATIO = 0.5  # the app's upload -> answer against Gradio's, for both photos
TARGET_HISTORY_S = 1.0
HISTORY_ROWS = 100_000
SESSIONS = 8
WAIT_MS = 120_000  # Playwright's timeout: generous, a CI run may share the CPU
SMALL, LARGE = "773 × 512 JPEG", "12 MP JPEG"

# Runs in every page before its own scripts. Notes, on the page's clock (performance.now):
# each WebSocket message received (its bytes, and the top-level protobuf field numbers, so
# that the page can count Streamlit's "script finished" messages itself), each one sent,
# the moment a file input changes, and the first moment each watched element is in the DOM.
RECORDER = """
(() => {
  const SCRIPT_FINISHED = 6;  // ForwardMsg.script_finished
  const bench = (window.__bench = {
    received: [], sent: [], finished: 0, last: 0, change: null, seen: {}, shown: {},
  });
  const watches = [];
  function fields(bytes) {  // the field numbers of a protobuf message's top level
    const found = [];
    let i = 0;
    const varint = () => {
      let value = 0, scale = 1, byte;
      do { byte = bytes[i++]; value += (byte & 127) * scale; scale *= 128; } while (byte & 128);
      return value;
    };
    while (i < bytes.length) {
      const tag = varint(), wire = tag & 7;
      found.push(Math.floor(tag / 8));
      if (wire === 0) varint();
      else if (wire === 1) i += 8;
      else if (wire === 2) { const length = varint(); i += length; }
      else if (wire === 5) i += 4;
      else break;
    }
    return found;
  }
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const now = performance.now();
        bench.last = now;
        if (!(event.data instanceof ArrayBuffer)) return;
        const bytes = new Uint8Array(event.data);
        if (fields(bytes).includes(SCRIPT_FINISHED)) bench.finished += 1;
        let text = "";
        for (let j = 0; j < bytes.length; j += 8192)
          text += String.fromCharCode(...bytes.subarray(j, j + 8192));
        bench.received.push([now, btoa(text)]);
      });
    }
    send(data) {
      bench.sent.push(performance.now());
      return super.send(data);
    }
  };
  document.addEventListener("change", (event) => {
    if (event.target.type === "file" && bench.change === null) bench.change = performance.now();
  }, true);
  const find = (selector, text) =>
    [...document.querySelectorAll(selector)].find((e) => e.textContent.includes(text));
  function check() {
    const now = performance.now();
    for (const [name, selector, text] of watches)
      if (!(name in bench.seen) && find(selector, text)) bench.seen[name] = now;
  }
  function frame() {  // each frame: has a watched element got a size (is it drawn)?
    for (const [name, selector, text] of watches) {
      const element = name in bench.shown ? null : find(selector, text);
      if (element && element.getBoundingClientRect().height > 0)
        bench.shown[name] = performance.now();
    }
    if (watches.some(([name]) => !(name in bench.shown))) requestAnimationFrame(frame);
  }
  window.__benchWatch = (name, selector, text) => {
    watches.push([name, selector, text]);
    check();
    requestAnimationFrame(frame);
  };
  window.__benchReset = () => {
    bench.received = []; bench.sent = []; bench.change = null; bench.seen = {}; bench.shown = {};
    bench.click = undefined;
    watches.length = 0;
    performance.clearResourceTimings();
    return performance.now();
  };
  new MutationObserver(check).observe(document, {childList: true, subtree: true,
                                                 characterData: true});
})();
"""


@dataclass(frozen=True)
class Photo:
    """A JPEG on disk: Chromium reads it from there, as when a person picks a file.

    (Handing Playwright the bytes instead costs most of a second for a 12 MP photo,
    copying it through the browser's protocol, on both sides alike.)
    """

    path: Path

    @classmethod
    def write(cls, folder: Path, name: str, data: bytes) -> Photo:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        return cls(folder / name)

    def as_file(self) -> str:
        """The file as Playwright's `set_input_files` takes it."""
        return str(self.path)


@dataclass(frozen=True)
class AppUpload:
    """One upload on the app: Playwright's total, and its phases on the page's clock (ms)."""

    total_s: float  # set_input_files -> the answer visible to Playwright
    in_page_ms: float  # set_input_files -> the answer in the page's DOM
    phases: dict[str, float]


# --- Browser pages -------------------------------------------------------------------


def new_page(browser):
    """Return a page in a new browser context (a new session) with the recorder installed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(RECORDER)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    return page


def wait_until_idle(page, finished: int = 1, quiet_ms: int = 300) -> None:
    """Wait until the app's script has finished `finished` runs, no message has come for
    `quiet_ms` and the page shows no "Running…"."""
    from playwright.sync_api import expect

    page.wait_for_function(
        """([finished, quiet]) => window.__bench.finished >= finished
            && performance.now() - window.__bench.last > quiet""",
        arg=[finished, quiet_ms],
        timeout=WAIT_MS,
    )
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT_MS)


def open_app(browser, server: Server):
    """Open a new session on the app's Classify page and wait until it is idle.

    Idle as the Gradio page is waited for too: no network request for half a second,
    so the page has loaded the scripts it fetches after its first paint (a file picked
    while they load waits for them: about 50 ms more here)."""
    page = new_page(browser)
    page.goto(server.url)
    page.get_by_text("What's in this photo?").wait_for()
    wait_until_idle(page)
    page.wait_for_load_state("networkidle")
    return page


def headline(page):
    """The answer's headline on the Classify page: "espresso · 95%"."""
    return page.locator("h3").filter(has_text="·").first


def forward_messages(page) -> list[tuple[float, object]]:
    """Return the Streamlit messages the page received since its last reset: (ms, ForwardMsg)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    received = page.evaluate("window.__bench.received")
    return [(at, ForwardMsg.FromString(base64.b64decode(data))) for at, data in received]


def first_of(messages, kind: str) -> float | None:
    """Return when the first message of a kind ("script_finished", ...) arrived (ms)."""
    return next((at for at, message in messages if message.WhichOneof("type") == kind), None)


# --- Upload -> answer ----------------------------------------------------------------


def app_upload(browser, server: Server, photo: Photo) -> AppUpload:
    """Upload one photo in a new session; time it to the answer and break the time down."""
    page = open_app(browser, server)
    finished_before = page.evaluate("window.__bench.finished")
    start_ms = page.evaluate("window.__benchReset()")
    page.evaluate("window.__benchWatch('answer', 'h3', '·')")
    started = time.perf_counter()
    page.locator("input[type=file]").first.set_input_files(photo.as_file())
    headline(page).wait_for()
    total = time.perf_counter() - started
    wait_until_idle(page, finished_before + 1)  # the rest of the page: chart, table, ...
    marks = page.evaluate("window.__bench")
    upload = page.evaluate(
        """() => performance.getEntriesByType("resource")
            .filter((entry) => entry.name.includes("/_stcore/upload_file"))
            .map((entry) => entry.responseEnd)"""
    )
    messages = forward_messages(page)
    page.context.close()
    answer_sent = first_element(messages, "heading", "·")
    finished = first_of(messages, "script_finished")
    if not upload or None in (answer_sent, finished, marks["change"]):
        raise RuntimeError("Expected the upload request and the answer's messages in the page.")
    in_dom, drawn, uploaded = marks["seen"]["answer"], marks["shown"]["answer"], max(upload)
    phases = {  # ms, one after the other; the last one is not on the way to the answer
        "Chromium reads the file (set_input_files → change event)": marks["change"] - start_ms,
        "upload (file URL request + PUT /_stcore/upload_file)": uploaded - marks["change"],
        "server: rerun until the answer's message arrives": answer_sent - uploaded,
        "browser: answer's message → answer in the DOM": in_dom - answer_sent,
        "browser: answer in the DOM → drawn (has a size)": drawn - in_dom,
        "drawn → visible to Playwright": max(0.0, total * 1000 - (drawn - start_ms)),
        "rest of the script after the answer's message (off the path)": finished - answer_sent,
    }
    return AppUpload(total, in_dom - start_ms, phases)


@dataclass(frozen=True)
class GradioUpload:
    """One upload on the Gradio demo: Playwright's total, and its phases on the page's clock."""

    total_s: float  # set_input_files -> the label visible to Playwright, Submit clicked between
    preview_s: float  # set_input_files -> the uploaded picture visible to Playwright
    in_page_ms: float  # as if Submit were clicked the moment the preview is in the DOM
    click_lag_ms: float  # preview in the DOM -> Playwright's click arrives


def gradio_upload(browser, url: str, photo: Photo) -> GradioUpload:
    """Upload one photo to the Gradio demo in a new page and press Submit once it shows."""
    page = new_page(browser)
    page.goto(url)
    submit = page.get_by_role("button", name="Submit")
    submit.wait_for()
    page.wait_for_load_state("networkidle")
    page.evaluate(
        """document.addEventListener("click", () => {
            window.__bench.click ??= performance.now(); }, true)"""
    )
    start_ms = page.evaluate("window.__benchReset()")
    page.evaluate("window.__benchWatch('preview', \"img[src*='gradio_api/file=']\", '')")
    page.evaluate("window.__benchWatch('label', \"[data-testid='label-output-value']\", '')")
    started = time.perf_counter()
    page.locator("input[type=file]").first.set_input_files(photo.as_file())
    page.locator("img[src*='gradio_api/file=']").first.wait_for()  # the upload's preview
    uploaded = time.perf_counter() - started
    submit.click()
    label = page.get_by_test_id("label-output-value").first  # the top class, in large type
    label.wait_for()
    total = time.perf_counter() - started
    if not label.inner_text().strip():
        raise RuntimeError("Expected the Gradio demo's label to name a class.")
    marks = page.evaluate("window.__bench")
    page.context.close()
    preview, answer, click = marks["seen"]["preview"], marks["seen"]["label"], marks["click"]
    return GradioUpload(total, uploaded, (preview - start_ms) + (answer - click), click - preview)


def first_element(messages, kind: str, text: str = "") -> float | None:
    """Return when the first message adding a `kind` element (with `text` in its body) arrived.

    `kind` is the element's field in Streamlit's Element message: "heading", "markdown"
    (captions too), "dataframe", ...
    """
    for at, message in messages:
        if message.WhichOneof("type") != "delta":
            continue
        element = message.delta.new_element
        if element.WhichOneof("type") == kind and (not text or text in getattr(element, kind).body):
            return at
    return None


# --- The Gradio demo -----------------------------------------------------------------


def gradio_python() -> tuple[str | None, str]:
    """Return the interpreter that can run the Gradio demo, or None and why there is none."""
    configured = os.environ.get("BENCHMARK_GRADIO_PYTHON")
    if configured:
        try:
            found = subprocess.run([configured, "-c", "import gradio"], capture_output=True)
        except OSError as exc:
            return None, f"BENCHMARK_GRADIO_PYTHON={configured} cannot run ({exc.strerror})"
        if found.returncode != 0:
            return None, f"BENCHMARK_GRADIO_PYTHON={configured} cannot import gradio"
        return configured, ""
    if importlib.util.find_spec("gradio") is not None:
        return sys.executable, ""
    return None, (
        "gradio is not installed for this Python: install requirements-benchmarks.txt, "
        "ideally in its own virtual environment, and set BENCHMARK_GRADIO_PYTHON to its python"
    )


def _responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def gradio_demo(python: str, folder: Path) -> Iterator[Server]:
    """Run `benchmarks/gradio_demo.py` on a free port; yield it as a Server (url, pid, log)."""
    port = _free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "gradio.log"  # a file, not a pipe: a full pipe would stall the server
    env = {**os.environ, "GRADIO_TEMP_DIR": str(folder / "uploads")}  # not /tmp/gradio
    with log.open("w") as output:
        process = subprocess.Popen(
            [python, str(ROOT / "benchmarks" / "gradio_demo.py"), str(port)],
            cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    demo = Server(f"http://127.0.0.1:{port}", process.pid, log)
    # Up to 300 s: TensorFlow's import and the model's build come first.
    with running(process, demo, lambda: _responds(demo.url), "the Gradio demo", seconds=300):
        yield demo


# --- Other interactions --------------------------------------------------------------


def time_history(browser, server: Server) -> tuple[float, dict[str, float]]:
    """Open Classify in a new session, then time clicking "History" until its table shows.

    Returns the time in seconds, and when (ms after the click, on the page's clock) the
    caption's message arrived, the table's message arrived, the table entered the DOM
    and the script finished.
    """
    page = open_app(browser, server)
    finished_before = page.evaluate("window.__bench.finished")
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name="History")
    link.wait_for()
    start_ms = page.evaluate("window.__benchReset()")
    page.evaluate("window.__benchWatch('grid', \"[data-testid='stDataFrame']\", '')")
    started = time.perf_counter()
    link.click()
    page.get_by_text("saved predictions match the filters").wait_for()
    page.get_by_test_id("stDataFrame").first.wait_for()
    total = time.perf_counter() - started
    wait_until_idle(page, finished_before + 1)
    seen = page.evaluate("window.__bench.seen")
    messages = forward_messages(page)
    page.context.close()
    marks = {
        "caption's message": first_element(messages, "markdown", "saved predictions match"),
        "table's message": first_element(messages, "dataframe"),
        "table in the DOM": seen.get("grid"),
        "script finished": first_of(messages, "script_finished"),
    }
    return total, {name: at - start_ms for name, at in marks.items() if at is not None}


def wait_for_table_rows(page, rows: int) -> None:
    """Wait until the answer's table lists `rows` classes."""
    page.wait_for_function(
        """rows => document.querySelector("[data-testid='stTable']")
            ?.querySelectorAll("tbody tr").length === rows""",
        arg=rows,
        timeout=WAIT_MS,
    )


def time_top_k(browser, server: Server, photo: Photo, moves: int) -> list[float]:
    """On a page showing an answer, time moving "Classes to show" by one until the table
    shows that many classes; left, right, left, ... Returns seconds per move."""
    page = open_app(browser, server)
    finished = page.evaluate("window.__bench.finished")
    page.locator("input[type=file]").first.set_input_files(photo.as_file())
    headline(page).wait_for()
    wait_until_idle(page, finished + 1)
    slider = page.get_by_test_id("stSidebar").get_by_role("slider", name="Classes to show")
    classes = int(slider.get_attribute("aria-valuetext"))
    wait_for_table_rows(page, classes)  # the grid is drawn a moment after the script ends
    samples = []
    for move in range(moves):
        key, classes = ("ArrowLeft", classes - 1) if move % 2 == 0 else ("ArrowRight", classes + 1)
        finished = page.evaluate("window.__bench.finished")
        slider.focus()
        started = time.perf_counter()
        slider.press(key)
        wait_for_table_rows(page, classes)
        samples.append(time.perf_counter() - started)
        wait_until_idle(page, finished + 1)
    page.context.close()
    return samples


ERRORS = (
    "[data-testid='stException'], [data-testid='stAlertContentError'], "
    "[data-testid='stAlertContentWarning']"
)


def concurrent_uploads(browser, server: Server, batch: list[Photo]) -> tuple[list[float], int]:
    """Open a session per photo, drop them all at once; return each one's upload -> answer
    (ms, on its page's clock) and how many errors or warnings the pages show."""
    pages = [open_app(browser, server) for _ in batch]
    finished = [page.evaluate("window.__bench.finished") for page in pages]
    starts = []
    for page, photo in zip(pages, batch, strict=True):
        starts.append(page.evaluate("window.__benchReset()"))
        page.evaluate("window.__benchWatch('answer', 'h3', '·')")
        page.locator("input[type=file]").first.set_input_files(photo.as_file())
    times, errors = [], 0
    for page, start, runs in zip(pages, starts, finished, strict=True):
        headline(page).wait_for()
        wait_until_idle(page, runs + 1)
        times.append(page.evaluate("window.__bench.seen.answer") - start)
        errors += page.locator(ERRORS).count()
        page.context.close()
    return times, errors


# --- The suite -----------------------------------------------------------------------


def prepare_engines() -> None:
    """Export EfficientNet-Lite0 and its map model into the engine cache, in a child process.

    Like a server on a warm cache: otherwise the server's first answers come from Keras
    while it exports, and a map-model export would share the CPU with the timed rounds.
    """
    code = (
        "from benchmarks import lite0; from classifier import explain; "
        "lite0.load(); explain.map_engine(lite0.NAME)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)


def seed_history(path: Path, count: int) -> str:
    """Create a SQLite history of `count` predictions, as the Page suite's; return its URL."""
    from benchmarks.page import seed_history as seed
    from classifier.history import HistoryStore

    url = f"sqlite:///{path}"
    store = HistoryStore(url)
    seed(store, count)
    store.dispose()
    return url


def saved_rows(url: str) -> int:
    """Return how many predictions a history database holds."""
    from classifier.history import HistoryStore

    store = HistoryStore(url)
    try:
        return store.count()
    finally:
        store.dispose()


def jpeg(source: str, size: tuple[int, int], seed: int) -> bytes:
    """A distinct photo-like JPEG (see benchmarks.photos)."""
    return photos.encode(photos.photo(source, size, seed=seed), "JPEG")


def median(values) -> float:
    return float(statistics.median(values))


def run(scratch: Path, *, quick: bool) -> list[Row]:
    """Time the app against the Gradio demo in Chromium (see the module docstring)."""
    missing = chromium_missing()
    if missing:
        say(f"browser: skipped ({missing})")
        return []
    python, why = gradio_python()
    if python is None:
        say(f"browser: the Gradio demo is skipped ({why}); the app's rows run without a ratio")
    rounds, moves = (2, 4) if quick else (5, 10)
    say("browser: exporting EfficientNet-Lite0 and its map model into the engine cache")
    prepare_engines()
    say("browser: making the photos")
    warm_up, folder = range(rounds + 1), scratch / "photos"
    photo_sets = {  # the first of each is the untimed warm-up
        SMALL: [
            Photo.write(folder, f"small-{i}.jpg", jpeg("coffee", (773, 512), 200 + i))
            for i in warm_up
        ],
        LARGE: [
            Photo.write(folder, f"large-{i}.jpg", jpeg("cat", (4000, 3000), 300 + i))
            for i in warm_up
        ],
    }
    batch = [
        Photo.write(folder, f"at-once-{i}.jpg", jpeg("coffee", (773, 512), 400 + i))
        for i in range(SESSIONS)
    ]
    app_runs: dict[str, list[AppUpload]] = {size: [] for size in photo_sets}
    gradio_runs: dict[str, list[GradioUpload]] = {size: [] for size in photo_sets}
    with chromium() as browser:
        with contextlib.ExitStack() as servers:
            demo = None
            if python is not None:
                say("browser: starting the Gradio demo")
                try:
                    demo = servers.enter_context(gradio_demo(python, scratch / "gradio"))
                except RuntimeError as exc:
                    say(f"browser: the Gradio demo is skipped ({exc})")
            app_url = f"sqlite:///{scratch / 'browser-app' / 'history.db'}"
            server = servers.enter_context(
                serve(scratch / "browser-app", CLASSIFIER_DATABASE_URL=app_url)
            )
            say("browser: one untimed upload of each photo on each side")
            for files in photo_sets.values():
                app_upload(browser, server, files[0])
                if demo is not None:
                    gradio_upload(browser, demo.url, files[0])
            for number in range(1, rounds + 1):
                say(f"browser: upload -> answer, round {number} of {rounds} (app, Gradio, ...)")
                for size, files in photo_sets.items():
                    app_runs[size].append(app_upload(browser, server, files[number]))
                    if demo is not None:
                        gradio_runs[size].append(gradio_upload(browser, demo.url, files[number]))
            say(f"browser: moving 'Classes to show' {moves} times")
            top_k = time_top_k(
                browser,
                server,
                Photo.write(folder, "top-k.jpg", jpeg("rocket", (773, 512), 500)),
                moves,
            )
            say(f"browser: {SESSIONS} sessions upload at once")
            before = saved_rows(app_url)
            together, errors = concurrent_uploads(browser, server, batch)
            added = saved_rows(app_url) - before
            app_memory = server.memory_mb(), server.memory_mb("VmHWM")
            gradio_memory = (demo.memory_mb(), demo.memory_mb("VmHWM")) if demo else None
        say(f"browser: seeding a history of {HISTORY_ROWS:,} predictions")
        (scratch / "browser-history").mkdir(parents=True, exist_ok=True)
        history_url = seed_history(scratch / "browser-history" / "history.db", HISTORY_ROWS)
        with serve(scratch / "browser-history", CLASSIFIER_DATABASE_URL=history_url) as server:
            say("browser: switching to History")
            first_history = time_history(browser, server)[0]  # the server's first History page
            histories = [time_history(browser, server) for _ in range(rounds)]

    rows = []
    for size, runs in app_runs.items():
        app = Stats.of(run.total_s for run in runs)
        phases = {name: median(run.phases[name] for run in runs) for name in runs[0].phases}
        on_path = {name: ms for name, ms in phases.items() if "off the path" not in name}
        slowest = max(on_path, key=on_path.get)
        size_kb = photo_sets[size][1].path.stat().st_size / 1024
        note = (
            f"{size_kb:,.0f} KB files, a different photo each time; the answer was in the "
            f"page's DOM after {median(run.in_page_ms for run in runs):.0f} ms (page clock); "
            f"the slowest part: {slowest}, {phases[slowest]:.0f} ms"
        )
        gradio = Stats.of(run.total_s for run in gradio_runs[size]) if gradio_runs[size] else None
        rows.append(
            Row(
                UPLOAD_GROUP,
                f"{size} · app (streamlit run)",
                "s",
                app,
                baseline="Gradio demo" if gradio else "",
                ratio=ratio(app, gradio) if gradio else None,
                target=f"≤ {TARGET_RATIO}× Gradio",
                met=ratio(app, gradio) <= TARGET_RATIO if gradio else None,
                note=note if gradio else f"{note}; no Gradio demo in this run ({why})",
            )
        )
        if gradio:
            preview = median(run.preview_s for run in gradio_runs[size])
            rows.append(
                Row(
                    UPLOAD_GROUP,
                    f"{size} · Gradio demo (Keras MobileNetV2, model.predict)",
                    "s",
                    gradio,
                    note=f"includes clicking Submit as soon as the uploaded picture shows "
                    f"({preview:.2f} s after set_input_files); random weights",
                )
            )
            in_page = Stats.of(run.in_page_ms for run in runs)
            gradio_in_page = Stats.of(run.in_page_ms for run in gradio_runs[size])
            lag = median(run.click_lag_ms for run in gradio_runs[size])
            rows += [
                Row(
                    CLOCK_GROUP,
                    f"{size} · app: set_input_files → answer in the DOM",
                    "ms",
                    in_page,
                    baseline="Gradio demo",
                    ratio=ratio(in_page, gradio_in_page),
                    note="without Playwright noticing it (it polls, and takes tens of ms "
                    "more while the page is busy drawing the rest of the answer)",
                ),
                Row(
                    CLOCK_GROUP,
                    f"{size} · Gradio demo: set_input_files → label in the DOM",
                    "ms",
                    gradio_in_page,
                    note=f"Submit counted as clicked the moment the preview is in the DOM; "
                    f"Playwright's click came {lag:.0f} ms later (not counted)",
                ),
            ]
        rows += [
            Row(
                BREAKDOWN_GROUP,
                f"{size} · {name}",
                "ms",
                Stats.of(run.phases[name] for run in runs),
            )
            for name in phases
        ]
    history = Stats.of(total for total, _ in histories)
    marks = {name: median(m[name] for _, m in histories if name in m) for name in histories[0][1]}
    rows.append(
        Row(
            PAGE_GROUP,
            f"History at {HISTORY_ROWS:,} predictions: click → table and caption visible",
            "s",
            history,
            target=f"< {TARGET_HISTORY_S:.0f} s",
            met=history.median < TARGET_HISTORY_S,
            note=f"from Classify in a new session; the server's first History page took "
            f"{first_history:.2f} s; after the click (ms, medians): "
            + ", ".join(f"{name} {at:.0f}" for name, at in marks.items()),
        )
    )
    rows.append(
        Row(
            PAGE_GROUP,
            "top-k: 'Classes to show' moved by one → the table shows that many",
            "s",
            Stats.of(top_k),
            note="ArrowLeft/ArrowRight on the focused slider; the Gradio demo has no such "
            "control, so the app's figure stands alone",
        )
    )
    single = Stats.of(run.in_page_ms for run in app_runs[SMALL])
    at_once = Stats.of(together)
    rows += [
        Row(CONCURRENT_GROUP, f"upload → answer, one session ({SMALL} rounds)", "ms", single),
        Row(
            CONCURRENT_GROUP,
            f"upload → answer, {SESSIONS} sessions at once",
            "ms",
            at_once,
            baseline="one session",
            ratio=ratio(at_once, single),
            target=f"no errors, {SESSIONS} of {SESSIONS} saved",
            met=errors == 0 and added == SESSIONS,
            note=f"a different {SMALL} in each session, dropped one after another as fast as "
            f"Playwright goes; on each page's clock, to the answer in its DOM; errors or "
            f"warnings shown: {errors}; history rows added: {added} of {SESSIONS}",
        ),
    ]
    rows.append(
        Row(
            MEMORY_GROUP,
            "app server RSS after the uploads",
            "MB",
            Stats.of([app_memory[0]]),
            baseline="Gradio demo" if gradio_memory else "",
            ratio=app_memory[0] / gradio_memory[0] if gradio_memory else None,
            note=f"peak {app_memory[1]:.0f} MB",
        )
    )
    if gradio_memory:
        rows.append(
            Row(
                MEMORY_GROUP,
                "Gradio demo RSS after the uploads",
                "MB",
                Stats.of([gradio_memory[0]]),
                note=f"peak {gradio_memory[1]:.0f} MB",
            )
        )
    return rows
