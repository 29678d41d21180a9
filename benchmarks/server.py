"""The server as visitors load it: `streamlit run` driven by Chromium through Playwright.

Measures the server process's memory: its peak while four sessions upload the heaviest
picture it accepts at once, and its growth over hundreds of uploads in one session.
The tests use `serve` and `chromium` too, to drive the real app.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.report import Row, say
from benchmarks.timing import Stats

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
GROUP = "Memory, server"
PEAK_TARGET_MB = 1024
FIRST_LOAD_TARGET_MB = 400
FIRST_LOAD_UPLOADS = 50  # 10 with --quick
SOAK_TARGET_MB = 50
# Without these, Chromium keeps calling out to the network this machine does not have.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass(frozen=True)
class Server:
    """A running app: where to reach it and which process serves it."""

    url: str
    pid: int
    log: Path  # what the server printed: its log

    def memory_mb(self, field: str = "VmRSS") -> float:
        """Return the server's resident memory now (VmRSS) or at its peak so far (VmHWM)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"Expected {field} in /proc/{self.pid}/status.")

    def alive(self) -> bool:
        """Tell whether the server process still runs (it has not been OOM-killed)."""
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=5) as answer:
                return answer.status == 200
        except OSError:
            return False


def chromium_missing() -> str | None:
    """Return why the browser measurements cannot run here, or None if they can."""
    if not CHROMIUM.exists():
        return f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -r requirements-dev.txt)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_cgroup(limit_bytes: int) -> Path:
    """Create a cgroup (v1 memory controller) that holds its processes to `limit_bytes`."""
    own = ""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            own = path
    group = Path("/sys/fs/cgroup/memory") / own.lstrip("/") / f"classifier-{os.getpid()}"
    group.mkdir()
    (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
    with contextlib.suppress(OSError):  # no swap accounting: the limit above is the limit
        (group / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
    return group


def memory_limit_unsupported() -> str | None:
    """Return why a server cannot be held to a memory limit here, or None if it can."""
    try:
        _memory_cgroup(2**30).rmdir()
    except OSError as exc:
        return f"no writable cgroup v1 memory controller ({exc.strerror or exc})"
    return None


@contextlib.contextmanager
def serve(folder: Path, memory_limit: int | None = None, **env: str) -> Iterator[Server]:
    """Run `streamlit run streamlit_app.py` with its own history database.

    Args:
        folder: Where the history database lives.
        memory_limit: Bytes the server may hold (through a memory cgroup), like a
            small hosting tier; over it the kernel kills the server.
        env: More environment variables for the server.
    """
    port = _free_port()
    env = {
        **os.environ,
        "CLASSIFIER_MODEL": "efficientnet_lite0",
        "CLASSIFIER_DATABASE_URL": f"sqlite:///{folder / 'history.db'}",
        "CLASSIFIER_DATA_DIR": str(folder / "data"),  # its batch jobs' and models' files
        **env,
    }
    group = _memory_cgroup(memory_limit) if memory_limit else None
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "server.log"  # a file, not a pipe: a full pipe would stall the server
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    if group is not None:
        (group / "cgroup.procs").write_text(str(process.pid))
    server = Server(f"http://127.0.0.1:{port}", process.pid, log)
    try:
        with running(process, server, server.alive, "streamlit", seconds=60):
            yield server
    finally:
        if group is not None:
            group.rmdir()


@contextlib.contextmanager
def running(process: subprocess.Popen, server: Server, alive, name: str, seconds: float):
    """Wait until a started server answers (`alive()`), hold it, then stop it.

    Raises:
        RuntimeError: it exited, or did not answer within `seconds` (its log's end said).
    """
    deadline = time.monotonic() + seconds
    while not alive():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            process.wait()
            raise RuntimeError(f"{name} did not start:\n{server.log.read_text()[-3000:]}")
        time.sleep(0.3)
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def chromium():
    """Launch Debian's Chromium through Playwright; yield the browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_classify_page(browser, server: Server, width: int = 1280):
    """Open a new session on the Classify page; return its Playwright page."""
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.set_default_timeout(120_000)
    page.goto(server.url)
    page.get_by_text("What's in this photo?").wait_for()
    return page


def upload(page, name: str, data: bytes, mime: str) -> None:
    """Drop one file on the uploader and wait until the page names it with an answer."""
    page.locator("input[type=file]").first.set_input_files(
        {"name": name, "mimeType": mime, "buffer": data}
    )
    answered(page, name).wait_for()


def answer_drawn(page) -> None:
    """Wait until the page has drawn an answer to its end: its feedback question, and the
    script no longer running.

    Removing a photo while its answer is still being drawn can blank the whole page
    (Streamlit's frontend: "Cannot set a node at a delta path"): about once in a hundred
    removals made the moment the file name showed."""
    from playwright.sync_api import expect

    page.get_by_text("Was this right?").first.wait_for()
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=120_000)


def answered(page, name: str):
    """Return the line under the picture that names a classified file (or its error)."""
    return page.get_by_test_id("stText").filter(has_text=name).first


def float_tiff() -> bytes:
    """The heaviest picture the app accepts for its size: a 40 MP float TIFF of ~300 KB."""
    values = np.zeros((5000, 8000), np.float32)
    values[:, 4000:] = 0.8
    buffer = io.BytesIO()
    Image.fromarray(values, "F").save(buffer, "TIFF", compression="tiff_adobe_deflate")
    return buffer.getvalue()


def concurrent_uploads(browser, server: Server, data: bytes, sessions: int = 4) -> None:
    """Have several sessions upload the same picture at the same moment, and wait for all."""
    pages = [open_classify_page(browser, server) for _ in range(sessions)]
    for number, page in enumerate(pages):
        page.locator("input[type=file]").first.set_input_files(
            {"name": f"float-{number}.tif", "mimeType": "image/tiff", "buffer": data}
        )
    for number, page in enumerate(pages):
        answered(page, f"float-{number}.tif").wait_for()
    for page in pages:
        page.context.close()


def _photo(number: int, base: Image.Image) -> bytes:
    """A distinct JPEG for each upload: the same photo with a few pixels changed."""
    picture = base.copy()
    picture.putpixel((number % base.width, (number // base.width) % base.height), (255, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def soak(browser, server: Server, counts: tuple[int, int]) -> dict[int, float]:
    """Upload distinct photos one after another in one session; RSS after each count."""
    base = Image.open(ROOT / "assets" / "examples" / "cat.jpg").convert("RGB")
    page = open_classify_page(browser, server)
    memory: dict[int, float] = {}
    for number in range(1, max(counts) + 1):
        if number > 1:  # one picture at a time, as a person works through a folder
            page.get_by_role("button", name=f"Remove soak-{number - 1:04d}.jpg").click()
            page.get_by_text("Drop one or more photos above").wait_for()
        upload(page, f"soak-{number:04d}.jpg", _photo(number, base), "image/jpeg")
        answer_drawn(page)  # as a person would, before removing the photo
        if number in counts:
            memory[number] = server.memory_mb()
            say(f"server: {number} uploads, RSS {memory[number]:.0f} MB")
    page.context.close()
    return memory


def run(scratch: Path, *, quick: bool) -> list[Row]:
    """Measure the server's memory under concurrent heavy uploads and over many uploads."""
    missing = chromium_missing()
    if missing:
        say(f"server: skipped ({missing})")
        return []
    counts = (20, 60) if quick else (100, 500)
    uploads = 10 if quick else FIRST_LOAD_UPLOADS
    rows = []
    with chromium() as browser:
        say(f"server: a first-ever load of the default model, then {uploads} uploads")
        empty_cache = scratch / "first-load" / "engines"
        with serve(scratch / "first-load", CLASSIFIER_CACHE_DIR=str(empty_cache)) as server:
            soak(browser, server, (1, uploads))
            first_load_peak = server.memory_mb("VmHWM")
            exported = sorted(p.name for p in empty_cache.glob("*.tflite") if p.name[0] != ".")
        rows.append(
            Row(
                GROUP,
                f"peak RSS, first-ever load of the default model + {uploads} uploads",
                "MB",
                Stats.of([first_load_peak]),
                target=f"< {FIRST_LOAD_TARGET_MB} MB",
                met=first_load_peak < FIRST_LOAD_TARGET_MB,
                note="an empty engine cache: a child process exports the model (and the map "
                f"model for overlays), the server only opens the files ({', '.join(exported)})",
            )
        )
        say("server: 4 sessions upload a 40 MP float TIFF at once")
        with serve(scratch / "concurrent") as server:
            before = server.memory_mb()
            concurrent_uploads(browser, server, float_tiff())
            peak = server.memory_mb("VmHWM")
        rows.append(
            Row(
                GROUP,
                "peak RSS, 4 sessions uploading a 40 MP float TIFF at once",
                "MB",
                Stats.of([peak]),
                target=f"< {PEAK_TARGET_MB:,} MB",
                met=peak < PEAK_TARGET_MB,
                note=f"server RSS {before:.0f} MB before the uploads; the file is 0.3 MB",
            )
        )
        say(f"server: {counts[1]} uploads in one session")
        with serve(scratch / "soak") as server:
            memory = soak(browser, server, counts)
        first, last = (memory[count] for count in counts)
        rows += [
            Row(GROUP, f"RSS after {counts[0]} uploads in one session", "MB", Stats.of([first])),
            Row(
                GROUP,
                f"RSS after {counts[1]} uploads in one session",
                "MB",
                Stats.of([last]),
                baseline=f"RSS after {counts[0]} uploads in one session",
                ratio=last / first,
                target=f"growth < {SOAK_TARGET_MB} MB",
                met=last - first < SOAK_TARGET_MB,
                note=f"grew {last - first:+.0f} MB; each upload a distinct 773 × 512 JPEG",
            ),
        ]
    return rows
