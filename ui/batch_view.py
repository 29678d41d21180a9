"""The Batch page's parts: a new job from a folder or a zip, the jobs list, one job's results."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import altair as alt
import pandas as pd
import streamlit as st

from classifier import history, images, jobs, models
from classifier.config import get_settings
from ui import folder_picker, sidebar
from ui.columns import PICTURE_COLUMN, plain, share_column, thumbnail_uri

STATUS_TITLES = {
    "queued": "Waiting",
    "running": "Running",
    "done": "Done",
    "cancelled": "Cancelled",
    "failed": "Stopped",
}
REFRESH_SECONDS = 1.0
LISTED = 20  # jobs in the list
SHOWN = 200  # rows of results in the page's table (the downloads hold all)
SKIPPED = {"skipped": "Not classified: the job ended before it."}  # a photo's reason


def runner() -> None:
    """Start this server's runner of batch jobs (once; the server start does it too)."""
    _runner()


@st.cache_resource(show_spinner=False)
def _runner() -> bool:
    jobs.start_runner()
    return True


def new_job(store: history.HistoryStore, choices: sidebar.Choices) -> None:
    """The folder or zip picker, then the button that starts the job."""
    settings = get_settings()
    upload = folder_picker.received(
        "batch",
        f"Up to {settings.batch_max_pictures:,} photos per job, each up to "
        f"{images.size_text(settings.max_bytes)}; a zip up to "
        f"{images.size_text(settings.batch_max_bytes)}. The job runs on the server: close "
        "this tab and it goes on; come back to see its results.",
    )
    if upload is None:
        return
    pictures = upload.pictures
    refused = sum(picture.error is not None for picture in pictures)
    title = upload.title or f"{len(pictures)} photos"
    note = f" ({refused:,} of them too large to classify)" if refused else ""
    st.caption(f"{plain(title)}: {len(pictures):,} photos received{note}.")
    start, again = st.columns(2)
    again.button("Pick others", on_click=folder_picker.start_over, args=("batch",),
                 icon=":material/undo:")  # fmt: skip
    if start.button(f"Classify {len(pictures):,} photos", type="primary",
                    icon=":material/play_arrow:"):  # fmt: skip
        try:
            with upload.lock:  # nothing arrives while the job is kept
                job = upload.job.submit(
                    store,
                    title=title,
                    model=choices.model,
                    top_k=choices.top_k,
                    thumbnails=choices.save_thumbnails,
                    source="app",
                )
        except jobs.BatchInputError as exc:
            st.error(plain(str(exc)), icon=":material/error:")
            return
        folder_picker.forget("batch")
        st.session_state["batch_started"] = job.public_id
        st.rerun()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _jobs_frame(found: list[jobs.Job]) -> pd.DataFrame:
    now = datetime.now(UTC)
    return pd.DataFrame(
        {
            "title": [job.title for job in found],
            "model": [models.title_of(job.model) for job in found],
            "status": [STATUS_TITLES[job.status] for job in found],
            "progress": [job.handled / job.total if job.total else 1.0 for job in found],
            "done": [f"{job.handled:,} of {job.total:,}" for job in found],
            "rate": [job.photos_per_second(now) for job in found],
            "left": [_duration(job.seconds_left(now)) for job in found],
            "errors": [job.failed for job in found],
            "created": [job.created_at for job in found],
            "results": [f"?job={job.public_id}" for job in found],
        }
    )


JOB_COLUMNS = {
    "title": st.column_config.TextColumn("Photos"),
    "model": st.column_config.TextColumn("Model"),
    "status": st.column_config.TextColumn("Status"),
    "progress": share_column("Progress"),
    "done": st.column_config.TextColumn("Done"),
    "rate": st.column_config.NumberColumn("Photos/s", format="%.1f"),
    "left": st.column_config.TextColumn("Time left"),
    "errors": st.column_config.NumberColumn("Errors"),
    "created": st.column_config.DatetimeColumn("Started", format="D MMM, HH:mm"),
    "results": st.column_config.LinkColumn("Results", display_text="Open"),
}


