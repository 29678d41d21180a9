"""The History page's parts: filters, the paged table with delete and exports, the summary."""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from classifier import charts, history, models
from classifier.config import get_settings
from classifier.predict import UNSURE_BELOW
from ui import account, columns, permalink, teach_view

log = logging.getLogger(__name__)

PAGE_SIZES = (10, 25, 50, 100)
ROW_HEIGHT = 40  # pixels: room for a thumbnail
SORT_TITLES = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "confidence_desc": "Most confident first",
    "confidence_asc": "Least confident first",
}
FEEDBACK_TITLES = {
    "any": "Any",
    "correct": "Rated correct",
    "wrong": "Rated wrong",
    "unusable": "Not a usable photo",
    "unrated": "Not rated",
}
FEEDBACK_WORDS = {"correct": "right", "wrong": "wrong", "unusable": "not usable"}  # the table's


def log_error(exc: BaseException) -> None:
    """Log a history database error for the server's operator: the password masked."""
    details = history.log_message(exc, get_settings().database_url)
    # A HistoryError's message is the whole story; for others the traceback helps.
    log.warning("%s", details, exc_info=None if isinstance(exc, history.HistoryError) else exc)


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn an error of the history database into a sentence on the page, and stop the page.

    The visitor reads what went wrong in words: never a URL, a password, SQL or
    its parameters. The server log gets the details, the password masked.
    """
    try:
        yield
    except Exception as exc:
        log_error(exc)
        st.error(history.public_message(exc), icon=":material/error:")
        st.stop()


def no_history(person: account.Visitor) -> None:
    """Say why this visitor has no history to see, and what would give them one."""
    if person.problem is not None:
        st.error(person.problem, icon=":material/lock:")
    elif person.mode == "off":
        st.info("Predictions are not saved on this server, so there is nothing to show here.")
    elif person.sign_in:
        st.info("Sign in to keep your history: each person sees only their own predictions.",
                icon=":material/lock:")  # fmt: skip
        st.button("Sign in", on_click=st.login, icon=":material/login:", type="primary",
                  key="history_sign_in")  # fmt: skip
    else:
        st.warning(
            "This server keeps a private history for each person, but sign-in is not "
            "configured (an [auth] table in the app's secrets), so nothing is saved.",
            icon=":material/lock:",
        )


def show_callback_error() -> None:
    """Show what went wrong in a button's callback (delete, clear) during this rerun."""
    message = st.session_state.pop("h_error", None)
    if message:
        st.error(message, icon=":material/error:")


def _in_callback(action: Callable[..., Any], *args: Any) -> Any:
    """Run a store call from a callback; on failure, leave a sentence for the page."""
    try:
        return action(*args)
    except Exception as exc:
        log_error(exc)
        st.session_state["h_error"] = history.public_message(exc)
        return None


def _export(
    store: history.HistoryStore,
    kind: str,
    filters: history.Filters,
    sort: str,
    link: Callable[[str], str],
) -> bytes:
    """Build a download when it is clicked, each row with its link; a failure logs the
    details, never shows SQL."""
    try:
        return (
            store.export_csv(filters, sort, model_title=models.title_of, link=link)
            if kind == "CSV"
            else store.export_json(filters, sort, link=link)
        )
    except Exception as exc:
        log_error(exc)
        # Streamlit logs this and tells the visitor the download failed.
        raise history.HistoryError(history.public_message(exc)) from None


def read_only_notice(store: history.HistoryStore) -> None:
    """Say so when the history can be read but not written (a read-only folder)."""
    if store.read_only:
        where = f" folder {store.sqlite_path.parent}" if store.sqlite_path is not None else ""
        st.warning(
            f"The history database{where} cannot be written, so the history is open "
            "read-only: you can browse and download it, but nothing can be saved or "
            "deleted until it is writable and the app restarts.",
            icon=":material/lock:",
        )


