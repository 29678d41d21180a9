"""The app, Gradio's image-classifier demo and a usual Streamlit app in Chromium, as a
person uses them.

`python -m benchmarks --browser` runs this suite alone. Both servers run on this machine
in the same run: the app (`streamlit run`, through `server.serve`) and Gradio's published
image-classifier demo (`benchmarks/gradio_demo.py`: Keras MobileNetV2 and `model.predict`,
random weights offline), in an interpreter that has gradio (requirements-benchmarks.txt):
$BENCHMARK_GRADIO_PYTHON, else this one if it can import gradio. Without gradio the app's
rows still run, without a ratio.

Measured, each in a new browser context (a new session) on an idle page:

- upload -> whole answer: from `set_input_files` to the app's chart drawn (a canvas or an
  svg in the chart element: what a person sees as the answer) and, for the record, to its
  headline; for Gradio, to its label (the top class with its bars, its whole answer). A
  773x512 JPEG and a 12 MP JPEG, in alternating rounds (app, Gradio, app, ...). Every
  upload is a different photo, so the app's prediction cache never answers. Gradio's
  Interface does not answer an upload by itself: its time includes clicking Submit as
  soon as the picture shows.
- the same on the page's own clock (performance.now), without Playwright's polling.
- where the app's time goes, from the page's own clock: the page's WebSocket messages
  (recorded by an init script and decoded with Streamlit's protobuf classes), the upload's
  resource timing, and when the headline and the chart enter the page.
- History at 100,000 saved predictions: from clicking "History" to its table and caption.
- top-k: from moving the "Classes to show" slider by one to the table showing that many.
- 6 and 16 sessions at once, on a new server (fresh) and then again on it (warm), for the
  app, a new Gradio demo and a new usual Streamlit app (`benchmarks/streamlit_demo.py`):
  every page opened at once, each photo dropped as soon as its page takes one; the median
  and p95 from the photo picked to the whole answer, the rows saved, errors shown, and the
  CPU the server and Chromium used meanwhile. The 6-session races run 3 times on new
  servers, their samples pooled (a p95 of 6 samples is nearly their maximum).
- what one session costs Chromium on each of the three, one session at a time on a warm
  server: the CPU of every Chromium process while the page opens, and while a photo is
  answered. In the races the browsers share the server's CPU, so this is what 16 sessions
  at once ask of the machine beside the servers' work.
- the servers' peak resident memory.
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
from functools import partial
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
CONCURRENT_GROUP = "Browser, sessions uploading at once"
MEMORY_GROUP = "Browser, server memory"
COST_GROUP = "Browser, what one session costs Chromium"
TARGET_RATIO = {"773 × 512 JPEG": 1.0, "12 MP JPEG": 0.5}  # the app's chart against Gradio's label
TARGET_HISTORY_S = 1.0
TARGET_PEAK_MB = 450  # the app server's peak RSS, one session at a time and in the races
HISTORY_ROWS = 100_000
SESSIONS = (6, 16)  # browser sessions uploading at once
RACE_REPEATS = {6: 3, 16: 1}  # races on new servers, pooled: 6 sessions are 6 samples a race
# The app's whole answer: its chart drawn (a canvas or an svg in the chart element), not
# the stand-in the page draws out of sight while it waits for a photo (ui.results.warm_up).
CHART = "[data-testid='stVegaLiteChart']:not(.st-key-answer_warm_up *) :is(canvas, svg)"
GRADIO_LABEL = "[data-testid='label-output-value']"
# Gradio's Interface answers when Submit is clicked: in a race, each page clicks it itself
# the moment the uploaded picture shows (a person would click no sooner).
GRADIO_SUBMIT = """
(() => {
  let clicked = false;
  new MutationObserver(() => {
    if (clicked || !document.querySelector("img[src*='gradio_api/file=']")) return;
    const submit = [...document.querySelectorAll("button")]
      .find((button) => button.textContent.trim() === "Submit");
    if (submit) { clicked = true; window.__bench.click = performance.now(); submit.click(); }
  }).observe(document, {childList: true, subtree: true});
})();
"""
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
  const lean = window.__benchLean === true;  // races: note the times, keep no messages
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const now = performance.now();
        bench.last = now;
        if (!(event.data instanceof ArrayBuffer)) return;
        const bytes = new Uint8Array(event.data);
        if (fields(bytes).includes(SCRIPT_FINISHED)) bench.finished += 1;
        if (lean) return;
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

    total_s: float  # set_input_files -> the chart (the whole answer) visible to Playwright
    text_s: float  # set_input_files -> the answer's headline visible to Playwright
    in_page_ms: float  # set_input_files -> the chart drawn, on the page's clock
    text_in_page_ms: float  # set_input_files -> the headline in the page's DOM
    phases: dict[str, float]


# --- Browser pages -------------------------------------------------------------------


def new_page(browser, *, lean: bool = False):
    """Return a page in a new browser context (a new session) with the recorder installed;
    `lean`: it keeps no copy of the page's WebSocket messages (Streamlit pages have them,
    Gradio's do not), as in the races, where only the times count."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    if lean:
        context.add_init_script("window.__benchLean = true;")
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
    page.evaluate(f"window.__benchWatch('chart', {CHART!r}, '')")
    started = time.perf_counter()
    page.locator("input[type=file]").first.set_input_files(photo.as_file())
    headline(page).wait_for()
    text = time.perf_counter() - started
    page.locator(CHART).first.wait_for()
    total = time.perf_counter() - started
    wait_until_idle(page, finished_before + 1)  # the rest of the page: table, saving, ...
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
    in_dom, uploaded = marks["seen"]["answer"], max(upload)
    chart_sent, chart = first_element(messages, "vega_lite_chart"), marks["shown"]["chart"]
    if chart_sent is None:
        raise RuntimeError("Expected the chart's message in the page.")
    phases = {  # ms, one after the other; the last one is not on the way to the answer
        "Chromium reads the file (set_input_files → change event)": marks["change"] - start_ms,
        "upload (file URL request + PUT /_stcore/upload_file)": uploaded - marks["change"],
        "server: rerun until the headline's message arrives": answer_sent - uploaded,
        "browser: headline's message → headline in the DOM": in_dom - answer_sent,
        "server: headline's message → chart's message": chart_sent - answer_sent,
        "browser: chart's message → chart drawn": chart - chart_sent,
        "chart drawn → visible to Playwright": max(0.0, total * 1000 - (chart - start_ms)),
        "rest of the script after the chart's message (off the path)": finished - chart_sent,
    }
    return AppUpload(total, text, chart - start_ms, in_dom - start_ms, phases)


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


