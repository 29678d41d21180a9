"""Drawing answers: one picture in full, or a summary table and a section per picture."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from classifier import charts, images
from classifier.history.store import safe_csv
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


# A stand-in answer drawn out of sight while the page waits for a photo (`warm_up`).
WARM_UP_KEY = "answer_warm_up"
_STAND_IN = (TopClass("a", 0, 0.6), TopClass("b", 1, 0.3), TopClass("c", 2, 0.1))
_STAND_IN_PICTURE = (  # a 1x1 PNG
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
    "/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
)


def warm_up() -> None:
    """Draw a stand-in answer (chart, table, picture) out of sight and out of the
    accessibility tree, while the page waits for a photo.

    The browser loads the code for Streamlit's charts, tables and pictures when it first
    meets one: about 0.2 s of fetching and compiling on a 2-core machine, which the first
    answer of every new browser session used to wait for between its headline and its
    chart. Drawn here, it is done while the person picks a photo; the stand-in goes when
    the first answer comes."""
    st.html(
        f"<style>.st-key-{WARM_UP_KEY} {{ position: fixed; left: -10000px; top: 0; "
        "width: 480px; visibility: hidden; pointer-events: none; }</style>"
    )
    with st.container(key=WARM_UP_KEY):
        st.image(_STAND_IN_PICTURE, width=1)
        show_top_k(_STAND_IN)


def show_unsure(prediction: Prediction, top: Sequence[TopClass], threshold: float) -> None:
    """Say that the model is unsure, when its best guess is below the threshold."""
    if top[0].probability >= threshold:
        return
    known = (
        "the 1,000 ImageNet classes"
        if prediction.class_names is None
        else f"its own {prediction.num_classes:,} classes"
    )
    st.info(
        f"The model is unsure: its best guess is only {top[0].probability:.0%} likely. "
        f"It only knows {known}, so what is in this photo may not be one of them."
    )


def show_picture(upload: Upload, prediction: Prediction) -> None:
    """Draw the picture, and under it its file name, size, dimensions and format."""
    st.image(pictures.inline(prediction.image), width="stretch")
    st.text(
        f"{upload.name}\n{images.size_text(len(upload.data), round_up=True)} · "
        f"{prediction.width}×{prediction.height} {prediction.image_format}"
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
        show_unsure(prediction, top, choices.threshold)
    with picture:
        show_picture(upload, prediction)
    with result:
        show_top_k(top)
        show_details(prediction)
        save_and_ask(upload, prediction, choices)
    show_how_it_looked(upload, prediction, top, choices)


def show_details(prediction: Prediction) -> None:
    """Say which model answered, how fast, and where its weights come from."""
    st.caption(f"{provenance(prediction)} · {weights_origin(prediction)}")


def save_and_ask(upload: Upload, prediction: Prediction, choices: Choices) -> None:
    """Save the answer to the history (once) and, when it was saved, ask if it was right."""
    row_id = save_once(upload, prediction, choices)
    if row_id is not None:
        ask_feedback(row_id, prediction.top1.label, prediction.class_names)


def show_how_it_looked(
    upload: Upload, prediction: Prediction, top: Sequence[TopClass], choices: Choices
) -> None:
    """Draw the "Where it looked" switch and "What the model saw" (the crop it classified)."""
    if choices.loaded is not None:
        explain_view.where_it_looked(upload, prediction, top, choices.loaded)
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


def agreement(first: Prediction, second: Prediction, choices: Choices) -> str:
    """Say whether the two models agree on the top class, as Markdown (names as written)."""
    one, two = first.top1, second.top1
    if one.label == two.label:
        said = f"Both models agree: {plain(one.label)}."
    else:
        said = (
            f"The models disagree: {plain(choices.title_of(choices.model))} says "
            f"{plain(one.label)} ({one.probability:.0%}), "
            f"{plain(choices.title_of(choices.compare or ''))} says "
            f"{plain(two.label)} ({two.probability:.0%})."
        )
    if first.model == second.model:  # a model without weights here is answered by another
        said += f" On this server both are answered by {plain(first.model_title)}."
    return said


def show_comparison(
    upload: Upload,
    first: Prediction,
    second: Prediction | str,
    choices: Choices,
    say_what_is_saved: bool = True,
) -> None:
    """Draw one picture's answers from two models side by side, and whether they agree.

    Only the first model's answer is saved to the history and asked about (which it says,
    unless the summary above said it for several pictures)."""
    picture, verdict = st.columns([1, 3], gap="large", vertical_alignment="center")
    with picture:
        show_picture(upload, first)
    with verdict:
        if isinstance(second, Prediction):
            if first.top1.label == second.top1.label:
                st.success(agreement(first, second, choices), icon=":material/check_circle:")
            else:
                st.warning(agreement(first, second, choices), icon=":material/compare_arrows:")
        if say_what_is_saved and choices.save and not upload.example:
            st.caption(
                f"Only {plain(choices.title_of(choices.model))}'s answer is saved to the history."
            )
    one, two = st.columns(2, gap="large")
    for column, name, outcome in ((one, choices.model, first), (two, choices.compare, second)):
        with column:
            st.markdown(f"**{plain(choices.title_of(name or ''))}**")
            if isinstance(outcome, str):
                st.error(outcome)
                continue
            top = outcome.top(choices.top_k)
            show_headline(top)
            show_unsure(outcome, top, choices.threshold)
            show_top_k(top)
            show_details(outcome)
    with one:
        save_and_ask(upload, first, choices)
    show_how_it_looked(upload, first, first.top(choices.top_k), choices)


def show_one(
    upload: Upload, outcome: Prediction | str, other: Prediction | str | None, choices: Choices
) -> None:
    """Draw one picture's answer (beside a second model's, when there is one) or its error."""
    if isinstance(outcome, str):
        st.text(upload.name)
        st.error(outcome)
    elif other is None:
        show_prediction(upload, outcome, choices)
    else:
        show_comparison(upload, outcome, other, choices)


SUMMARY_ROWS_WITHOUT_SCROLL = 50
ROW_HEIGHT = 35  # Streamlit's data grid row, in pixels
NONE_SHOWN = {
    "Unsure": "No photo is below the confidence threshold.",
    "Failed": "Every photo has an answer.",
    "Disagree": "The models agree on every photo.",
}


@dataclass(frozen=True, eq=False)  # one per picture: told apart by identity
class Answered:
    """One of several pictures: its number, the first model's outcome and the second's."""

    number: int
    upload: Upload
    outcome: Prediction | str  # the answer, or why there is none
    other: Prediction | str | None = None  # the second model's, when comparing

    def unsure(self, threshold: float) -> bool:
        return note_of(self.outcome, threshold) == "unsure"

    @property
    def failed(self) -> bool:
        return isinstance(self.outcome, str)

    @property
    def agree(self) -> bool | None:
        """Whether both models name the same top class; None when either has no answer."""
        if not isinstance(self.outcome, Prediction) or not isinstance(self.other, Prediction):
            return None
        return self.outcome.top1.label == self.other.top1.label

    def note(self, threshold: float) -> str:
        return note_of(self.outcome, threshold)


def note_of(outcome: Prediction | str, threshold: float) -> str:
    """Say why there is no answer, or that the answer is unsure (below the threshold)."""
    if isinstance(outcome, str):
        return outcome
    return "unsure" if outcome.top1.probability < threshold else ""


def answered(
    uploads: list[Upload],
    outcomes: list[Prediction | str],
    others: list[Prediction | str] | None = None,
) -> list[Answered]:
    """Pair each picture with its outcomes, numbered from 1."""
    seconds = others if others is not None else [None] * len(uploads)
    return [
        Answered(number, upload, outcome, other)
        for number, (upload, outcome, other) in enumerate(
            zip(uploads, outcomes, seconds, strict=True), start=1
        )
    ]


def summary_frame(entries: list[Answered], threshold: float) -> pd.DataFrame:
    """Return one row per picture: its answer, or the first sentence of the reason it has none
    (its section says it in full).

    A failed file has no picture: its cell stays empty (an empty text, never None)."""
    comparing = any(entry.other is not None for entry in entries)
    rows = []
    for entry in entries:
        outcome = entry.outcome
        row: dict[str, object] = {"#": entry.number, "picture": "", "file": entry.upload.name}
        if isinstance(outcome, Prediction):
            row["picture"] = _small_thumbnail_uri(entry.upload.digest, outcome)
            row["top-1"], row["confidence"] = outcome.top1.label, outcome.top1.probability
        else:
            row["top-1"], row["confidence"] = "", float("nan")
        if comparing:
            other = entry.other
            good = isinstance(other, Prediction)
            row["agree"] = {True: "yes", False: "no", None: ""}[entry.agree]
            row["other top-1"] = other.top1.label if good else ""
            row["other confidence"] = other.top1.probability if good else float("nan")
        row["note"] = first_sentence(entry.note(threshold))  # in full in its section
        rows.append(row)
    return pd.DataFrame(rows)


def first_sentence(text: str) -> str:
    """Return a text's first sentence: what fits a table cell of a reason given in full below."""
    first, _, rest = text.partition(". ")
    return f"{first}." if rest else text