def day_range(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """Turn the From and To days into a UTC [start, end) range; either may be open."""
    start = datetime.combine(first, time.min, tzinfo=UTC) if first else None
    if last is None or last == date.max:  # (the last day there is: no day after it)
        return start, None
    return start, datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)


def typed_date(where, label: str, key: str) -> date | None:
    """Draw a date box (YYYY-MM-DD); return its date, or None when empty or not a date."""
    text = where.text_input(label, key=key, placeholder="YYYY-MM-DD", max_chars=10).strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text.replace("/", "-"))
    except ValueError:
        where.caption(f"Not a date; write it as {date.today():%Y-%m-%d}.")
        return None


def filter_sidebar(store: history.HistoryStore) -> tuple[history.Filters, str]:
    """Draw the filters in the sidebar; return them and the sort order."""
    used = store.models_used()
    if picked := st.session_state.get("h_models"):  # a model whose last row was deleted goes
        st.session_state["h_models"] = [name for name in picked if name in used]
    with st.sidebar:
        st.header("Filters")
        label = st.text_input(
            "Label contains",
            key="h_label",
            placeholder="e.g. cat",
            max_chars=history.MAX_LABEL_LENGTH,
        )
        picked_models = st.multiselect(
            "Models",
            # Those the rows name: a removed model's too, none that was never used.
            sorted(used, key=lambda name: models.title_of(name).casefold()),
            key="h_models",
            format_func=models.title_of,
            placeholder="All models",
        )
        low, high = st.slider(
            "Confidence", 0.0, 1.0, (0.0, 1.0), step=0.05, format="percent", key="h_confidence"
        )
        # Typed dates: Streamlit's date picker drops what is typed into it.
        since, until = st.columns(2)
        first = typed_date(since, "From (UTC)", "h_from")
        last = typed_date(until, "To (UTC)", "h_to")
        feedback = st.selectbox(
            "Feedback", list(FEEDBACK_TITLES), format_func=FEEDBACK_TITLES.get, key="h_feedback"
        )
        sort = st.selectbox("Sort", list(SORT_TITLES), format_func=SORT_TITLES.get, key="h_sort")
        st.button("Reset filters", key="h_reset", on_click=reset_filters, icon=":material/undo:")
    start, end = day_range(first, last)
    filters = history.Filters(
        label=label.strip(),
        models=tuple(picked_models),
        min_confidence=low if low > 0 else None,
        max_confidence=high if high < 1 else None,
        start=start,
        end=end,
        feedback=feedback,
    )
    return filters, sort


def job_filter(store: history.HistoryStore, filters: history.Filters) -> history.Filters:
    """Keep to one batch job's answers when the address names one (`?job=ID`, the Batch
    page's link), and say so with a way back to all of them."""
    public_id = st.query_params.get("job")
    if public_id is None:
        return filters
    from classifier import jobs

    job = jobs.get(store, public_id)
    if job is None:
        st.warning("No batch job has this id among yours; showing every prediction.",
                   icon=":material/search_off:")  # fmt: skip
        return filters
    shown, back = st.columns([4, 1], vertical_alignment="center")
    shown.info(f"Only the answers of the batch job {columns.plain(job.title)}.",
               icon=":material/photo_library:")  # fmt: skip
    if back.button("Show all", icon=":material/filter_alt_off:", key="h_all_jobs"):
        del st.query_params["job"]
        st.rerun()
    return replace(filters, job=job.id)


# Each filter's key (and the sort's) and the value showing everything, newest first.
FILTER_DEFAULTS = {
    "h_label": "",
    "h_models": [],
    "h_confidence": (0.0, 1.0),
    "h_from": "",
    "h_to": "",
    "h_feedback": next(iter(FEEDBACK_TITLES)),
    "h_sort": next(iter(SORT_TITLES)),
}


def reset_filters() -> None:
    """Put every filter and the sort order back to showing everything, newest first.

    Each is set to its default rather than forgotten: a widget whose key is dropped keeps
    its old value in the browser, which the next click sends back."""
    for key, default in FILTER_DEFAULTS.items():
        st.session_state[key] = default
    st.session_state["h_page"] = 1


