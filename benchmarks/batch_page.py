"""A batch job from the browser: the server's peak memory while a person uploads a folder of
500 photos on the Batch page and the job runs, and its photos per second.

The folder is what a phone or camera leaves: a third of the photos 12 MP JPEGs, the rest
~800 x 600. Memory is the server's whole process tree (VmRSS, sampled every 50 ms), from
the page's first load to the job's end; the target is under 600 MB.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path

from benchmarks import server as server_tools
from benchmarks.api import Sampler
from benchmarks.batch import make_folder
from benchmarks.report import Row, say
from benchmarks.timing import Stats

GROUP = "Batch job from the browser"
PHOTOS = 500
TARGET_MB = 600


def run(quick: bool = False) -> list[Row]:
    """Upload a folder on the Batch page, start its job, wait for its end; report memory."""
    reason = server_tools.chromium_missing()
    if reason is not None:
        say(f"skipping the batch page rows: {reason}")
        return []
    count = 100 if quick else PHOTOS
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        say(f"making a folder of {count} photos")
        folder = root / "photos"
        make_folder(folder, count)
        with server_tools.serve(root / "server") as server, server_tools.chromium() as browser:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(600_000)
            with Sampler(server.pid) as sampler:
                start = time.monotonic()
                page.goto(f"{server.url}/batch")
                page.get_by_text("Pick a folder", exact=True).wait_for()
                say("uploading the folder")
                page.locator("#folder").set_input_files(str(folder))
                button = page.get_by_role("button", name=f"Classify {count} photos")
                button.wait_for()
                uploaded = time.monotonic()
                button.click()
                page.get_by_text("The job has started").wait_for()
                database = root / "server" / "history.db"
                while True:
                    with closing(sqlite3.connect(database)) as conn:
                        row = conn.execute(
                            "SELECT status, done, started_at, finished_at FROM jobs"
                        ).fetchone()
                    if row and row[0] in ("done", "failed", "cancelled"):
                        break
                    time.sleep(0.5)
                end = time.monotonic()
            peak_mb, _ = sampler.during(start, end)
            upload_mb, _ = sampler.during(start, uploaded)
            job_mb, _ = sampler.during(uploaded, end)
            say(f"peak while uploading {upload_mb:.0f} MB, while the job ran {job_mb:.0f} MB")
            status, done, started, finished = row
        seconds = (
            datetime.fromisoformat(finished) - datetime.fromisoformat(started)
        ).total_seconds()
    say(f"job {status}: {done} photos in {seconds:.1f} s, server peak {peak_mb:.0f} MB")
    return [
        Row(
            GROUP,
            f"server peak RSS, upload of {count} photos + the job",
            "MB",
            Stats.of([peak_mb]),
            target=f"< {TARGET_MB} MB",
            met=peak_mb < TARGET_MB,
            note="the server process and its children, sampled every 50 ms",
        ),
        Row(
            GROUP,
            f"the job's photos per second ({count} photos, a third 12 MP)",
            "photos/s",
            Stats.of([done / seconds]),
        ),
    ]