@dataclass(frozen=True)
class Race:
    """Sessions opened and uploading at once: on each page's own clock (ms)."""

    to_answer: list[float]  # its file picked (the change event) -> the whole answer drawn
    open_to_answer: list[float]  # the page opened -> the whole answer drawn
    errors: int  # errors or warnings the pages show


def race(browser, url: str, batch: list[Photo], *, side: str) -> Race:
    """Open a session per photo, all at once, and drop each photo as soon as its page
    takes one; time each to the whole answer: a Streamlit app's chart drawn ("app",
    "streamlit"), Gradio's label ("gradio": its Submit clicked by the page itself the moment
    the picture shows)."""
    gradio = side == "gradio"
    pages, answer = [], GRADIO_LABEL if gradio else CHART
    for _ in batch:
        page = new_page(browser, lean=True)
        if gradio:
            page.context.add_init_script(GRADIO_SUBMIT)
        page.goto(url, wait_until="commit")  # the next page opens while this one loads
        pages.append(page)
    for page, photo in zip(pages, batch, strict=True):
        page.evaluate(f"window.__benchWatch('answer', {answer!r}, '')")
        page.locator("input[type=file]").first.set_input_files(photo.as_file())
    to_answer, open_to_answer, errors = [], [], 0
    for page in pages:
        page.wait_for_function("() => 'answer' in window.__bench.shown", timeout=WAIT_MS)
        marks = page.evaluate("window.__bench")
        to_answer.append(marks["shown"]["answer"] - marks["change"])
        open_to_answer.append(marks["shown"]["answer"])  # performance.now(): from navigation
        if side == "app":
            errors += page.locator(ERRORS).count()
    for page in pages:  # every side's pages close together, once every answer is in
        page.context.close()
    return Race(to_answer, open_to_answer, errors)


