"""The Review page's parts: its filters, one prediction at a time, and the actions on it.

Every action saves at once, and the next prediction in the queue shows. The rating and
the correction go through the same widgets and callbacks as on the Classify page and a
prediction's own page (`ui.saving`), so what is saved, and what those pages then show,
is the same. Callbacks take row ids and class names only, never a record's pictures.
"""

from __future__ import annotations

import streamlit as st

from classifier import history, models
from classifier.history import review
from classifier.predict import UNSURE_BELOW
from ui import history_view, permalink, pictures, results, saving, teach_view
from ui.columns import plain
from ui.state import kept

# Each filter's key and the value showing the whole queue.
FILTER_DEFAULTS = {"r_models": [], "r_from": "", "r_to": "", "r_label": None}
SKIPPED = "r_skipped"  # the ids skipped on this visit
SHOWN = "r_shown"  # the id on screen: it stays there until an action moves on
CORRECTING = "r_correcting"  # the id whose correction box is open
THRESHOLD_HELP = (
    "The Classify page's confidence threshold: a saved answer below it is unsure and "
    "waits here for a second look. Changing it here changes it there too."
)


def filter_sidebar(store: history.HistoryStore) -> tuple[history.Filters, float]:
    """Draw the threshold, model and date filters in the sidebar; return them."""
    used = store.models_used()
    if picked := st.session_state.get("r_models"):  # a model whose last row was deleted goes
        st.session_state["r_models"] = [name for name in picked if name in used]
    with st.sidebar:
        st.header("Filters")
        threshold = st.slider(
            "Unsure below",
            0.0,
            1.0,
            step=0.05,
            format="percent",
            help=THRESHOLD_HELP,
            **kept("threshold", UNSURE_BELOW),
        )
        picked_models = st.multiselect(
            "Models",
            sorted(used, key=lambda name: models.title_of(name).casefold()),
            key="r_models",
            format_func=models.title_of,
            placeholder="All models",
        )
        since, until = st.columns(2)
        first = history_view.typed_date(since, "From (UTC)", "r_from")
        last = history_view.typed_date(until, "To (UTC)", "r_to")
    start, end = history_view.day_range(first, last)
    return history.Filters(models=tuple(picked_models), start=start, end=end), threshold


def class_picker(
    store: history.HistoryStore, queue: review.Queue, filters: history.Filters, unsure_below: float
) -> str | None:
    """Draw the class filter (the top-1 labels in the queue, with their counts; past the
    predictions read at a time, counted in the database) in the sidebar; return the class
    picked, or None for every class."""
    counts = dict(
        review.label_counts(store, filters, unsure_below) if queue.more else queue.labels()
    )
    picked = st.session_state.get("r_label")
    if picked is not None and picked not in counts:
        counts[picked] = 0  # all of it reviewed: it stays picked, and the page says so
    with st.sidebar:
        st.selectbox(
            "Class",
            [None, *counts],
            format_func=lambda label: (
                "Every class" if label is None else f"{label} ({counts.get(label, 0):,})"
            ),
            key="r_label",
            help="Only the predictions whose top-1 answer is this class.",
        )
        st.button("Reset filters", key="r_reset", on_click=reset_filters, icon=":material/undo:")
    return st.session_state.get("r_label")


def reset_filters() -> None:
    """Put the model, date and class filters back to the whole queue.

    Each is set to its default rather than forgotten: a widget whose key is dropped keeps
    its old value in the browser, which the next click sends back."""
    for key, default in FILTER_DEFAULTS.items():
        st.session_state[key] = default


def filtered(filters: history.Filters, label: str | None) -> bool:
    """Whether any filter narrows the queue."""
    return bool(filters.models or filters.start or filters.end or label is not None)


def skipped() -> list[int]:
    """Return the ids skipped on this visit."""
    return st.session_state.setdefault(SKIPPED, [])


def skip(row_id: int) -> None:
    """Move on from a prediction for this visit, saving nothing."""
    skipped().append(row_id)
    _close_correction(row_id)


def bring_back_skipped() -> None:
    """Put the predictions skipped on this visit back in the queue."""
    st.session_state[SKIPPED] = []


def mark_right(row_id: int, class_names: tuple[str, ...] | None) -> None:
    """Save the prediction as right (as a thumbs-up does on the Classify page)."""
    st.session_state[f"feedback_{row_id}"] = 1
    saving.store_feedback(row_id, class_names, review=True)
    st.session_state.pop(CORRECTING, None)


