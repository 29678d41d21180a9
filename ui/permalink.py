"""One saved prediction opened by its link (`/history?prediction=ID`): picture, chart, feedback.

The ID is the row's random public id. The store scoped to the visitor looks it up, so
another person's prediction, a deleted one and a made-up ID all give the same "not
found": a link tells nobody whether a prediction exists.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from classifier import history, models
from ui import pictures, resources, results, saving
from ui.columns import plain

PARAMETER = "prediction"
NOT_FOUND = (
    "Prediction not found. Its link may be mistyped, the prediction may have been deleted, "
    "or it is in another person's history."
)


def link_to(public_id: str) -> str:
    """Return the relative link that opens a prediction on the History page."""
    return f"?{urlencode({PARAMETER: public_id})}"


def full_links() -> Callable[[str], str]:
    """Return what makes a prediction's absolute link, from the address this page was opened
    at (read now: a download built later, when clicked, uses it)."""
    current = urlsplit(st.context.url or "")

    def full_link(public_id: str) -> str:
        return urlunsplit(
            (current.scheme, current.netloc, current.path, link_to(public_id)[1:], "")
        )

    return full_link


def full_link(public_id: str) -> str:
    """Return the absolute link, from the address this page was opened at."""
    return full_links()(public_id)


def requested() -> str | None:
    """Return the public id the page's address asks for, or None."""
    value = st.query_params.get(PARAMETER)
    return value if value else None


def _back_to_list() -> None:
    st.query_params.pop(PARAMETER, None)


def class_names_of(record: history.Record) -> tuple[str, ...] | None:
    """Return the classes a correction may name: None for ImageNet's, else the model's own
    among the visitor's models (or, if it is not there, the classes the prediction lists)."""
    if record.model in models.MODELS:
        return None
    named = tuple(entry.label for entry in record.top_k)
    scope = resources.model_scope()
    try:
        mine = models.all_models(scope) if scope is not None else []
    except Exception:  # unreadable: offer what the prediction named
        return named
    found = (m for m in mine if m.name == record.model and models.could_have_made(m, record))
    return next((m.class_names for m in found), named)


def show(store: history.HistoryStore, public_id: str, mode: str) -> None:
    """Draw the prediction a link names, or "not found".

    Args:
        mode: the history mode ("private" or "shared"), which says who else can open it.
    """
    st.button("All predictions", icon=":material/arrow_back:", on_click=_back_to_list)
    record = store.get_public(public_id)
    if record is None:
        st.error(NOT_FOUND, icon=":material/search_off:")
        return
    picture, result = st.columns([2, 3], gap="large")
    with picture:
        if record.thumbnail is not None:
            st.image(pictures.inline(record.thumbnail), width="stretch")
        else:
            st.caption("No picture was kept with this prediction.")
        if record.overlay is not None:
            st.image(pictures.inline(record.overlay), caption="Where it looked", width="stretch")
        st.text(
            f"{record.file_name}\n{record.width}×{record.height} {record.image_format} · "
            f"saved {record.created_at:%Y-%m-%d %H:%M} UTC"
        )
    with result:
        top = record.top_k
        results.show_headline(top)
        results.show_top_k(top)
        title = plain(models.title_of(record.model))
        st.caption(f"{title} · {record.inference_ms:.1f} ms inference")
        class_names = class_names_of(record)
        saving.start_feedback(record.id, record.feedback, record.corrected_label, class_names)
        saving.ask_feedback(record.id, record.top1_label, class_names)
    who = (
        "anyone who opens this app"
        if mode == "shared"
        else "only the person who saved it (and admins), signed in,"
    )
    st.caption(f"Link to this prediction; {who} can open it:")
    st.code(full_link(record.public_id), language=None)