def jobs_list(store: history.HistoryStore) -> None:
    """The person's jobs, refreshed every second while one of them runs."""
    found = jobs.newest(store, LISTED)
    running = any(not job.ended for job in found)
    _jobs_table(store, running)


def _jobs_table(store: history.HistoryStore, running: bool) -> None:
    every = REFRESH_SECONDS if running else None

    @st.fragment(run_every=every)
    def table() -> None:
        found = jobs.newest(store, LISTED)
        if not found:
            st.caption("No batch jobs yet.")
            return
        st.dataframe(
            _jobs_frame(found),
            column_config=JOB_COLUMNS,
            hide_index=True,
            width="stretch",
        )
        active = [job for job in found if not job.ended]
        for job in active:
            label = f"Cancel “{plain(job.title)}”"
            if st.button(label, key=f"cancel_{job.public_id}", icon=":material/stop:"):
                jobs.cancel(store, job.public_id)
                st.rerun()
        if running and not active:  # the last one ended: redraw the page without refreshing
            st.rerun()

    table()


def results(store: history.HistoryStore, job: jobs.Job) -> None:
    """One job: its progress, class counts, table of answers and downloads."""
    st.subheader(f"Results: {plain(job.title)}")
    st.caption(
        f"{plain(models.title_of(job.model))} · {STATUS_TITLES[job.status]} · "
        f"{job.done:,} classified, {job.failed:,} failed, of {job.total:,}"
    )
    if job.error:
        st.error(plain(job.error), icon=":material/error:")
    counts = jobs.class_counts(store, job)
    if counts:
        frame = pd.DataFrame({"class": list(counts), "photos": list(counts.values())}).head(20)
        chart = (
            alt.Chart(frame)
            .mark_bar()
            .encode(
                x=alt.X("photos:Q", title="Photos"),
                y=alt.Y("class:N", sort="-x", title=None, axis=alt.Axis(labelLimit=240)),
                tooltip=["class", "photos"],
            )
            .properties(height=alt.Step(26))  # a row per class, each label shown
        )
        st.altair_chart(chart, width="stretch")
        if len(counts) > 20:
            st.caption(f"The 20 most frequent of {len(counts):,} classes.")
    found = jobs.items(store, job, with_thumbnails=True, limit=SHOWN)
    if found:
        table = pd.DataFrame(
            {
                "picture": [thumbnail_uri(item.thumbnail) for item in found],
                "file": [item.file_name for item in found],
                "label": [item.label or "" for item in found],
                "confidence": [item.probability for item in found],
                "error": [item.error or SKIPPED.get(item.status, "") for item in found],
            }
        )
        st.dataframe(
            table,
            column_config={
                "picture": PICTURE_COLUMN,
                "file": st.column_config.TextColumn("File"),
                "label": st.column_config.TextColumn("Top class"),
                "confidence": share_column("Confidence"),
                "error": st.column_config.TextColumn("Why it failed", width="large"),
            },
            hide_index=True,
            width="stretch",
            row_height=40,
        )
        if job.total > SHOWN:
            st.caption(f"The first {SHOWN:,} of {job.total:,} photos; the downloads hold all.")
    csv_column, json_column, history_column = st.columns(3)
    for column, kind, mime in ((csv_column, "csv", "text/csv"),
                               (json_column, "json", "application/json")):  # fmt: skip
        column.download_button(
            f"Download {kind.upper()}",
            data=partial(jobs.export, store, job, kind),  # built only when clicked
            file_name=f"job-{job.public_id}.{kind}",
            mime=mime,
            on_click="ignore",
            icon=":material/download:",
        )
    history_column.page_link(
        "pages/history.py",
        label="Its rows in History",
        icon=":material/history:",
        query_params={"job": job.public_id},
    )
