"""Classifying uploads for the page, saving each answer once, and the person's feedback on it.

Callbacks here take row ids only: a callback that closed over a page's variables would
keep every upload's bytes alive in Streamlit's widget registry.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence

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


EXAMPLE_NOT_SAVED = "Examples are not saved to your history."


def save_once(upload: Upload, prediction: Prediction, choices: Choices) -> int | None:
    """Save a prediction to the history once per upload and model; return its row id.

    An example photo is never saved (every visit would add the same row), and says so.
    """
    if upload.example:
        if choices.save:
            st.caption(EXAMPLE_NOT_SAVED)
        return None
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
    if choices.save_photos:
        record = dataclasses.replace(record, photo=photo_to_keep(upload, prediction, choices))
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


def photo_to_keep(upload: Upload, prediction: Prediction, choices: Choices) -> bytes | None:
    """Return the reduced copy of an upload to keep with its row, to teach from: its shorter
    side at least `images.photo_side` of the model's input. None (and a sentence) if it
    cannot be made; the prediction is saved with its thumbnail all the same."""
    loaded = choices.loaded
    side = images.PHOTO_MIN_SIDE
    if loaded is not None:
        side = images.photo_side(loaded.spec.input_size, loaded.spec.crop_fraction)
    size = (prediction.width, prediction.height)
    try:
        return images.photo_copy(upload.data, prediction.image, size, side)
    except Exception:  # the row is still worth keeping; the server log has the details
        log.exception("Keeping a copy of %r failed", upload.name)
        st.caption("This photo could not be kept to teach from; its thumbnail is saved.")
        return None


def matching_classes(text: str, names: Sequence[str], limit: int = 8) -> list[str]:
    """Return the classes whose name holds a typed text (any case), the likeliest first: the
    same name, then one with it as a whole word ("crane bird", "construction crane"), one
    starting with it, one with a word starting with it, and one holding it anywhere."""
    typed = text.strip().casefold()
    if not typed:
        return []

    def rank(name: str) -> tuple[int, int, int, str]:
        folded = name.casefold()
        words = re.split(r"[^\w]+", folded)
        if folded == typed:
            tier = 0
        elif typed in words or re.search(rf"(?<!\w){re.escape(typed)}(?!\w)", folded):
            tier = 1
        elif folded.startswith(typed):
            tier = 2
        elif any(word.startswith(typed) for word in words):
            tier = 3
        else:
            tier = 4
        return tier, folded.find(typed), len(name), folded

    found = [name for name in names if typed in name.casefold()]
    return sorted(found, key=rank)[:limit]


def _unresolved(row_id: int, names: Sequence[str], answer: str | None) -> list[str]:
    """Return the classes to offer for a name typed in the correction box that is none of
    them; empty when there is nothing to ask (a class picked, the name kept as typed, or
    no class but the model's own answer holds it)."""
    typed = st.session_state.get(f"correction_{row_id}")
    kept = st.session_state.get(f"correction_kept_{row_id}")
    if typed is None or typed in names or typed == kept:
        return []
    return [name for name in matching_classes(typed, names) if name != answer]


def store_feedback(
    row_id: int,
    class_names: tuple[str, ...] | None = None,
    answer: str | None = None,
    review: bool = False,
) -> None:
    """Write the thumbs, and with a thumbs-down the corrected label, to the history row.

    A typed name that some classes hold ("crane") is kept only once the person chose
    between those classes and their own name (`_choose_correction`). A name that is the
    model's own answer is no correction: it is not kept, and the box says why.
    """
    verdict = {1: "correct", 0: "wrong"}.get(st.session_state.get(f"feedback_{row_id}"))
    if verdict != "wrong":
        st.session_state.pop(f"correction_{row_id}", None)  # a correction only goes with 👎
    corrected = st.session_state.get(f"correction_{row_id}")
    names = labels.labels() if class_names is None else class_names
    if corrected is not None and len(corrected.strip()) > history.MAX_LABEL_LENGTH:
        # Not kept, and the correction saved before (if any) stays, in the box too (set,
        # not forgotten: as below).
        corrected = _saved_correction(row_id)
        st.session_state[f"correction_{row_id}"] = corrected
        st.session_state[f"correction_too_long_{row_id}"] = True
    if corrected is not None and labels.names_the_answer(corrected, answer, names):
        # The box is set to nothing, not forgotten: a forgotten key is not sent back to the
        # browser, which would keep showing the name (and send it again).
        st.session_state[f"correction_{row_id}"] = None
        for key in ("correction_kept", "correction_choice"):
            st.session_state.pop(f"{key}_{row_id}", None)
        st.session_state[f"correction_is_answer_{row_id}"] = corrected
        corrected = None
    if _unresolved(row_id, names, answer):
        corrected = None  # asked below the box first
        st.session_state.pop(f"correction_choice_{row_id}", None)  # a new question
    keep_feedback(row_id, verdict, corrected, class_names, review=review)


def _saved_correction(row_id: int) -> str | None:
    """Return the correction saved for a row (None if none, or if it cannot be read)."""
    try:
        store = resources.store()
        record = None if store is None else store.get(row_id)
    except Exception:
        log.exception("Reading a saved correction failed")
        return None
    return None if record is None else record.corrected_label


def keep_feedback(
    row_id: int,
    verdict: str | None,
    corrected: str | None = None,
    class_names: tuple[str, ...] | None = None,
    review: bool = False,
) -> bool:
    """Write a verdict (one of `history.FEEDBACK_VALUES`, or None) and a correction to the
    history row and remember what was saved; return False, after saying why, if it was not.

    `review`: the Review page's actions, written only while no one has reviewed the row
    (two people reviewing at once never write over each other)."""
    try:
        store = resources.store()
        if store is None:  # signed out meanwhile
            raise history.HistoryError("There is no history to keep feedback in.")
        stored = store.set_feedback(row_id, verdict, corrected, only_unreviewed=review)
        if review and not stored and (kept := store.get(row_id)) is not None:
            _reviewed_meanwhile(row_id, kept, class_names)
            return False
    except Exception:  # the person keeps classifying; the server log has the details
        log.exception("Saving feedback failed")
        st.session_state.pop(f"feedback_saved_{row_id}", None)
        st.toast("Your feedback could not be saved to the history.", icon=":material/error:")
        return False
    if stored and review:  # what the Review page says once it moves on (`reviewed_here`)
        st.session_state[f"reviewed_here_{row_id}"] = True
    if not stored:
        st.toast(
            "This prediction was deleted from the history, so your feedback was not kept.",
            icon=":material/info:",
        )
        return False
    st.session_state[f"feedback_saved_{row_id}"] = saved_sentence(verdict, corrected, class_names)
    return True


def forget_feedback(row_id: int) -> None:
    """Forget a row's feedback widgets, to start them anew from what is saved."""
    for key in ("feedback", "correction", "correction_kept", "correction_choice"):
        st.session_state.pop(f"{key}_{row_id}", None)


def _reviewed_meanwhile(
    row_id: int, kept: history.Record, class_names: tuple[str, ...] | None
) -> None:
    """Say that a row was reviewed elsewhere before this person's review was saved, and set
    the row's widgets to what is kept."""
    forget_feedback(row_id)
    st.session_state.pop(f"feedback_saved_{row_id}", None)
    start_feedback(row_id, kept.feedback, kept.corrected_label, class_names)
    st.session_state[f"feedback_taken_{row_id}"] = True  # the Review page says what is kept
    st.toast(
        "This prediction was reviewed meanwhile (by someone else, or in another tab); that "
        "review is kept, not this one.",
        icon=":material/group:",
    )


def _choose_correction(
    row_id: int, class_names: tuple[str, ...] | None, answer: str | None, review: bool = False
) -> None:
    """Keep the class picked for a typed name, or the name as typed."""
    choice = st.session_state.get(f"correction_choice_{row_id}")
    if choice is None:
        return
    st.session_state[f"correction_{row_id}"] = choice
    st.session_state[f"correction_kept_{row_id}"] = choice
    store_feedback(row_id, class_names, answer, review)


def saved_sentence(
    verdict: str | None, corrected: str | None, class_names: tuple[str, ...] | None = None
) -> str:
    """Say what the history now holds about a prediction (class_names: the model's, or None
    for ImageNet's), as Markdown for a caption: the correction shows as typed."""
    if verdict is None:
        return "Saved: not rated."
    if verdict == "correct":
        return "Saved: right."
    if verdict == "unusable":
        return "Saved: not a usable photo."
    if not corrected:
        return "Saved: wrong."
    names = labels.labels() if class_names is None else class_names
    if corrected in names:
        return f"Saved: wrong, it is {plain(corrected)}."
    return (
        f"Saved: wrong, it is “{plain(corrected)}” (your own name, not one of the model's "
        f"{len(names):,} classes)."
    )


def start_feedback(
    row_id: int, verdict: str | None, corrected: str | None, class_names: tuple[str, ...] | None
) -> None:
    """Start the feedback widgets from what the history holds, once per visit (a photo said
    to be not usable, on the Review page, leaves the thumbs unset and says so)."""
    if f"feedback_{row_id}" in st.session_state or verdict is None:
        return
    if verdict != "unusable":
        st.session_state[f"feedback_{row_id}"] = 1 if verdict == "correct" else 0
    if corrected is not None:
        st.session_state[f"correction_{row_id}"] = corrected
        st.session_state[f"correction_kept_{row_id}"] = corrected
    st.session_state[f"feedback_saved_{row_id}"] = saved_sentence(verdict, corrected, class_names)


def ask_feedback(
    row_id: int, answer: str, class_names: tuple[str, ...] | None = None, review: bool = False
) -> None:
    """Ask whether the prediction was right and, if not, what it is; say when it is saved.

    Args:
        answer: The model's answer (its top class), which is not offered as a correction.
        class_names: The model's classes, offered as corrections; None for ImageNet's.
        review: On the Review page: saved only while no one else has reviewed it.
    """
    names = labels.labels() if class_names is None else class_names
    callback = {"on_change": store_feedback, "args": (row_id, class_names, answer, review)}
    st.caption("Was this right?")
    thumbs = st.feedback("thumbs", key=f"feedback_{row_id}", **callback)
    if thumbs is not None:  # the chosen thumb alone is faint: say it in words too
        right = thumbs == 1
        st.badge(
            "You said it is right" if right else "You said it is wrong",
            icon=":material/thumb_up:" if right else ":material/thumb_down:",
            color="green" if right else "red",
        )
    if thumbs == 0:
        typed = st.session_state.get(f"correction_{row_id}")
        offered = [name for name in names if name != answer]
        st.selectbox(
            "What is it really?",
            # A name of their own stays in the box (also as saved, on a permalink).
            offered if typed is None or typed in offered else [*offered, typed],
            index=None,
            placeholder="Pick a class, or type any name if none fits…",
            accept_new_options=True,
            filter_mode="contains",
            help=f"The model only knows its {len(names):,} classes; a name you type is kept "
            "as your own, apart from them.",
            key=f"correction_{row_id}",
            **callback,
        )
        if st.session_state.pop(f"correction_too_long_{row_id}", None):
            st.caption(
                f"That name is longer than {history.MAX_LABEL_LENGTH} characters: type a "
                "shorter one."
            )
        if same := st.session_state.pop(f"correction_is_answer_{row_id}", None):
            st.caption(
                f"{plain(same)} is the model's own answer: pick what the photo really shows, "
                "or say the model was right."
            )
        if matches := _unresolved(row_id, names, answer):
            st.pills(
                "Did you mean one of the model's classes?",
                [*matches, typed],
                format_func=lambda option: plain(
                    option if option != typed else f"“{option}”, as I typed it"
                ),
                key=f"correction_choice_{row_id}",
                on_change=_choose_correction,
                args=(row_id, class_names, answer, review),
            )
    if saved := st.session_state.get(f"feedback_saved_{row_id}"):
        st.caption(saved)