def mark_unusable(row_id: int) -> None:
    """Save the photo as not usable (blurred, empty, the wrong picture): it leaves the queue,
    counted neither right nor wrong; a prediction's own page then says so."""
    if saving.keep_feedback(row_id, "unusable", review=True):
        saving.forget_feedback(row_id)  # started anew from what is saved
    st.session_state.pop(CORRECTING, None)


def open_correction(
    row_id: int, feedback: str | None, corrected: str | None, class_names: tuple[str, ...] | None
) -> None:
    """Open the correction box: the Classify page's, after a thumbs-down."""
    saving.start_feedback(row_id, feedback, corrected, class_names)  # what is saved, if any
    st.session_state[f"feedback_{row_id}"] = 0
    st.session_state[CORRECTING] = row_id


def _close_correction(row_id: int) -> None:
    """Close the correction box; its thumbs-down goes too unless it was saved."""
    if st.session_state.get(CORRECTING) == row_id:
        st.session_state.pop(CORRECTING, None)
        if f"feedback_saved_{row_id}" not in st.session_state:
            st.session_state.pop(f"feedback_{row_id}", None)


def say_what_was_saved(store: history.HistoryStore, queue: review.Queue) -> None:
    """Once the prediction shown before has left the queue, say what it was saved as."""
    shown = st.session_state.get(SHOWN)
    if shown is None or queue.find(shown) is not None:
        return
    st.session_state.pop(SHOWN, None)
    st.session_state.pop(CORRECTING, None)
    record = store.get(shown)
    if record is None or record.feedback is None:  # deleted meanwhile, or only filtered out
        return
    if record.feedback == "wrong" and record.corrected_label is None:
        return  # still to correct: it left the queue through a filter
    taken = st.session_state.pop(f"feedback_taken_{shown}", False)  # theirs was refused
    if taken or not st.session_state.pop(f"reviewed_here_{shown}", False):  # not this visit's
        kept = saving.saved_sentence(
            record.feedback, record.corrected_label, permalink.class_names_of(record)
        ).removeprefix("Saved: ")
        st.info(
            f"{plain(record.file_name)} was reviewed meanwhile, elsewhere: {kept}",
            icon=":material/group:",
        )
        return
    sentence = st.session_state.get(f"feedback_saved_{shown}") or saving.saved_sentence(
        record.feedback, record.corrected_label, permalink.class_names_of(record)
    )
    st.success(f"{plain(record.file_name)}: {sentence}", icon=":material/check_circle:")


def reasons(entry: review.Entry, unsure_below: float) -> list[str]:
    """Say why a prediction is in the queue, as Markdown lines (names shown as written)."""
    said = []
    if entry.unsure:
        said.append(
            f":material/help: Below {unsure_below:.0%} sure: its best guess is "
            f"{entry.top1_probability:.0%}."
        )
    if entry.rated_wrong:
        said.append(":material/thumb_down: Rated wrong, with no correction yet.")
    if entry.disagreed:
        answers = [(entry.model, entry.top1_label), *entry.others]
        who = "Two models disagree" if len(answers) == 2 else f"{len(answers)} models disagree"
        says = ", ".join(
            f"{plain(models.title_of(model))} says {plain(label)}" for model, label in answers
        )
        said.append(f":material/call_split: {who}: {says}.")
    return said


def left_line(left: int, skipped_here: int, more: bool = False) -> None:
    """Say how many predictions are left to review (and how many were skipped)."""
    line = f"**{left:,} left**"
    if more:
        line += f" · and more: the {review.MAX_READ:,} least sure are read at a time"
    if skipped_here:
        line += f" · {skipped_here:,} skipped on this visit"
    st.markdown(line)


def show_empty(
    filters: history.Filters, filters_on: bool, skipped_here: int, unsure_below: float
) -> None:
    """Say that there is nothing to review, and where to go instead."""
    if skipped_here:
        st.info(
            f"Nothing to review: you skipped the last {skipped_here:,} on this visit.",
            icon=":material/done_all:",
        )
        st.button(
            "Review the skipped ones", key="r_unskip", on_click=bring_back_skipped,
            icon=":material/replay:",
        )  # fmt: skip
    elif filters_on:
        st.info(
            "Nothing to review: no saved prediction that these filters select needs a second look.",
            icon=":material/done_all:",
        )
        st.button(
            "Reset filters", key="r_reset_empty", on_click=reset_filters, icon=":material/undo:"
        )
    else:
        st.info(
            f"Nothing to review: no saved prediction is below {unsure_below:.0%} sure, rated "
            "wrong without a correction, or answered differently by two models.",
            icon=":material/done_all:",
        )
    st.page_link("pages/classify.py", label="Go to Classify", icon=":material/image_search:")
    teach_button(filters)