@dataclass(frozen=True)
class SessionCost:
    """The CPU seconds one session costs this run's Chromium (every process of it), one
    session at a time on a warm server: its page opened until idle, then a photo dropped
    until the whole answer is drawn and the page idle again."""

    load_s: float
    answer_s: float


def session_cost(browser, url: str, photo: Photo, *, side: str) -> SessionCost:
    """Open one session, drop one photo; return what each part cost Chromium."""
    gradio = side == "gradio"
    before = browser_cpu_seconds()
    page = new_page(browser, lean=True)
    if gradio:
        page.context.add_init_script(GRADIO_SUBMIT)
    page.goto(url)
    page.locator("input[type=file]").first.wait_for(state="attached")
    if not gradio:
        wait_until_idle(page)
    page.wait_for_load_state("networkidle")
    loaded = browser_cpu_seconds()
    finished = page.evaluate("window.__bench.finished")
    page.evaluate(f"window.__benchWatch('answer', {GRADIO_LABEL if gradio else CHART!r}, '')")
    page.locator("input[type=file]").first.set_input_files(photo.as_file())
    page.wait_for_function("() => 'answer' in window.__bench.shown", timeout=WAIT_MS)
    if gradio:
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # as a Streamlit page's idle: 300 ms without a message
    else:
        wait_until_idle(page, finished + 1)
    answered = browser_cpu_seconds()
    page.context.close()
    return SessionCost(loaded - before, answered - loaded)


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
    batches = {  # a different photo for each session of each race
        (sessions, state): [
            Photo.write(folder, f"{state}-{sessions}-{i}.jpg", jpeg("coffee", (773, 512), seed))
            for i, seed in enumerate(
                range(1000 * sessions + 100 * n, 1000 * sessions + 100 * n + sessions)
            )
        ]
        for sessions in SESSIONS
        for n, state in enumerate(("fresh", "warm"))
    }
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
            app_memory = server.memory_mb(), server.memory_mb("VmHWM")
            gradio_memory = (demo.memory_mb(), demo.memory_mb("VmHWM")) if demo else None
        repeats = dict.fromkeys(SESSIONS, 1) if quick else RACE_REPEATS
        cost_photos = [
            Photo.write(folder, f"cost-{i}.jpg", jpeg("coffee", (773, 512), 4000 + i))
            for i in range(rounds)
        ]
        races, costs = run_races(
            browser, scratch, python if demo is not None else None, batches, repeats, cost_photos
        )
        say(f"browser: seeding a history of {HISTORY_ROWS:,} predictions")
        (scratch / "browser-history").mkdir(parents=True, exist_ok=True)
        history_url = seed_history(scratch / "browser-history" / "history.db", HISTORY_ROWS)
        with serve(scratch / "browser-history", CLASSIFIER_DATABASE_URL=history_url) as server:
            say("browser: switching to History")
            first_history = time_history(browser, server)[0]  # the server's first History page
            histories = [time_history(browser, server) for _ in range(rounds)]

    rows = []
    for size, runs in app_runs.items():
        rows += upload_rows(size, runs, gradio_runs[size], photo_sets[size][1], why)
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
    rows += race_rows(races)
    rows += cost_rows(costs)
    rows.append(
        Row(
            MEMORY_GROUP,
            "app server peak RSS through the uploads above (one session at a time)",
            "MB",
            Stats.of([app_memory[1]]),
            baseline="Gradio demo" if gradio_memory else "",
            ratio=app_memory[1] / gradio_memory[1] if gradio_memory else None,
            target=f"< {TARGET_PEAK_MB} MB",
            met=app_memory[1] < TARGET_PEAK_MB,
            note=f"RSS after them {app_memory[0]:.0f} MB",
        )
    )
    if gradio_memory:
        rows.append(
            Row(
                MEMORY_GROUP,
                "Gradio demo peak RSS through the uploads above",
                "MB",
                Stats.of([gradio_memory[1]]),
                note=f"RSS after them {gradio_memory[0]:.0f} MB",
            )
        )
    return rows


