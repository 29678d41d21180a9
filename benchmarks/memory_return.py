"""The server's memory once visitors have come and gone: Classify, Teach and a batch job.

One server, on which, in turn:

1. one visit opens the Classify page and leaves (the server's level once running);
2. one of each kind of session comes and goes: a Classify upload, a Teach session that
   trains and saves a model from 2 x 4 photos, and a 10-photo batch job from the Batch
   page (the server's level once it has done each kind of work once);
3. then the sessions measured: several Classify sessions uploading at once, a Teach
   session with 200 phone photos (12 MP JPEGs, 2 x 100) that trains and saves, and a batch
   job of 100 photos from the Batch page.

After each step the sessions close and the server's RSS is read once Streamlit has let
them go (`teach_memory.memory_once_let_go`). The target: after step 3, within 50 MB of the
level after step 2. What step 2 adds over step 1 stays for the life of the process: the
code and models each kind of work loads once (scikit-learn, the feature extractor).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from benchmarks import photos
from benchmarks.batch import make_folder
from benchmarks.browser import CHART
from benchmarks.report import Row, say
from benchmarks.server import Server, chromium, chromium_missing, open_classify_page, serve
from benchmarks.teach_memory import (
    SERVER_SETTINGS,
    give_photos,
    go_to_teach_page,
    memory_once_let_go,
    phone_photos,
    save_model,
    wait_for_training,
)
from benchmarks.timing import Stats

GROUP = "Memory, server: sessions that ended"
TARGET_MB = 50
JOB_WAIT_SECONDS = 600


def classify_at_once(browser, server: Server, folder: Path, sessions: int, seed: int) -> None:
    """Open `sessions` Classify pages, drop a different photo on each, wait for each chart."""
    pages = [open_classify_page(browser, server) for _ in range(sessions)]
    for number, page in enumerate(pages):
        path = folder / f"classify-{seed}-{number}.jpg"
        path.write_bytes(
            photos.encode(photos.photo("coffee", (773, 512), seed=seed + number), "JPEG")
        )
        page.locator("input[type=file]").first.set_input_files(str(path))
    for page in pages:
        page.locator(CHART).first.wait_for()
        page.context.close()


def teach(browser, server: Server, photos_by_class: dict[str, list[Path]], name: str) -> None:
    """One Teach session: give the photos, train, save the model, close."""
    page = open_classify_page(browser, server)
    go_to_teach_page(page)
    give_photos(page, photos_by_class)
    page.get_by_role("button", name="Train").click()
    wait_for_training(page)
    save_model(page, name)
    page.context.close()


def batch_job(browser, server: Server, folder: Path, count: int, database: Path) -> None:
    """One Batch session: upload a folder, start its job, wait until it has ended, close."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(600_000)
    page.goto(f"{server.url}/batch")
    page.get_by_text("Pick a folder", exact=True).wait_for()
    with closing(sqlite3.connect(database)) as conn:
        jobs_before = conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    page.locator("#folder").set_input_files(str(folder))
    page.get_by_role("button", name=f"Classify {count} photos").click()
    page.get_by_text("The job has started").wait_for()
    deadline = time.monotonic() + JOB_WAIT_SECONDS
    while time.monotonic() < deadline:
        with closing(sqlite3.connect(database)) as conn:
            statuses = [row[0] for row in conn.execute("SELECT status FROM jobs ORDER BY id")]
        if len(statuses) > jobs_before and statuses[-1] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.5)
    else:
        raise RuntimeError(f"Expected the batch job of {count} photos to end.")
    if statuses[-1] != "done":
        raise RuntimeError(f"Expected the batch job to be done. Received: {statuses[-1]}.")
    page.context.close()


def run(scratch: Path, *, quick: bool) -> list[Row]:
    """Measure the server's RSS before and after the sessions above (module docstring)."""
    missing = chromium_missing()
    if missing:
        say(f"memory return: skipped ({missing})")
        return []
    sessions, per_class, job = (2, 10, 15) if quick else (6, 100, 100)
    say(f"memory return: making {2 * per_class} 12 MP photos and a {job}-photo folder")
    photos_by_class = phone_photos(scratch / "return-teach", per_class)
    first_photos = {name: files[:4] for name, files in photos_by_class.items()}
    make_folder(scratch / "return-job-first", 10)
    make_folder(scratch / "return-job", job)
    folder = scratch / "return-server"
    with chromium() as browser, serve(folder, **SERVER_SETTINGS) as server:
        database = folder / "history.db"
        open_classify_page(browser, server).context.close()
        levels = {"once running (one visit came and went)": memory_once_let_go(browser, server)}
        say(f"memory return: {levels[next(iter(levels))]:.0f} MB once running")
        firsts = {
            "a first Classify session": lambda: classify_at_once(browser, server, scratch, 1, 600),
            "a first Teach session (2 x 4 photos)": lambda: teach(
                browser, server, first_photos, "First taught"
            ),
            "a first batch job (10 photos)": lambda: batch_job(
                browser, server, scratch / "return-job-first", 10, database
            ),
        }
        for name, session in firsts.items():
            session()
            levels[f"after {name} ended"] = memory_once_let_go(browser, server)
            say(f"memory return: {levels[f'after {name} ended']:.0f} MB after {name}")
        once = list(levels.values())[-1]
        classify_at_once(browser, server, scratch, sessions, seed=700)
        teach(browser, server, photos_by_class, "Taught from 200")
        batch_job(browser, server, scratch / "return-job", job, database)
        peak = server.memory_mb("VmHWM")
        after = memory_once_let_go(browser, server, below_mb=once + TARGET_MB)
    say(f"memory return: {after:.0f} MB after them (peak {peak:.0f} MB)")
    rows, before = [], None
    for name, level in levels.items():
        note = "" if before is None else f"{level - before:+.0f} MB: what it loaded once and keeps"
        rows.append(Row(GROUP, f"RSS {name}", "MB", Stats.of([level]), note=note))
        before = level
    measured = (
        f"RSS after {sessions} Classify sessions at once, a Teach session with "
        f"{2 * per_class} photos and a {job}-photo batch job ended"
    )
    rows.append(
        Row(
            GROUP,
            measured,
            "MB",
            Stats.of([after]),
            target=f"within {TARGET_MB} MB of the level before them",
            met=after - once <= TARGET_MB,
            note=f"{after - once:+.0f} MB against the level before them ({once:.0f} MB, after "
            f"one of each), read once it fell within the target or stopped falling; peak "
            f"{peak:.0f} MB while they ran; the Teach photos are 12 MP "
            f"JPEGs (2 x {per_class}), the job's folder a third 12 MP",
        )
    )
    return rows