def show_no_matches() -> None:
    """Say that the filters match nothing, and offer to reset them."""
    st.info("No saved predictions match these filters.", icon=":material/filter_alt_off:")
    st.button("Reset filters", key="h_reset_empty", on_click=reset_filters, icon=":material/undo:")


def _selected_rows(table_key: str) -> list[int]:
    """Return the row positions ticked in a table drawn in the previous run."""
    state = st.session_state.get(table_key) or {}
    return list(state.get("selection", {}).get("rows", []))


def _predictions(count: int) -> str:
    return f"{count:,} prediction{'s' if count != 1 else ''}"


def delete_rows(store: history.HistoryStore, ids: list[int]) -> None:
    """Delete the selected rows, kept for an undo (the table then shows other rows, with
    nothing ticked)."""
    removed = _in_callback(store.remove, ids)
    if removed is None:
        return
    st.session_state.pop("h_table_key", None)
    st.session_state["h_removed"] = removed  # the last deletion, until undone or cleared


def undo_delete(store: history.HistoryStore) -> None:
    """Put back the rows the last delete took away, as they were."""
    removed = st.session_state.pop("h_removed", None)
    if removed is None:  # undone already (a second click)
        return
    restored = _in_callback(store.restore, removed)
    if restored is None:
        st.session_state["h_removed"] = removed  # failed: it may be tried again
        return
    st.session_state.pop("h_table_key", None)
    st.toast(f"Restored {_predictions(restored)}.", icon=":material/undo:")


def show_undo(store: history.HistoryStore) -> None:
    """Say what the last delete took away, with a button that puts it back."""
    removed = st.session_state.get("h_removed")
    if not removed:
        return
    said, undo = st.columns([4, 1], vertical_alignment="center")
    said.info(f"Deleted {_predictions(len(removed))}.", icon=":material/delete:")
    undo.button(
        "Undo",
        key="h_undo",
        icon=":material/undo:",
        on_click=undo_delete,
        args=(store,),
        disabled=store.read_only,
    )


def clear_all(store: history.HistoryStore) -> None:
    """Delete every prediction, after the person confirmed."""
    deleted = _in_callback(store.clear)
    if deleted is not None:
        st.session_state.pop("h_removed", None)  # nothing of the history to put back
        st.toast(f"Cleared the history ({deleted:,} predictions).")


def records_frame(records: list[history.Record]) -> pd.DataFrame:
    """Return the table rows of one page of records."""
    return pd.DataFrame(
        {
            "id": [r.id for r in records],
            # The link, top-1 and confidence first: on a phone only the first columns fit.
            "link": [permalink.link_to(r.public_id) if r.public_id else None for r in records],
            "top-1": [r.top1_label for r in records],
            "confidence": [r.top1_probability for r in records],
            # An empty cell, not "None", where no picture or map was kept.
            "picture": [columns.thumbnail_uri(r.thumbnail) or "" for r in records],
            "looked": [columns.thumbnail_uri(r.overlay) or "" for r in records],
            "time": [r.created_at for r in records],
            "file": [r.file_name for r in records],
            "model": [models.title_of(r.model) for r in records],
            "feedback": [FEEDBACK_WORDS.get(r.feedback or "", "") for r in records],
            "corrected": [r.corrected_label or "" for r in records],
            "photo": ["yes" if r.has_photo else "" for r in records],
        }
    )


TABLE_POSITION_KEYS = ("h_page_size", "h_page")


def keep_table_position() -> None:
    """Keep the table's page size and page across a run that does not draw the table
    (the Summary tab open): a value set through Session State outlives its widget."""
    for key in TABLE_POSITION_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _clamp_page(pages: int) -> None:
    st.session_state["h_page"] = min(max(1, int(st.session_state["h_page"])), pages)


