"""Classifying uploads for the page, saving each answer once, and the person's feedback on it.

Callbacks here take row ids only: a callback that closed over a page's variables would
keep every upload's bytes alive in Streamlit's widget registry.
"""

from __future__ import annotations

import dataclasses
import logging

import streamlit as st

from classifier import history, images, labels, models
from classifier.predict import Prediction
from ui import explain_view, resources
from ui.columns import plain
from ui.sidebar import Choices
from ui.uploads import Upload

log = logging.getLogger(__name__)


def classify_upload(upload: Upload, loaded: models.LoadedModel) -> Prediction | str:
    """Classify one upload; return the prediction or a message for the person."""
    try:
        return resources.predict(upload.digest, loaded, upload.data)
    except (images.ImageError, models.ModelError) as exc:
        return str(exc)
    except Exception:  # the page shows a message, the server log keeps the traceback
        log.exception("Classifying %r failed", upload.name)
        return "Something went wrong while classifying this picture. Please try another one."


def classify_uploads(uploads: list[Upload], loaded: models.LoadedModel) -> list[Prediction | str]:
    """Classify every upload in turn, with a progress bar when there are several."""
    if len(uploads) == 1:
        return [classify_upload(uploads[0], loaded)]
    progress = st.progress(0.0, text=f"Classifying {len(uploads)} pictures…")
    outcomes = []
    for done, upload in enumerate(uploads, start=1):
        outcomes.append(classify_upload(upload, loaded))
        progress.progress(done / len(uploads), text=f"Classified {done} of {len(uploads)}")
    progress.empty()
    return outcomes


def save_once(upload: Upload, prediction: Prediction, choices: Choices) -> int | None:
    """Save a prediction to the history once per upload and model; return its row id."""
    saved = st.session_state.setdefault("saved_rows", {})
    key = (upload.key, prediction.model)
    if key in saved or not choices.save:
        return saved.get(key)
    record = history.NewRecord.from_prediction(
        prediction,
        upload.name,
        upload.digest,
        choices.top_k,
        with_thumbnail=choices.save_thumbnails,
    )
    if choices.save_thumbnails and choices.loaded is not None:
        overlay = explain_view.overlay_thumbnail(upload.digest, prediction, choices.loaded)
        record = dataclasses.replace(record, overlay=overlay)
    try:
        store = resources.store()
        if store is None:  # not signed in to a private history, or history off: not kept
            return None
        saved[key] = store.add(record)
    except Exception as exc:  # the prediction stands; the person learns it was not kept
        log.exception("Saving to history failed")  # the engine hides SQL parameters
        st.warning(
            f"This prediction could not be saved to the history. {history.public_message(exc)}"
        )
        return None
    return saved[key]


def store_feedback(row_id: int, class_names: tuple[str, ...] | None = None) -> None:
    """Write the thumbs, and with a thumbs-down the corrected label, to the history row."""
    verdict = {1: "correct", 0: "wrong"}.get(st.session_state.get(f"feedback_{row_id}"))
    if verdict != "wrong":
        st.session_state.pop(f"correction_{row_id}", None)  # a correction only goes with 👎
    corrected = st.session_state.get(f"correction_{row_id}")
    try:
        store = resources.store()
        if store is None:  # signed out meanwhile
            raise history.HistoryError("There is no history to keep feedback in.")
        stored = store.set_feedback(row_id, verdict, corrected)
    except Exception:  # the person keeps classifying; the server log has the details
        log.exception("Saving feedback failed")
        st.session_state.pop(f"feedback_saved_{row_id}", None)
        st.toast("Your feedback could not be saved to the history.", icon=":material/error:")
        return
    if not stored:
        st.toast(
            "This prediction was deleted from the history, so your feedback was not kept.",
            icon=":material/info:",
        )
        return
    st.session_state[f"feedback_saved_{row_id}"] = saved_sentence(verdict, corrected, class_names)


def saved_sentence(
    verdict: str | None, corrected: str | None, class_names: tuple[str, ...] | None = None
) -> str:
    """Say what the history now holds about a prediction (class_names: the model's, or None
    for ImageNet's), as Markdown for a caption: the correction shows as typed."""
    if verdict is None:
        return "Saved: not rated."
    if verdict == "correct":
        return "Saved: right."
    if not corrected:
        return "Saved: wrong."
    names = labels.labels() if class_names is None else class_names
    if corrected in names:
        return f"Saved: wrong, it is {plain(corrected)}."
    return (
        f"Saved: wrong, it is “{plain(corrected)}” (your own name, not one of the model's "
        f"{len(names):,} classes)."
    )


def ask_feedback(row_id: int, class_names: tuple[str, ...] | None = None) -> None:
    """Ask whether the prediction was right and, if not, what it is; say when it is saved.

    Args:
        class_names: The model's classes, offered as corrections; None for ImageNet's.
    """
    names = labels.labels() if class_names is None else class_names
    st.caption("Was this right?")
    thumbs = st.feedback(
        "thumbs", key=f"feedback_{row_id}", on_change=store_feedback, args=(row_id, class_names)
    )
    if thumbs == 0:
        st.selectbox(
            "What is it really?",
            names,
            index=None,
            placeholder="Pick a class, or type any name if none fits…",
            accept_new_options=True,
            help=f"The model only knows its {len(names):,} classes; a name you type is kept "
            "as your own, apart from them.",
            key=f"correction_{row_id}",
            on_change=store_feedback,
            args=(row_id, class_names),
        )
    if saved := st.session_state.get(f"feedback_saved_{row_id}"):
        st.caption(saved)
