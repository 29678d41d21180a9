"""The server's memory after visitors taught models on the Teach page and left.

Several sessions at once each teach a two-class model from phone-sized photos (12 MP
JPEGs of ~3 MB made from the example photos), train it and save it, then close; the
first of them is the server's first visit, as on a server just started. Once
Streamlit has let the sessions go (a disconnected session is kept for a reconnect for
`server.disconnectedSessionTTL` seconds, shortened here), the server's RSS is read.
What stays is the one-time cost of teaching in a process (scikit-learn's imports and the
feature extractor, ~125 MB), not the photos. The test in tests/test_teach_memory.py holds
the server to a bound with these functions.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from benchmarks import photos
from benchmarks.report import Row, say
from benchmarks.server import Server, chromium, chromium_missing, open_classify_page, serve
from benchmarks.timing import Stats

GROUP = "Memory, server"
CLASSES = ("Cat", "Coffee")  # from assets/examples/cat.jpg and coffee.jpg
PHOTO_SIZE = (4000, 3000)  # a phone's 12 MP
SESSION_TTL_SECONDS = 2  # Streamlit's default keeps a closed tab's session for 120 s
RELEASE_SECONDS = 10  # ui.resources.RELEASE_MARGIN_SECONDS and the trim's delay, with room
SETTLE_SECONDS = 60  # how long the RSS is watched for falling after the sessions are let go
# For the measurement only: the session TTL above, and no file watcher (an edit to the
# app's files would make Streamlit import its modules again in the middle of a run).
SERVER_SETTINGS = {
    "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(SESSION_TTL_SECONDS),
    "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
}
WAIT_MS = 120_000
UPLOAD_ATTEMPTS = 3
TRAIN_WAIT_MS = 300_000  # the first training on a server may export the feature extractor


def phone_photos(folder: Path, per_class: int) -> dict[str, list[Path]]:
    """Write `per_class` distinct 12 MP JPEGs (~3 MB) of each class; return them by class.

    Each is the example photo at a phone's size with noise of its own, as a camera's.
    """
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, list[Path]] = {}
    for name in CLASSES:
        fitted = ImageOps.fit(photos.sample_photo(name.lower()), PHOTO_SIZE)
        pixels = np.asarray(fitted, dtype=np.int16)
        made[name] = []
        for number in range(per_class):
            noise = np.random.default_rng(number).integers(-12, 13, pixels.shape, dtype=np.int16)
            noisy = np.clip(pixels + noise, 0, 255).astype(np.uint8)
            path = folder / f"{name.lower()}-{number}.jpg"
            Image.fromarray(noisy).save(path, "JPEG", quality=photos.JPEG_QUALITY)
            made[name].append(path)
    return made


def go_to_teach_page(page) -> None:
    """Go from the page a session is on to the Teach page."""
    from playwright.sync_api import expect

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Teach").click()
    title = page.get_by_role("heading", name="Teach a model your own classes")
    expect(title).to_be_visible(timeout=WAIT_MS)


def give_photos(page, photos_by_class: dict[str, list[Path]]) -> None:
    """Name the classes and upload their photos; wait until each card counts them.

    Files given to an uploader that a rerun is redrawing may be lost (more likely on a busy
    machine): they are given again, which adds no photo (a class keeps one of each).
    """
    from playwright.sync_api import expect

    for number, (name, files) in enumerate(photos_by_class.items()):
        box = page.get_by_label("Class name").nth(number)
        box.fill(name)
        box.press("Enter")
        expect(box).to_have_value(name, timeout=WAIT_MS)
        counts = page.get_by_text(f"{len(files)} photos", exact=True)
        for attempt in range(UPLOAD_ATTEMPTS):
            expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT_MS)
            page.locator("input[type=file]").nth(number).set_input_files([str(f) for f in files])
            try:
                expect(counts).to_have_count(number + 1, timeout=WAIT_MS // UPLOAD_ATTEMPTS)
                break
            except AssertionError as error:
                if attempt == UPLOAD_ATTEMPTS - 1:
                    raise AssertionError(
                        f"{name}'s {len(files)} photos were not counted after "
                        f"{UPLOAD_ATTEMPTS} uploads. {what_the_page_says(page)}"
                    ) from error


def what_the_page_says(page, limit: int = 2000) -> str:
    """Return the main area's text (its cards, messages and uploaded files' names), to say
    why a wait failed; never fails itself."""
    try:
        text = page.get_by_test_id("stMain").inner_text(timeout=5_000)
    except Exception as exc:  # (a page gone or not drawn: say that instead)
        return f"The page's text could not be read ({type(exc).__name__})."
    lines = " | ".join(line for line in text.split("\n") if line)
    return f"The page shows: {lines[:limit]}"


def wait_for_training(page) -> None:
    """Wait until the page shows the cross-validated accuracy of the training it started."""
    from playwright.sync_api import expect

    metric = page.get_by_test_id("stMetric").filter(has_text="Cross-validated accuracy")
    value = metric.get_by_test_id("stMetricValue")
    expect(value).to_have_text(re.compile(r"^\d+%$"), timeout=TRAIN_WAIT_MS)


def save_model(page, name: str) -> None:
    """Save the trained model under a name; wait until the page says it is saved."""
    from playwright.sync_api import expect

    box = page.get_by_label("Model name")
    box.fill(name)
    box.press("Enter")
    button = page.get_by_role("button", name="Save model")
    expect(button).to_be_enabled(timeout=WAIT_MS)
    button.click()
    expect(page.get_by_text(f"Saved {name}")).to_be_visible(timeout=WAIT_MS)


def teach_at_once(
    browser, server: Server, photos_by_class, sessions: int, first_number: int = 1
) -> tuple[float, float]:
    """Have `sessions` visitors teach and save a model at the same time, then close their
    tabs; return the server's RSS (MB) once they all had the Classify page, and its peak.
    Their models are named "Taught in session N", N from `first_number` on."""
    pages = [open_classify_page(browser, server) for _ in range(sessions)]
    first_page = server.memory_mb()
    for page in pages:
        go_to_teach_page(page)
        try:
            give_photos(page, photos_by_class)
        except AssertionError as error:
            log_end = server.log.read_text(errors="replace")[-2000:]
            raise AssertionError(f"{error}\nThe server's log ends: {log_end}") from error
    for page in pages:
        page.get_by_role("button", name="Train").click()
    for number, page in enumerate(pages):
        wait_for_training(page)
        save_model(page, f"Taught in session {first_number + number}")
    for page in pages:
        page.context.close()
    return first_page, server.memory_mb("VmHWM")


def memory_once_let_go(browser, server: Server, below_mb: float = 0.0) -> float:
    """Return the server's RSS (MB) once the closed sessions are let go and it stops falling.

    Streamlit drops an expired session when it next stores one (another tab closing), and
    frees it at a later collection (after a script run): two short visits do both, as
    visitors would. Returns as soon as the RSS is below `below_mb`.
    """
    time.sleep(SESSION_TTL_SECONDS + RELEASE_SECONDS)
    for _ in range(2):
        open_classify_page(browser, server).context.close()
        time.sleep(SESSION_TTL_SECONDS + 1)
    lowest, since = server.memory_mb(), time.monotonic()
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline and time.monotonic() - since < RELEASE_SECONDS:
        time.sleep(0.5)
        now = server.memory_mb()
        if now < lowest - 1:
            lowest, since = now, time.monotonic()
        if lowest < below_mb:
            break
    return lowest


def run(scratch: Path, *, quick: bool) -> list[Row]:
    """Measure the server's RSS before and after several Teach sessions at once closed."""
    missing = chromium_missing()
    if missing:
        say(f"teach memory: skipped ({missing})")
        return []
    sessions, per_class = (2, 8) if quick else (3, 20)  # as tests/test_teach_memory.py
    photos_by_class = phone_photos(scratch / "teach-photos", per_class)
    upload_mb = sum(p.stat().st_size for files in photos_by_class.values() for p in files) / 2**20
    say(f"teach memory: {sessions} sessions each teach {len(CLASSES)} × {per_class} 12 MP photos")
    with chromium() as browser, serve(scratch / "teach-memory", **SERVER_SETTINGS) as server:
        before, peak = teach_at_once(browser, server, photos_by_class, sessions)
        after = memory_once_let_go(browser, server)
    say(f"teach memory: RSS {before:.0f} MB before, {after:.0f} MB after (peak {peak:.0f} MB)")
    first_page = "RSS with the Teach sessions open on the Classify page"
    return [
        Row(GROUP, first_page, "MB", Stats.of([before])),
        Row(
            GROUP,
            f"RSS after {sessions} Teach sessions at once closed",
            "MB",
            Stats.of([after]),
            baseline=first_page,
            ratio=after / before,
            note=f"each session uploads {upload_mb:.0f} MB ({len(CLASSES)} × {per_class} "
            f"12 MP JPEGs), trains and saves; peak {peak:.0f} MB while they ran. What stays "
            "is teaching's one-time cost per process (scikit-learn's imports ~76 MB, the "
            "feature extractor ~49 MB); the photos go with the sessions",
        ),
    ]