def show_table(
    store: history.HistoryStore, filters: history.Filters, sort: str, count: int, total: int
) -> None:
    """Draw one page of the filtered predictions with selection, delete and exports."""
    size_col, page_col, _ = st.columns([1, 1, 3])
    st.session_state.setdefault("h_page_size", PAGE_SIZES[1])
    page_size = size_col.selectbox("Rows per page", PAGE_SIZES, key="h_page_size")
    pages = max(1, math.ceil(count / page_size))
    st.session_state["h_page"] = min(max(1, st.session_state.get("h_page", 1)), pages)
    # No max_value: a number past the last page is corrected to it, not left in red.
    page = page_col.number_input(
        "Page", min_value=1, step=1, key="h_page", on_change=_clamp_page, args=(pages,)
    )
    st.caption(f"Page {page:,} of {pages:,}")
    records = store.find(filters, sort, limit=page_size, offset=(page - 1) * page_size)
    frame = records_frame(records)
    # The table's selection is a list of row positions. The key names the rows shown,
    # so when they change (filters, sort, page, a deletion, another session's new
    # prediction) the selection starts empty instead of moving to other rows. It also
    # counts the predictions opened from the table: back from one, the table is a new
    # one (the browser would keep the clicked cell chosen, and a click on it do nothing).
    ids = [int(i) for i in frame["id"]]
    opened = st.session_state.get("h_opened", 0)
    key = f"h_table_{zlib.crc32(repr(ids).encode()):08x}_{opened}"
    previous = st.session_state.get("h_table_key")
    if previous not in (None, key) and _selected_rows(previous):
        st.info("The table changed since you ticked rows; tick them again.")
    st.session_state["h_table_key"] = key
    show_undo(store)
    if count == 0:
        show_no_matches()
        selected: list[int] = []
    else:
        public_ids = [r.public_id for r in records]
        selected = [ids[i] for i in _draw_table(frame, key, public_ids) if i < len(ids)]
    _draw_actions(store, filters, sort, count, total, selected)


def _clicked(key: str, public_ids: list[str | None]) -> None:
    """When the cell clicked in the table is an Open cell, leave its prediction to open
    (`open_clicked`); the list shown again later has a new table, nothing chosen in it."""
    for row, column in st.session_state[key]["selection"]["cells"]:
        if column == "link" and row < len(public_ids) and public_ids[row]:
            st.session_state["h_open"] = public_ids[row]
            st.session_state["h_opened"] = st.session_state.get("h_opened", 0) + 1
            st.session_state.pop("h_table_key", None)  # its ticks go: no "tick them again"


def open_clicked() -> None:
    """Open the prediction whose Open cell was clicked, on its own page in this tab, at the
    address its link gives. A click the grid takes as choosing the cell (beside the word, or
    a first click on it) opens it so; the word itself stays a link, to a new tab."""
    if public_id := st.session_state.pop("h_open", None):
        st.switch_page("pages/history.py", query_params={permalink.PARAMETER: public_id})


def _draw_table(frame: pd.DataFrame, key: str, public_ids: list[str | None]) -> list[int]:
    """Draw a page of records with ticks and Open cells; return the ticked row positions."""
    event = st.dataframe(
        frame,
        key=key,
        # Rows are ticked for a delete; a click on an Open cell opens its prediction.
        on_select=partial(_clicked, key, public_ids),
        selection_mode=["multi-row", "single-cell"],
        hide_index=True,
        # The whole page, and room for a sideways scrollbar on a phone: paging is the one way.
        height=(len(frame) + 1) * ROW_HEIGHT + 20,
        row_height=ROW_HEIGHT,
        column_order=[c for c in frame.columns if c != "id"],
        column_config={
            "link": st.column_config.LinkColumn(
                "Open",
                display_text="Open",
                width="small",
                help="Opens this prediction on its own, with a link to copy.",
            ),
            "picture": columns.PICTURE_COLUMN,
            "looked": st.column_config.ImageColumn(
                "Where it looked",
                width="small",
                help="The top class's heat map, where one was made when the row was saved.",
            ),
            "time": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm"),
            "file": st.column_config.TextColumn("File"),
            "top-1": st.column_config.TextColumn("Top-1"),
            "confidence": columns.share_column("Confidence"),
            "model": st.column_config.TextColumn("Model"),
            "feedback": st.column_config.TextColumn(
                "Feedback", help="Right, wrong or not a usable photo, as rated; empty if not rated."
            ),
            "corrected": st.column_config.TextColumn("Corrected label"),
            "photo": st.column_config.TextColumn(
                "Photo kept",
                help="A copy of the photo large enough to teach a model from was kept.",
            ),
        },
    )
    return event.selection.rows