def export_rows(entries: list[Answered], choices: Choices) -> list[dict[str, object]]:
    """Return each picture's answers as the downloads hold them: file, model, top-1,
    confidence, the top-k, and the note (why it failed, or "unsure"); when comparing,
    the second model's too, and whether they agree."""
    rows = []
    for entry in entries:
        row = {"file": entry.upload.name, **_answer(entry.outcome, choices.model, choices)}
        if entry.other is not None:
            second = _answer(entry.other, choices.compare or "", choices)
            row.update({f"compared {key}": value for key, value in second.items()})
            row["agree"] = entry.agree
        rows.append(row)
    return rows


def _answer(outcome: Prediction | str, model: str, choices: Choices) -> dict[str, object]:
    """Return one model's answer for the downloads (nothing but the note when it failed)."""
    answer: dict[str, object] = {"model": model, "top-1": None, "confidence": None, "top-k": []}
    if isinstance(outcome, Prediction):
        answer["top-1"] = outcome.top1.label
        answer["confidence"] = round(outcome.top1.probability, 6)
        answer["top-k"] = [
            {"label": c.label, "probability": round(c.probability, 6)}
            for c in outcome.top(choices.top_k)
        ]
    answer["note"] = note_of(outcome, choices.threshold)
    return answer


def results_json(rows: list[dict[str, object]]) -> str:
    """Return the downloads' rows as JSON: a list, one object per picture."""
    return json.dumps(rows, indent=2, ensure_ascii=False)


