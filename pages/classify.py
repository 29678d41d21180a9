"""Classify: drop photos or take one, and see what the network says is in them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from classifier import charts, images, labels, zoo
from classifier.predict import Prediction
from pages import common

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "examples"
EXAMPLES = {"Cat": "cat.jpg", "Coffee": "coffee.jpg", "Rocket": "rocket.jpg"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """One picture to classify: a stable id for this session, its name, bytes and digest."""

    key: str
    name: str
    data: bytes

    @property
    def digest(self) -> str:
        """The sha256 of the bytes, hashed once per upload rather than on every rerun."""
        known = st.session_state.setdefault("digests", {})
        if self.key not in known:
            known[self.key] = images.content_digest(self.data)
        return known[self.key]


def _inputs_changed() -> None:
    st.session_state["showing_kept"] = False


def collect_uploads() -> list[Upload]:
    """Draw the inputs (uploader, camera, examples) and return the pictures they hold.

    Streamlit empties the uploader when the person visits another page. The last
    pictures are kept in the session and shown again on return, until the person
    drops, takes or picks new ones.
    """
    if "uploads" not in st.session_state and st.session_state.get("kept_pictures"):
        st.session_state["showing_kept"] = True  # back from another page
    files = st.file_uploader(
        "Drop photos here",
        type=list(images.ACCEPTED_EXTENSIONS),
        accept_multiple_files=True,
        key="uploads",
        on_change=_inputs_changed,
        help="PNG, JPEG, WebP, BMP, GIF, TIFF or HEIC, several at once if you like.",
    )
    camera_col, example_col = st.columns([1, 2], vertical_alignment="bottom")
    use_camera = camera_col.toggle("Use camera", key="use_camera")
    example = example_col.pills(
        "Or try an example", list(EXAMPLES), key="example", on_change=_inputs_changed
    )
    shot = (
        st.camera_input("Take a photo", key="camera", on_change=_inputs_changed)
        if use_camera
        else None
    )

    uploads = [Upload(f.file_id, f.name, f.getvalue()) for f in files or []]
    if shot is not None:
        uploads.append(Upload(shot.file_id, "camera photo", shot.getvalue()))
    if example:
        file_name = EXAMPLES[example]
        uploads.append(
            Upload(f"example-{file_name}", file_name, (EXAMPLES_DIR / file_name).read_bytes())
        )
    if st.session_state.get("showing_kept"):
        caption, clear = st.columns([4, 1], vertical_alignment="center")
        caption.caption("Your last pictures, kept while you were on another page.")
        clear.button("Clear them", key="clear_kept", on_click=_forget_kept)
        return st.session_state["kept_pictures"]
    st.session_state["kept_pictures"] = uploads
    return uploads


def _forget_kept() -> None:
    st.session_state["showing_kept"] = False
    st.session_state["kept_pictures"] = []


def run(upload: Upload, model: str) -> Prediction | str:
    """Classify one upload; return the prediction or a message for the person."""
    try:
        return common.predict(upload.digest, model, upload.data)
    except images.ImageError as exc:
        return str(exc)
    except zoo.ModelError as exc:
        return str(exc)
    except Exception:  # the page shows a message, the server log keeps the traceback
        log.exception("Classifying %r failed", upload.name)
        return "Something went wrong while classifying this picture. Please try another one."


def human_size(size: int) -> str:
    """Return a byte count as people read it."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024**2:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024**2:.1f} MB"


def save(upload: Upload, prediction: Prediction, settings: common.Settings) -> int | None:
    """Save a shown prediction to the history once per upload and model; return its row id."""
    saved = st.session_state.setdefault("saved_rows", {})
    key = (upload.key, prediction.model)
    if key in saved or not settings.save:
        return saved.get(key)
    record = prediction.to_record(
        upload.name, upload.digest, settings.top_k, with_thumbnail=settings.save_thumbnails
    )
    try:
        saved[key] = common.store().add(record)
    except Exception as exc:  # the prediction stands; the person learns it was not kept
        log.exception("Saving to history failed")
        st.warning(
            "This prediction could not be saved to the history "
            f"({type(exc).__name__}; the server log has the details)."
        )
        return None
    return saved[key]


def store_feedback(row_id: int) -> None:
    """Write the thumbs, and with a thumbs-down the corrected label, to the history row."""
    verdict = {1: "correct", 0: "wrong"}.get(st.session_state.get(f"feedback_{row_id}"))
    if verdict != "wrong":
        st.session_state.pop(f"correction_{row_id}", None)  # a correction only goes with 👎
    corrected = st.session_state.get(f"correction_{row_id}")
    try:
        stored = common.store().set_feedback(row_id, verdict, corrected)
    except Exception:  # the person keeps classifying; the server log has the details
        log.exception("Saving feedback failed")
        stored = True
        st.toast("Your feedback could not be saved to the history.", icon=":material/error:")
    if not stored:
        st.toast(
            "This prediction was deleted from the history, so your feedback was not kept.",
            icon=":material/info:",
        )