def _draw_actions(
    store: history.HistoryStore,
    filters: history.Filters,
    sort: str,
    count: int,
    total: int,
    selected: list[int],
) -> None:
    """Draw delete, teach, the downloads and clear; the clear question right under its
    button."""
    delete_col, teach_col, csv_col, json_col, clear_col = st.columns(5)
    delete_col.button(
        f"Delete {len(selected)} selected" if selected else "Delete selected",
        key="h_delete",
        disabled=not selected or store.read_only,
        on_click=delete_rows,
        args=(store, selected),
        icon=":material/delete:",
    )
    if teach_col.button(
        f"Teach from {len(selected)} selected" if selected else "Teach from selected",
        key="h_teach",
        disabled=not selected,
        icon=":material/school:",
        help="Open the Teach page with the selected predictions' photos: one class per "
        "corrected label (a prediction rated right joins its answer's class).",
    ):  # in the script, not a callback: it switches page
        teach_view.start_from_history(selected, None)
    exports = {"CSV": "text/csv", "JSON": "application/json"}
    link = permalink.full_links()
    for column, (kind, mime) in zip((csv_col, json_col), exports.items(), strict=True):
        column.download_button(
            f"Download {kind} ({count:,})",
            data=partial(_export, store, kind, filters, sort, link),  # built only when clicked
            disabled=count == 0,
            file_name=f"predictions.{kind.lower()}",
            mime=mime,
            key=f"h_{kind.lower()}",
            on_click="ignore",
            icon=":material/download:",
        )
    clear_col.button(
        "Clear history…",
        key="h_clear",
        disabled=store.read_only,
        on_click=st.session_state.__setitem__,
        args=("h_confirm_clear", True),
        icon=":material/delete_forever:",
    )
    # Asked once, right under its button; any other click dismisses it.
    if st.session_state.pop("h_confirm_clear", False) and not store.read_only:
        confirm_clear(store, total)


def confirm_clear(store: history.HistoryStore, total: int) -> None:
    """Ask before deleting every prediction."""
    with st.container(border=True):
        st.warning(f"Delete all {total:,} saved predictions? This cannot be undone.")
        yes, no, _ = st.columns([1, 1, 3])
        yes.button(
            "Yes, delete everything",
            key="h_clear_yes",
            type="primary",
            on_click=clear_all,
            args=(store,),
        )
        no.button("Cancel", key="h_clear_no")  # any rerun dismisses the question


def show_summary(store: history.HistoryStore, filters: history.Filters) -> None:
    """Draw the summary charts of the filtered predictions."""
    left, right = st.columns(2)
    per_day = history.stats.count_by_day(store, filters)
    if len(per_day) == 1:  # all on one day: hours say more
        per_day = history.stats.count_by_hour(store, filters)
    left.altair_chart(charts.predictions_over_time_chart(per_day), width="stretch")
    right.altair_chart(
        charts.frequent_labels_chart(history.stats.count_by_label(store, filters)), width="stretch"
    )
    left.altair_chart(
        charts.confidence_histogram(history.stats.count_by_confidence(store, filters)),
        width="stretch",
    )
    accuracy = history.stats.count_feedback_by_model(store, filters)
    if accuracy.empty:
        right.info("Rate predictions as right or wrong on the Classify page to see accuracy here.")
    else:
        accuracy["model"] = accuracy["model"].map(models.title_of)
        right.altair_chart(charts.accuracy_chart(accuracy), width="stretch")
    show_what_changed(store, filters)