@dataclass(frozen=True)
class RaceResult:
    """One side's race on one server: its timings, rows saved, the server's peak RSS, and
    the CPU the server and Chromium (every page) used during it."""

    race: Race
    saved: int | None  # history rows added (the app)
    peak_mb: float
    server_cpu_s: float  # in all its races
    browser_cpu_s: float
    races: int  # how many races (each on new servers) are pooled here

    def pooled(self, other: RaceResult) -> RaceResult:
        """Return this race's samples and the other's together."""
        return RaceResult(
            Race(
                other.race.to_answer + self.race.to_answer,
                other.race.open_to_answer + self.race.open_to_answer,
                other.race.errors + self.race.errors,
            ),
            None if self.saved is None else (other.saved or 0) + self.saved,
            max(other.peak_mb, self.peak_mb),
            other.server_cpu_s + self.server_cpu_s,
            other.browser_cpu_s + self.browser_cpu_s,
            other.races + self.races,
        )


def browser_cpu_seconds() -> float:
    """Return the CPU time this process's Chromium (launched by Playwright's driver, a child
    of this process) has used so far, with its finished children's (a closed page's
    renderer)."""
    parents, ticks = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            if stat[stat.index("(") + 1 :].startswith("chrom"):
                ticks[pid] = sum(int(field) for field in fields[11:15])  # u/s time, children's

    def ours(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return sum(count for pid, count in ticks.items() if ours(pid)) / os.sysconf("SC_CLK_TCK")


def timed_race(browser, server: Server, batch: list[Photo], *, side: str):
    """Run `race` and return it with the server's and Chromium's CPU seconds during it."""
    from benchmarks.api import _tree_now

    server_before, browser_before = _tree_now(server.pid)[1], browser_cpu_seconds()
    raced = race(browser, server.url, batch, side=side)
    server_cpu = _tree_now(server.pid)[1] - server_before
    return raced, server_cpu, browser_cpu_seconds() - browser_before


def run_races(
    browser,
    scratch: Path,
    python: str | None,
    batches: dict[tuple[int, str], list[Photo]],
    repeats: dict[int, int],
    cost_photos: list[Photo],
) -> tuple[dict[tuple[str, int, str], RaceResult], dict[str, list[SessionCost]]]:
    """For each number of sessions, start a new app server, a new Gradio demo and a new
    usual Streamlit app: race on each fresh, then again warm; `repeats` times, each on
    new servers, the samples pooled. Keys: (side, sessions, "fresh" or "warm"), the side
    "app", "gradio" or "streamlit". After the first warm race, each side's sessions are
    also opened one at a time, one per photo of `cost_photos`: what each costs Chromium."""
    results: dict[tuple[str, int, str], RaceResult] = {}
    costs: dict[str, list[SessionCost]] = {}
    for sessions in SESSIONS:
        for repeat in range(repeats[sessions]):
            folder = scratch / f"race-app-{sessions}-{repeat}"
            url = f"sqlite:///{folder / 'history.db'}"
            peers = {"app": partial(serve, folder, CLASSIFIER_DATABASE_URL=url)}
            if python is not None:
                peers["gradio"] = partial(
                    gradio_demo, python, scratch / f"race-gradio-{sessions}-{repeat}"
                )
            peers["streamlit"] = partial(
                usual_streamlit, scratch / f"race-streamlit-{sessions}-{repeat}"
            )
            for side, start in peers.items():
                with start() as server:
                    for state in ("fresh", "warm"):
                        say(
                            f"browser: {sessions} sessions upload at once, {side} {state} "
                            f"({repeat + 1} of {repeats[sessions]})"
                        )
                        before = saved_rows(url) if side == "app" else 0
                        raced, cpu, browser_cpu = timed_race(
                            browser, server, batches[sessions, state], side=side
                        )
                        saved = saved_rows(url) - before if side == "app" else None
                        result = RaceResult(
                            raced, saved, server.memory_mb("VmHWM"), cpu, browser_cpu, 1
                        )
                        key = (side, sessions, state)
                        results[key] = result.pooled(results[key]) if key in results else result
                    if side not in costs:
                        say(f"browser: what one session costs Chromium, {side}")
                        costs[side] = [
                            session_cost(browser, server.url, photo, side=side)
                            for photo in cost_photos
                        ]
    return results, costs


@contextlib.contextmanager
def usual_streamlit(folder: Path) -> Iterator[Server]:
    """Run `benchmarks/streamlit_demo.py` with Streamlit's defaults on a free port."""
    port = _free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "streamlit.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run",
             str(ROOT / "benchmarks" / "streamlit_demo.py"), "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=folder, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    demo = Server(f"http://127.0.0.1:{port}", process.pid, log)
    alive = partial(_responds, f"{demo.url}/_stcore/health")
    with running(process, demo, alive, "the usual Streamlit app", seconds=300):
        yield demo


def upload_rows(
    size: str, runs: list[AppUpload], gradio_runs: list[GradioUpload], photo: Photo, why: str
) -> list[Row]:
    """The rows of one photo size: the app's whole answer and its text against Gradio's
    label, on Playwright's clock and the page's own, and where the app's time goes."""
    app = Stats.of(run.total_s for run in runs)
    text = Stats.of(run.text_s for run in runs)
    phases = {name: median(run.phases[name] for run in runs) for name in runs[0].phases}
    on_path = {name: ms for name, ms in phases.items() if "off the path" not in name}
    slowest = max(on_path, key=on_path.get)
    note = (
        f"{photo.path.stat().st_size / 1024:,.0f} KB files, a different photo each time; "
        f"the chart was drawn after {median(run.in_page_ms for run in runs):.0f} ms "
        f"(page clock); the slowest part: {slowest}, {phases[slowest]:.0f} ms"
    )
    gradio = Stats.of(run.total_s for run in gradio_runs) if gradio_runs else None
    target = TARGET_RATIO[size]
    rows = [
        Row(
            UPLOAD_GROUP,
            f"{size} · app: the chart drawn (the whole answer)",
            "s",
            app,
            baseline="Gradio demo" if gradio else "",
            ratio=ratio(app, gradio) if gradio else None,
            target=f"≤ {target}× Gradio",
            met=ratio(app, gradio) <= target if gradio else None,
            note=note if gradio else f"{note}; no Gradio demo in this run ({why})",
        ),
        Row(
            UPLOAD_GROUP,
            f"{size} · app: the answer's text shown",
            "s",
            text,
            baseline="Gradio demo" if gradio else "",
            ratio=ratio(text, gradio) if gradio else None,
        ),
    ]
    if gradio:
        preview = median(run.preview_s for run in gradio_runs)
        rows.append(
            Row(
                UPLOAD_GROUP,
                f"{size} · Gradio demo: its label shown (Keras MobileNetV2, model.predict)",
                "s",
                gradio,
                note=f"the label is its whole answer (top class and bars); includes clicking "
                f"Submit as soon as the uploaded picture shows ({preview:.2f} s after "
                f"set_input_files); random weights",
            )
        )
        in_page = Stats.of(run.in_page_ms for run in runs)
        text_in_page = Stats.of(run.text_in_page_ms for run in runs)
        gradio_in_page = Stats.of(run.in_page_ms for run in gradio_runs)
        lag = median(run.click_lag_ms for run in gradio_runs)
        rows += [
            Row(
                CLOCK_GROUP,
                f"{size} · app: set_input_files → chart drawn",
                "ms",
                in_page,
                baseline="Gradio demo",
                ratio=ratio(in_page, gradio_in_page),
                note="without Playwright noticing it (it polls)",
            ),
            Row(
                CLOCK_GROUP,
                f"{size} · app: set_input_files → headline in the DOM",
                "ms",
                text_in_page,
                baseline="Gradio demo",
                ratio=ratio(text_in_page, gradio_in_page),
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
        Row(BREAKDOWN_GROUP, f"{size} · {name}", "ms", Stats.of(run.phases[name] for run in runs))
        for name in phases
    ]
    return rows


def cost_rows(costs: dict[str, list[SessionCost]]) -> list[Row]:
    """What one session costs Chromium on each side, against the Gradio demo's."""
    names = {"app": "app", "gradio": "Gradio demo", "streamlit": "usual Streamlit app"}
    totals = {
        side: Stats.of(cost.load_s + cost.answer_s for cost in runs) for side, runs in costs.items()
    }
    gradio = totals.get("gradio")
    rows = []
    for side, runs in costs.items():
        peer = gradio is not None and side != "gradio"
        rows.append(
            Row(
                COST_GROUP,
                f"{names[side]}: a page opened and one photo answered",
                "s",
                totals[side],
                baseline="Gradio demo" if peer else "",
                ratio=ratio(totals[side], gradio) if peer else None,
                note=f"CPU of every Chromium process, one session at a time on a warm server: "
                f"the page opened until idle {median(c.load_s for c in runs):.2f} s, a "
                f"773 × 512 JPEG dropped until the whole answer is drawn and the page idle "
                f"{median(c.answer_s for c in runs):.2f} s (medians)",
            )
        )
    return rows


def race_note(result: RaceResult) -> str:
    """Say what a race cost beside its timings: page opened to answer, memory, CPU."""
    opened = Stats.of(result.race.open_to_answer)
    races = f"{result.races} races, each on new servers, pooled; " if result.races > 1 else ""
    return (
        f"{races}page opened → answer: median {opened.median:,.0f}, p95 {opened.p95:,.0f} ms; "
        f"server peak RSS {result.peak_mb:.0f} MB; CPU a race: server "
        f"{result.server_cpu_s / result.races:.1f} s, Chromium "
        f"{result.browser_cpu_s / result.races:.1f} s (every page)"
    )


def race_rows(races: dict[tuple[str, int, str], RaceResult]) -> list[Row]:
    """The race rows: per number of sessions and server state, the app's median and p95
    from the photo picked to the whole answer, against the Gradio demo's, and the usual
    Streamlit app's beside them."""
    rows = []
    for (side, sessions, state), result in races.items():
        if side != "app":
            continue
        app = Stats.of(result.race.to_answer)
        gradio_result = races.get(("gradio", sessions, state))
        gradio = Stats.of(gradio_result.race.to_answer) if gradio_result else None
        met = None
        if gradio:
            met = app.median <= gradio.median and app.p95 <= gradio.p95
        rows.append(
            Row(
                CONCURRENT_GROUP,
                f"{sessions} sessions, {state} server · app: photo picked → chart drawn",
                "ms",
                app,
                baseline="Gradio demo" if gradio else "",
                ratio=ratio(app, gradio) if gradio else None,
                target="median and p95 ≤ Gradio's" if gradio else "",
                met=met,
                note=f"p95 {app.p95:,.0f} ms"
                + (f" against Gradio's {gradio.p95:,.0f} ms" if gradio else "")
                + f"; errors or warnings shown: {result.race.errors}; history rows added: "
                f"{result.saved} of {sessions * result.races}; " + race_note(result),
            )
        )
        for peer, name, answer in (
            ("gradio", "Gradio demo", "label"),
            ("streamlit", "usual Streamlit app", "chart drawn"),
        ):
            other = races.get((peer, sessions, state))
            if other is None:
                continue
            stats = Stats.of(other.race.to_answer)
            rows.append(
                Row(
                    CONCURRENT_GROUP,
                    f"{sessions} sessions, {state} server · {name}: photo picked → {answer}",
                    "ms",
                    stats,
                    baseline="Gradio demo" if gradio and peer != "gradio" else "",
                    ratio=ratio(stats, gradio) if gradio and peer != "gradio" else None,
                    note=f"p95 {stats.p95:,.0f} ms; " + race_note(other),
                )
            )
    peak = max(result.peak_mb for (side, _, _), result in races.items() if side == "app")
    rows.append(
        Row(
            MEMORY_GROUP,
            f"app server peak RSS through {max(SESSIONS)} sessions at once",
            "MB",
            Stats.of([peak]),
            target=f"< {TARGET_PEAK_MB} MB",
            met=peak < TARGET_PEAK_MB,
            note="a new server per number of sessions, raced fresh then warm",
        )
    )
    return rows