def teach_button(filters: history.Filters) -> None:
    """Draw "Teach a model from these": the Teach page opens with one class per corrected
    label and its photos (of the one model the filters pick, if they pick one, and from
    their first day on)."""
    if st.button(
        "Teach a model from these",
        key="r_teach",
        icon=":material/school:",
        help="Open the Teach page with one class per corrected label and those photos, "
        "ready to train.",
    ):  # in the script, not a callback: it switches page
        model = filters.models[0] if len(filters.models) == 1 else None
        teach_view.start_from_history(None, model, filters.start)


def show_entry(
    store: history.HistoryStore,
    filters: history.Filters,
    entry: review.Entry,
    unsure_below: float,
    left: int,
    skipped_here: int,
    more: bool = False,
) -> bool:
    """Draw one prediction of the queue with its actions; False if it is gone meanwhile."""
    record = store.get(entry.id)
    if record is None:  # deleted since the queue was read
        return False
    st.session_state[SHOWN] = entry.id
    class_names = permalink.class_names_of(record)
    left_line(left, skipped_here, more)
    # The picture, then the answer and the actions: on a phone, where the columns stack,
    # the buttons come right after the picture; the details come last.
    picture, answer = st.columns([1, 1], gap="medium")
    with picture:  # the photo kept to teach from, larger than the thumbnail, where there is one
        shown = (store.photo(record.id) if record.has_photo else None) or record.thumbnail
        if shown is not None:
            st.image(pictures.inline(shown), width="stretch")
        else:
            st.caption("No picture was kept with this prediction.")
    with answer:
        results.show_headline(record.top_k)
        for line in reasons(entry, unsure_below):
            st.markdown(line)
        st.caption(
            f"{plain(record.file_name)} · {plain(models.title_of(record.model))} · "
            f"the top two are {entry.margin:.0%} apart"
        )
        actions(store, record, class_names)
        if st.session_state.get(CORRECTING) == record.id:
            with st.container(border=True, key="r_correction"):
                saving.ask_feedback(record.id, record.top1_label, class_names, review=True)
        teach_button(filters)
        results.show_top_k(record.top_k)
        st.text(
            f"{record.file_name}\n{record.width}×{record.height} {record.image_format} · "
            f"saved {record.created_at:%Y-%m-%d %H:%M} UTC"
        )
        st.page_link(
            "pages/history.py",
            label="Open its page in History",
            icon=":material/open_in_new:",
            query_params={permalink.PARAMETER: record.public_id},
        )
    return True


def actions(
    store: history.HistoryStore, record: history.Record, class_names: tuple[str, ...] | None
) -> None:
    """Draw Right, Correct it, Skip and Not a usable photo; each saves (or skips) at once
    and moves on."""
    read_only = store.read_only
    with st.container(horizontal=True, key="r_actions"):
        st.button(
            "Right",
            key="r_right",
            type="primary",
            icon=":material/thumb_up:",
            help="The model's answer is right: saved as a thumbs-up. (Shortcut: 1)",
            shortcut="1",
            disabled=read_only,
            on_click=mark_right,
            args=(record.id, class_names),
        )
        st.button(
            "Correct it",
            key="r_correct",
            icon=":material/edit:",
            help="Pick one of the model's classes, or type a name. (Shortcut: 2)",
            shortcut="2",
            disabled=read_only or st.session_state.get(CORRECTING) == record.id,
            on_click=open_correction,
            args=(record.id, record.feedback, record.corrected_label, class_names),
        )
        st.button(
            "Skip",
            key="r_skip",
            icon=":material/skip_next:",
            help="Look at it later: it comes back on your next visit. (Shortcut: 3)",
            shortcut="3",
            on_click=skip,
            args=(record.id,),
        )
        st.button(
            "Not a usable photo",
            key="r_unusable",
            icon=":material/hide_image:",
            help="Blurred, empty or the wrong picture: saved as not usable, so it leaves the "
            "queue, counted neither right nor wrong. (Shortcut: 4)",
            shortcut="4",
            disabled=read_only,
            on_click=mark_unusable,
            args=(record.id,),
        )