def show_what_changed(store: history.HistoryStore, filters: history.Filters) -> None:
    """Draw how the filtered answers changed: their confidence and unsure share per day (per
    week beyond a month), and in one sentence what moved in the latest period against the
    one before more than chance explains."""
    st.subheader("What changed")
    # The Classify page's threshold, kept across pages; the app's default before it is set.
    unsure_below = float(st.session_state.get("kept_threshold", UNSURE_BELOW))
    changed = history.drift.what_changed(store, filters, unsure_below)
    sentence = changed.sentence(columns.plain)  # class names shown as written
    if sentence is not None:
        st.info(sentence, icon=":material/trending_up:")
    if changed.comparison is not None:
        st.caption(changed.comparison.details())
        _class_mix(changed.comparison)
    elif changed.note:
        st.caption(changed.note)
    if changed.periods.empty:
        return
    st.altair_chart(_drift_chart(changed), width="stretch")
    where = (
        "the confidence threshold set in the Classify page's sidebar"
        if "kept_threshold" in st.session_state
        else "the app's default confidence threshold (the Classify page's sidebar sets another)"
    )
    st.caption(f"Unsure: a top-1 answer below {unsure_below:.0%}, {where}. Days are in UTC"
               + (", weeks from Monday." if changed.unit == "week" else "."))  # fmt: skip


def _class_mix(comparison: history.drift.Comparison) -> None:
    """Draw the class mix of the period before and the latest one, side by side: each
    class's share of the answers (the classes taken together last)."""
    names = [*comparison.classes]
    if comparison.others:
        names.append(f"{comparison.others:,} other classes")
    before, latest = (np.asarray(row, dtype=float) for row in comparison.table)
    when = "%d %b %Y"
    frame = pd.DataFrame(
        {
            "class": names,  # a text column: a class someone named is shown as written
            "before": before / max(before.sum(), 1),
            "latest": latest / max(latest.sum(), 1),
        }
    )
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "class": st.column_config.TextColumn("Class"),
            "before": st.column_config.ProgressColumn(
                comparison.before.start.strftime(when),
                format="percent",
                min_value=0.0,
                max_value=1.0,
            ),
            "latest": st.column_config.ProgressColumn(
                comparison.latest.start.strftime(when),
                format="percent",
                min_value=0.0,
                max_value=1.0,
            ),
        },
    )


def _drift_chart(changed: history.drift.Drift) -> alt.Chart:
    """Draw the median confidence and the unsure share of each period as two lines."""
    frame = changed.periods
    confidence, unsure = "Median confidence", f"Unsure (below {changed.unsure_below:.0%})"
    lines = pd.concat(
        [
            frame.assign(measure=confidence, value=frame["median_confidence"]),
            frame.assign(measure=unsure, value=frame["unsure_share"]),
        ],
        ignore_index=True,
    )[["period", "measure", "value", "answers"]]
    when = "Week of" if changed.unit == "week" else "Day"
    return (
        alt.Chart(lines, title=f"Confidence per {changed.unit}")
        .mark_line(point=True)
        .encode(
            x=alt.X("utcyearmonthdate(period):T", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("value:Q", title=None, scale=alt.Scale(domain=[0, 1]), axis=charts.SHARE_AXIS),
            color=alt.Color(
                "measure:N",
                title=None,
                scale=alt.Scale(
                    domain=[confidence, unsure], range=[charts.HIGHLIGHT, charts.MUTED]
                ),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=[
                alt.Tooltip("utcyearmonthdate(period):T", title=when),
                alt.Tooltip("measure:N", title="Measure"),
                alt.Tooltip("value:Q", title="Share", format=".0%"),
                alt.Tooltip("answers:Q", title="Answers"),
            ],
        )
    )
