"""Drawing answers: one picture in full, or a summary table and a section per picture."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from classifier import charts, images
from classifier.labels import TopClass
from classifier.predict import Prediction
from ui import explain_view, pictures
from ui.columns import PICTURE_COLUMN, plain, share_column, thumbnail_uri
from ui.saving import ask_feedback, save_once
from ui.sidebar import Choices
from ui.uploads import Upload

ADDED_ORIGIN = "Added model: "


def provenance(prediction: Prediction) -> str:
    """Say which model answered, on what and how fast; a reused answer says when it was made."""
    made = f"{plain(prediction.model_title)} on {prediction.backend}"
    speed = f"{prediction.timings.inference_ms:.1f} ms inference"
    if not prediction.cached:
        return f"{made} · {speed}"
    return f"Cached answer from {prediction.computed_at:%H:%M:%S} UTC ({made}, {speed})"


def weights_origin(prediction: Prediction) -> str:
    """Say where the model's weights come from, as Markdown: an added model's origin names
    the file (or the zip member) someone added, which shows as written."""
    origin = prediction.weights_origin
    if origin.startswith(ADDED_ORIGIN):  # classifier.models.upload's "Added model: <its file>"
        return ADDED_ORIGIN + plain(origin.removeprefix(ADDED_ORIGIN))
    return plain(origin)


def human_size(size: int) -> str:
    """Return a byte count as people read it."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024**2:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024**2:.1f} MB"


@st.cache_data(show_spinner=False, max_entries=256)
def _small_thumbnail_uri(content_digest: str, _prediction: Prediction) -> str | None:
    """Return the results table's thumbnail of a classified picture, made once per picture."""
    return thumbnail_uri(images.make_thumbnail(_prediction.image, 96))


def show_headline(top: Sequence[TopClass]) -> None:
    """Draw the answer's headline: the top class and its share ("espresso · 95%")."""
    st.subheader(f"{plain(top[0].label)} · {top[0].probability:.0%}")


def show_chart(frame: pd.DataFrame) -> None:
    """Draw the top classes (`charts.top_k_frame`) as a bar chart, the top one highlighted."""
    st.vega_lite_chart(spec=charts.probability_spec(frame), width="stretch")


def show_top_k(top: Sequence[TopClass]) -> None:
    """Draw the top classes as a bar chart and, under it, a table of their exact shares.

    A plain table, not Streamlit's data grid: ten rows at most need no sorting or
    scrolling, and the grid costs the browser about 60 ms of drawing on every answer
    and every top-k change."""
    frame = charts.top_k_frame(top)
    show_chart(frame)
    st.table(
        pd.DataFrame(
            {
                "Class": [plain(label) for label in frame["label"]],
                "Probability": [f"{share:.1%}" for share in frame["probability"]],
            }
        ),
        hide_index=True,
    )


def show_prediction(upload: Upload, prediction: Prediction, choices: Choices) -> None:
    """Draw one prediction: headline, picture, chart, table, details, feedback, and the
    switch that shows where the model looked.

    The headline is sent first, then the picture beside it, then the chart and table
    under the headline. It is saved to the history (once) only after all of them: the
    browser shows them while the thumbnail and overlay are made and written."""
    top = prediction.top(choices.top_k)
    picture, result = st.columns([2, 3], gap="large")
    with result:  # first: the answer is what the person waits for
        show_headline(top)
        if top[0].probability < choices.threshold:
            known = (
                "the 1,000 ImageNet classes"
                if prediction.class_names is None
                else f"its own {prediction.num_classes:,} classes"
            )
            st.info(
                f"The model is unsure: its best guess is only {top[0].probability:.0%} likely. "
                f"It only knows {known}, so what is in this photo may not be one of them."
            )
    with picture:
        st.image(pictures.inline(prediction.image), width="stretch")
        st.text(
            f"{upload.name}\n{human_size(len(upload.data))} · "
            f"{prediction.width}×{prediction.height} {prediction.image_format}"
        )
    with result:
        show_top_k(top)
        st.caption(f"{provenance(prediction)} · {weights_origin(prediction)}")
        row_id = save_once(upload, prediction, choices)
        if row_id is not None:
            ask_feedback(row_id, prediction.class_names)
    if choices.loaded is not None:
        explain_view.where_it_looked(upload.key, upload.digest, prediction, top, choices.loaded)
    with st.expander("What the model saw"):
        size = prediction.model_input.shape[0]
        whole, crop = st.columns(2)
        whole.image(
            pictures.inline(
                images.outline_crop(prediction.image, crop_fraction=prediction.crop_fraction)
            ),
            caption="Your picture, with the square the network looked at",
            width="stretch",
        )
        crop.image(
            pictures.inline(prediction.model_input),
            caption=f"The {size}×{size} centre crop the network classified",
            width=size,
        )


SUMMARY_ROWS_WITHOUT_SCROLL = 50
ROW_HEIGHT = 35  # Streamlit's data grid row, in pixels


def summary_frame(
    uploads: list[Upload], outcomes: list[Prediction | str], threshold: float
) -> pd.DataFrame:
    """Return one row per picture: its answer, or the reason it has none."""
    rows = []
    for number, (upload, outcome) in enumerate(zip(uploads, outcomes, strict=True), start=1):
        row = {"#": number, "picture": None, "file": upload.name, "top-1": "", "confidence": None}
        if isinstance(outcome, Prediction):
            top1 = outcome.top1
            row["picture"] = _small_thumbnail_uri(upload.digest, outcome)
            row["top-1"], row["confidence"] = top1.label, top1.probability
            row["note"] = "unsure" if top1.probability < threshold else ""
        else:
            row["note"] = outcome  # why it failed
        rows.append(row)
    return pd.DataFrame(rows)


def show_many(
    uploads: list[Upload],
    outcomes: list[Prediction | str],
    choices: Choices,
) -> None:
    """Draw a summary table of several pictures, then one section per picture."""
    frame = summary_frame(uploads, outcomes, choices.threshold)
    shown_rows = min(len(frame), SUMMARY_ROWS_WITHOUT_SCROLL)
    st.dataframe(
        frame,
        hide_index=True,
        height=(shown_rows + 1) * ROW_HEIGHT + 20,  # every row up to 50 (and a sideways bar)
        column_config={
            "#": st.column_config.NumberColumn("#", width="small"),
            "picture": PICTURE_COLUMN,
            "file": st.column_config.TextColumn("File"),
            "top-1": st.column_config.TextColumn("Top-1"),
            "confidence": share_column("Confidence"),
            "note": st.column_config.TextColumn(
                "Note", help="Unsure: below the confidence threshold. Otherwise, why it failed."
            ),
        },
    )
    sections = zip(uploads, outcomes, strict=True)
    for number, (upload, outcome) in enumerate(sections, start=1):
        if isinstance(outcome, Prediction):
            top1 = outcome.top1
            title = f"{number}. {plain(upload.name)}: {plain(top1.label)} · {top1.probability:.0%}"
            with st.expander(title):
                show_prediction(upload, outcome, choices)
        else:
            with st.container(border=True):
                st.text(f"{number}. {upload.name}")
                st.error(outcome)