def results_csv(rows: list[dict[str, object]]) -> bytes:
    """Return the downloads' rows as CSV: the top-k in one cell ("tabby cat 45.1%; ...")."""
    flat = [
        {
            key: "; ".join(f"{c['label']} {c['probability']:.1%}" for c in value)
            if key.endswith("top-k")
            else value
            for key, value in row.items()
        }
        for row in rows
    ]
    fields = list(flat[0]) if flat else ["file"]
    return safe_csv(flat, fields)


def show_downloads(entries: list[Answered], choices: Choices) -> None:
    """Offer every picture's answers (whatever is shown) as CSV and JSON, made on click."""
    rows = export_rows(entries, choices)  # small: no picture is kept alive by the buttons
    buttons = st.container(horizontal=True)
    for kind, make, mime in (("csv", results_csv, "text/csv"),
                             ("json", results_json, "application/json")):  # fmt: skip
        buttons.download_button(
            f"Download {kind.upper()}",
            data=lambda make=make: make(rows),
            file_name=f"classified.{kind}",
            mime=mime,
            on_click="ignore",
            icon=":material/download:",
            key=f"results_{kind}",
            help="Every photo's answers, whatever the filter shows.",
        )


def section_title(entry: Answered, answer: Prediction, threshold: float) -> str:
    """Return a picture's section title: number, file, top class and share, and marks."""
    top1 = answer.top1
    title = f"{entry.number}. {plain(entry.upload.name)}: {plain(top1.label)}"
    title += f" · {top1.probability:.0%}"
    if entry.unsure(threshold):
        title += " · unsure"
    if entry.agree is False:
        title += " · models disagree"
    return title


