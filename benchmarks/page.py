"""The Streamlit pages, driven by AppTest, and the history store's queries.

The pages are timed in a fresh process that has never imported Keras, like a
server started on a warm engine cache. That matters: after every script run,
Streamlit calls `keras.backend.clear_session()` (a full garbage collection)
whenever Keras is imported, which costs a process that holds TensorFlow about
0.2 s per rerun. The benchmark process itself holds Keras, so the classify
rerun is also timed here, to show what a server that built a model pays.

`python -m benchmarks.page [--quick]` is that fresh process: it prints its
timings as JSON and reads the history database from CLASSIFIER_DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.testing.v1 import AppTest

from benchmarks import lite0, photos
from benchmarks.report import Row, ratio, say
from benchmarks.timing import Stats, compare, seconds
from classifier import history, images, labels
from classifier.config import PROJECT_ROOT
from classifier.history import review

GROUP = "Page"
APP = str(PROJECT_ROOT / "streamlit_app.py")
TARGET_RERUN_MS = 100
TARGET_QUERY_MS = 50
TARGET_HISTORY_RENDER_S = 1.0
LABEL_FILTER = history.Filters(label="cat")
THUMBNAILED_ROWS = 1_000  # the newest rows get a thumbnail: all the first pages show
RATED_EVERY = 100  # one prediction in a hundred has feedback
INSERT_CHUNK = 10_000
APP_TIMEOUT_S = 300


def seed_history(store: history.HistoryStore, count: int) -> None:
    """Fill the store with `count` plausible predictions spread over the last year."""
    rng = np.random.default_rng(0)
    names = labels.labels()
    thumbnail = images.make_thumbnail(photos.sample_photo("cat"))
    now = datetime.now(UTC)
    year = timedelta(days=365).total_seconds()
    for start in range(0, count, INSERT_CHUNK):
        records = []
        for number in range(start, min(start + INSERT_CHUNK, count)):
            indices = rng.choice(len(names), size=5, replace=False)
            probabilities = np.sort(rng.dirichlet(np.ones(6)))[::-1][:5]
            records.append(
                history.NewRecord(
                    file_name=f"photo-{number}.jpg",
                    sha256=f"{number:064x}",
                    width=4000,
                    height=3000,
                    image_format="JPEG",
                    model=lite0.NAME,
                    top_k=tuple(
                        labels.TopClass(names[i], int(i), float(p))
                        for i, p in zip(indices, probabilities, strict=True)
                    ),
                    inference_ms=float(rng.uniform(5, 15)),
                    thumbnail=thumbnail if number >= count - THUMBNAILED_ROWS else None,
                    created_at=now - timedelta(seconds=year * (1 - number / count)),
                )
            )
        ids = store.add_many(records)
        for record_id in ids[::RATED_EVERY]:
            store.set_feedback(record_id, "correct")


def time_cached_reruns(*, quick: bool) -> list[float]:
    """Classify one upload on the classify page, then time reruns that reuse the prediction."""
    st.cache_data.clear()  # the first run below must really classify
    at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT_S)
    at.run()
    at.sidebar.selectbox(key="model").set_value(lite0.NAME)
    at.file_uploader(key="uploads").set_value(("cat.png", photos.cat_png(), "image/png"))
    at.run()
    if at.exception or not at.subheader:
        raise RuntimeError(f"Expected the classify page to show a prediction. Got: {at.exception}")
    return [seconds(at.run) * 1000 for _ in range(5 if quick else 20)]


def time_history_renders(*, quick: bool) -> tuple[list[float], list[float], int]:
    """Time a new session's first render of the history page, then opening its Summary
    tab (whose four aggregates run only then); return both and the rows shown."""
    renders, summaries, shown = [], [], 0
    for _ in range(2 if quick else 5):
        at = AppTest.from_file(APP, default_timeout=APP_TIMEOUT_S)
        at.run()
        at.switch_page("pages/history.py")
        renders.append(seconds(at.run))
        if at.exception:
            raise RuntimeError(f"The history page failed: {at.exception}")
        shown = len(at.dataframe[0].value) if at.dataframe else 0
        at.session_state["h_tab"] = "Summary"  # as a click on the tab
        summaries.append(seconds(at.run))
        if at.exception or not at.get("vega_lite_chart"):
            raise RuntimeError(f"Expected the Summary tab's charts. Got: {at.exception}")
    return renders, summaries, shown


def time_pages_in_fresh_process(*, quick: bool) -> dict:
    """Run `python -m benchmarks.page` and return the timings it prints."""
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.page", *(["--quick"] if quick else [])],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"The page benchmark process failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def run(scratch: Path, *, quick: bool) -> list[Row]:
    """Time the history store's query at scale, then the pages (see the module docstring)."""
    count = 10_000 if quick else 100_000
    url = f"sqlite:///{scratch / 'history.db'}"
    os.environ["CLASSIFIER_DATABASE_URL"] = url  # for the pages, here and in the fresh process
    store = history.HistoryStore(url)
    say(f"page: seeding the history with {count:,} predictions")
    seed_history(store, count)

    say("page: timing the history store's find + count with a label filter")

    def find_and_count() -> None:
        store.find(LABEL_FILTER, limit=50)
        store.count(LABEL_FILTER)

    query = compare({"query": find_and_count}, rounds=1, calls=5 if quick else 20)["query"]
    matches = store.count(LABEL_FILTER)
    store.dispose()

    say("page: timing the Review queue, with and without the photo index")
    unindexed_path = scratch / "history-without-photo-index.db"
    shutil.copyfile(scratch / "history.db", unindexed_path)
    unindexed = history.HistoryStore(f"sqlite:///{unindexed_path}")
    with unindexed.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_predictions_photo")
    store = history.HistoryStore(url)
    queues = compare(
        {"indexed": lambda: review.queue(store), "unindexed": lambda: review.queue(unindexed)},
        rounds=3,
        calls=2 if quick else 5,
        warmup=1,
    )
    queued = len(review.queue(store).entries)
    store.dispose()
    unindexed.dispose()

    say("page: timing the classify and history pages in a fresh process")
    fresh = time_pages_in_fresh_process(quick=quick)
    say("page: timing classify reruns in this process, which has imported Keras")
    keras_reruns = Stats.of(time_cached_reruns(quick=quick))

    rerun, render = Stats.of(fresh["reruns_ms"]), Stats.of(fresh["renders_s"])
    rows_note = f"SQLite store of {count:,} predictions"
    keras_note = "Keras imported" if fresh["keras_imported"] else "Keras never imported"
    return [
        Row(
            GROUP,
            "classify page rerun, cached prediction",
            "ms",
            rerun,
            target=f"≤ {TARGET_RERUN_MS} ms",
            met=rerun.median <= TARGET_RERUN_MS,
            note=f"fresh process on a warm engine cache ({keras_note}); wall time of "
            "AppTest.run(), so an upper bound on the script's run time",
        ),
        Row(
            GROUP,
            "classify page rerun, server that imported Keras",
            "ms",
            keras_reruns,
            baseline="fresh process",
            ratio=ratio(keras_reruns, rerun),
            note="as after a model's first-ever load, which builds it in Keras",
        ),
        Row(
            GROUP,
            "history store list(limit=50) + count, label filter",
            "ms",
            query,
            target=f"≤ {TARGET_QUERY_MS} ms",
            met=query.median <= TARGET_QUERY_MS,
            note=f"{rows_note}; Filters(label='cat') matches {matches:,}",
        ),
        Row(
            GROUP,
            "Review queue, whole history",
            "ms",
            queues["indexed"],
            baseline="the same history without ix_predictions_photo",
            ratio=ratio(queues["indexed"], queues["unindexed"]),
            note=f"{rows_note}, one model; review.queue() reads {queued:,} entries (at most "
            f"{review.MAX_READ:,}, the least sure first)",
        ),
        Row(
            GROUP,
            "history page first render",
            "s",
            render,
            target=f"≤ {TARGET_HISTORY_RENDER_S} s",
            met=render.median <= TARGET_HISTORY_RENDER_S,
            note=f"{rows_note}; a new session each time; its table showed "
            f"{fresh['history_rows_shown']} rows (the Summary tab is made when opened)",
        ),
        Row(
            GROUP,
            "history page, Summary tab opened",
            "s",
            Stats.of(fresh["summaries_s"]),
            note=f"{rows_note}; its four aggregates over every row, and their charts",
        ),
    ]


if __name__ == "__main__":
    is_quick = "--quick" in sys.argv[1:]
    reruns_ms = time_cached_reruns(quick=is_quick)
    renders_s, summaries_s, shown = time_history_renders(quick=is_quick)
    result = {
        "reruns_ms": reruns_ms,
        "renders_s": renders_s,
        "summaries_s": summaries_s,
        "history_rows_shown": shown,
        "keras_imported": "keras" in sys.modules,
    }
    print(json.dumps(result))