def feedback(row_id: int) -> None:
    """Ask whether the prediction was right and, if not, which class it is."""
    st.caption("Was this right?")
    thumbs = st.feedback(
        "thumbs", key=f"feedback_{row_id}", on_change=store_feedback, args=(row_id,)
    )
    if thumbs == 0:
        st.selectbox(
            "What is it really?",
            labels.display_labels(),
            index=None,
            placeholder="Type to search the 1,000 classes…",
            key=f"correction_{row_id}",
            on_change=store_feedback,
            args=(row_id,),
        )


def show(upload: Upload, prediction: Prediction, settings: common.Settings) -> None:
    """Render one prediction: picture, headline, chart, table, details, feedback."""
    top = prediction.top(settings.top_k)
    picture, result = st.columns([2, 3], gap="large")
    with picture:
        st.image(prediction.image, width="stretch")
        st.text(
            f"{upload.name}\n{human_size(len(upload.data))} · "
            f"{prediction.width}×{prediction.height} {prediction.image_format}"
        )
    with result:
        st.subheader(f"{top[0].label} · {top[0].probability:.0%}")
        if top[0].probability < settings.threshold:
            st.info(
                f"The model is unsure: its best guess is only {top[0].probability:.0%} likely. "
                "It only knows the 1,000 ImageNet classes, so what is in this photo may not "
                "be one of them."
            )
        frame = charts.top_k_frame(top)
        st.altair_chart(charts.probability_chart(frame), width="stretch")
        st.dataframe(
            frame[["label", "probability"]],
            hide_index=True,
            column_config={
                "label": st.column_config.TextColumn("Class"),
                "probability": common.share_column("Probability"),
            },
        )
        st.caption(
            f"{prediction.model_title} on {prediction.backend} · "
            f"{prediction.timings.inference_ms:.1f} ms inference · "
            f"{zoo.get_spec(prediction.model).weights_origin}"
        )
        row_id = save(upload, prediction, settings)
        if row_id is not None:
            feedback(row_id)
    with st.expander("What the model saw"):
        size = prediction.model_input.shape[0]
        st.image(
            prediction.model_input,
            caption=f"The {size}×{size} centre crop the network classified",
            width=size,
        )


def show_many(results: list[tuple[Upload, Prediction | str]], settings: common.Settings) -> None:
    """Render a summary table of several pictures, then one expander per picture."""
    rows = [
        {
            "#": number,
            "picture": common.small_thumbnail_uri(upload.digest, outcome),
            "file": upload.name,
            "top-1": outcome.top1.label,
            "confidence": outcome.top1.probability,
        }
        for number, (upload, outcome) in enumerate(results, start=1)
        if isinstance(outcome, Prediction)
    ]
    if rows:
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            column_config={
                "#": st.column_config.NumberColumn("#", width="small"),
                "picture": common.PICTURE_COLUMN,
                "file": st.column_config.TextColumn("File"),
                "top-1": st.column_config.TextColumn("Top-1"),
                "confidence": common.share_column("Confidence"),
            },
        )
    for number, (upload, outcome) in enumerate(results, start=1):
        if isinstance(outcome, Prediction):
            with st.expander(f"Picture {number}: {outcome.top1.label}"):
                show(upload, outcome, settings)
        else:
            with st.container(border=True):
                st.text(f"Picture {number}: {upload.name}")
                st.error(outcome)


settings = common.settings_sidebar()
st.title("What's in this photo?")
st.caption(
    "Drop a photo and a pretrained ImageNet network names what it sees "
    "among 1,000 everyday classes."
)
uploads = collect_uploads()
if not uploads:
    st.info("Drop one or more photos above, take one with the camera, or pick an example.")
    st.stop()

loaded = common.load_model(settings.model)
if loaded is None:
    st.stop()
if loaded.notice:
    st.warning(loaded.notice)

if len(uploads) == 1:
    outcome = run(uploads[0], settings.model)
    if isinstance(outcome, Prediction):
        show(uploads[0], outcome, settings)
    else:
        st.text(uploads[0].name)
        st.error(outcome)
else:
    progress = st.progress(0.0, text=f"Classifying {len(uploads)} pictures…")
    results = []
    for done, upload in enumerate(uploads, start=1):
        results.append((upload, run(upload, settings.model)))
        progress.progress(done / len(uploads), text=f"Classified {done} of {len(uploads)}")
    progress.empty()
    show_many(results, settings)