def show_many(entries: list[Answered], choices: Choices) -> None:
    """Draw a summary table of several pictures, a filter, the downloads, and one section
    per picture (all open at once, if asked)."""
    comparing = choices.compare is not None and any(e.other is not None for e in entries)
    kinds = {
        "All": entries,
        "Unsure": [e for e in entries if e.unsure(choices.threshold)],
        "Failed": [e for e in entries if e.failed],
    }
    if comparing:
        kinds["Disagree"] = [e for e in entries if e.agree is False]
    which, opened = st.columns([3, 1], vertical_alignment="bottom")
    kind = (
        which.segmented_control(
            "Show",
            list(kinds),
            format_func=lambda name: f"{name} ({len(kinds[name])})",
            default="All",
            required=True,
            key="results_shown",
        )
        or "All"
    )
    open_all = opened.toggle("Open every section", key="results_open_all")
    shown = kinds[kind]
    if comparing:
        st.caption(
            f"Top-1 and confidence: {plain(choices.title_of(choices.model))}. "
            f"Other: {plain(choices.title_of(choices.compare or ''))}. "
            "Only the first model's answers are saved to the history."
        )
    if shown:
        show_summary(summary_frame(shown, choices.threshold), comparing)
    else:
        st.info(NONE_SHOWN[kind])
    show_downloads(entries, choices)
    for entry in shown:
        if isinstance(entry.outcome, str):
            with st.container(border=True):
                st.text(f"{entry.number}. {entry.upload.name}")
                st.error(entry.outcome)
            continue
        with st.expander(section_title(entry, entry.outcome, choices.threshold), expanded=open_all):
            if entry.other is None:
                show_prediction(entry.upload, entry.outcome, choices)
            else:
                show_comparison(entry.upload, entry.outcome, entry.other, choices, False)
    # An answer the filter hides is saved all the same: what is kept never depends on the view.
    for entry in entries:
        if entry not in shown and isinstance(entry.outcome, Prediction):
            save_once(entry.upload, entry.outcome, choices)


def show_summary(frame: pd.DataFrame, comparing: bool) -> None:
    """Draw the summary table: every row up to 50, the notes in full."""
    shown_rows = min(len(frame), SUMMARY_ROWS_WITHOUT_SCROLL)
    columns = {
        "#": st.column_config.NumberColumn("#", width="small"),
        "picture": PICTURE_COLUMN,
        "file": st.column_config.TextColumn("File"),
        "top-1": st.column_config.TextColumn("Top-1"),
        "confidence": share_column("Confidence"),
    }
    if comparing:
        columns |= {
            "agree": st.column_config.TextColumn("Agree", width="small"),
            "other top-1": st.column_config.TextColumn("Other top-1"),
            "other confidence": share_column("Other confidence"),
        }
    columns["note"] = st.column_config.TextColumn(
        "Note",
        width="large",
        help="Unsure: below the confidence threshold. Otherwise, why it failed (in full in "
        "its section below).",
    )
    st.dataframe(
        frame,
        hide_index=True,
        height=(shown_rows + 1) * ROW_HEIGHT + 20,  # every row up to 50 (and a sideways bar)
        column_config=columns,
        placeholder="",  # a failed file's empty cells, not "None"
    )
