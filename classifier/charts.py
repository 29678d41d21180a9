"""Altair charts as pure functions of tidy data frames."""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

from classifier.labels import TopClass

HIGHLIGHT = "#E4572E"
MUTED = "#9AA5B1"
COUNT_AXIS = alt.Axis(format="d", tickMinStep=1)  # counts are whole numbers
WHOLE_LABELS = alt.Axis(labelLimit=0)  # Vega-Lite cuts labels at 180 px by default
# 0% to 100% in steps of 20: a wide chart would otherwise tick every 5% ("95%100%").
SHARE_AXIS = alt.Axis(format="%", tickCount=5, labelOverlap=True, labelSeparation=6)


def top_k_frame(top_k: Sequence[TopClass]) -> pd.DataFrame:
    """Return one row per ranked class: rank, label, class index, probability."""
    return pd.DataFrame(
        {
            "rank": range(1, len(top_k) + 1),
            "label": [c.label for c in top_k],
            "index": [c.index for c in top_k],
            "probability": [c.probability for c in top_k],
        }
    )


def probability_chart(frame: pd.DataFrame) -> alt.Chart:
    """Draw the top-k as horizontal bars, best first, the top-1 bar highlighted."""
    return (
        alt.Chart(frame)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X(
                "probability:Q",
                title="Probability",
                scale=alt.Scale(domain=[0, 1]),
                axis=SHARE_AXIS,
            ),
            y=alt.Y(
                "label:N",
                title=None,
                sort=alt.EncodingSortField("probability", order="descending"),
                axis=WHOLE_LABELS,
            ),
            color=alt.condition(alt.datum.rank == 1, alt.value(HIGHLIGHT), alt.value(MUTED)),
            tooltip=[
                alt.Tooltip("label:N", title="Class"),
                alt.Tooltip("probability:Q", title="Probability", format=".2%"),
            ],
        )
        .properties(height=alt.Step(28))
    )


@functools.cache
def _probability_spec_template() -> dict[str, Any]:
    """The top-k chart as Altair writes (and validates) it, without data: once a process."""
    spec = probability_chart(top_k_frame([])).to_dict()
    spec.pop("datasets", None)
    # Altair's default theme adds a 300x300 view; st.altair_chart turns that theme off,
    # and this chart sets no config of its own.
    spec.pop("config", None)
    spec["data"] = {"name": "top_k"}
    return spec


def probability_spec(frame: pd.DataFrame) -> dict[str, Any]:
    """Return `probability_chart(frame)` as a Vega-Lite spec, for `st.vega_lite_chart`.

    Altair validates every chart against the Vega-Lite schema as it is built and
    written out: about 30 ms for this small chart, on every answer and every top-k
    change. The spec is the same each time but for the data, so Altair writes it once
    and each answer only puts its rows in.
    """
    spec = copy.deepcopy(_probability_spec_template())
    spec["datasets"] = {"top_k": frame}
    return spec


def predictions_over_time_chart(frame: pd.DataFrame) -> alt.Chart:
    """Draw predictions per day (`day`, `count`), or per hour (`hour`, `count`) within one day."""
    if "hour" in frame.columns:
        title, x, when = "Predictions per hour (UTC)", "hoursminutes(hour):O", ("hour", "Hour")
    else:
        title, x, when = "Predictions per day", "yearmonthdate(day):O", ("day", "Day")
    return (
        alt.Chart(frame, title=title)
        .mark_bar(color=HIGHLIGHT)
        .encode(
            x=alt.X(x, title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("count:Q", title="Predictions", axis=COUNT_AXIS),
            tooltip=[
                alt.Tooltip(f"{when[0]}:T", title=when[1]),
                alt.Tooltip("count:Q", title="Predictions"),
            ],
        )
    )


def frequent_labels_chart(frame: pd.DataFrame) -> alt.Chart:
    """Draw the most frequent top-1 labels from a frame with `label` and `count`."""
    return (
        alt.Chart(frame, title="Most frequent labels")
        .mark_bar(color=HIGHLIGHT)
        .encode(
            x=alt.X("count:Q", title="Predictions", axis=COUNT_AXIS),
            y=alt.Y("label:N", title=None, sort="-x", axis=WHOLE_LABELS),
            tooltip=[
                alt.Tooltip("label:N", title="Label"),
                alt.Tooltip("count:Q", title="Predictions"),
            ],
        )
    )


def confidence_histogram(frame: pd.DataFrame) -> alt.Chart:
    """Draw how confident the top-1 answers were, from `bin_start`, `bin_end`, `count`."""
    return (
        alt.Chart(frame, title="Confidence of the top-1 answer")
        .mark_bar(color=HIGHLIGHT)
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title="Confidence", axis=alt.Axis(format="%")),
            x2="bin_end:Q",
            y=alt.Y("count:Q", title="Predictions", axis=COUNT_AXIS),
            tooltip=[
                alt.Tooltip("bin_start:Q", title="From", format=".0%"),
                alt.Tooltip("bin_end:Q", title="To", format=".0%"),
                alt.Tooltip("count:Q", title="Predictions"),
            ],
        )
    )


def accuracy_chart(frame: pd.DataFrame) -> alt.Chart:
    """Draw each model's share of correct answers among rated ones, its counts in its label.

    From a frame with `model`, `share_correct`, `correct` and `rated`; a row reads
    "EfficientNet-Lite0 (1 of 2 rated correct)".
    """
    rows = zip(frame["model"], frame["correct"], frame["rated"], strict=True)
    frame = frame.assign(row=[f"{m} ({c} of {r} rated correct)" for m, c, r in rows])
    return (
        alt.Chart(frame, title="Accuracy from your feedback")
        .mark_bar(color=HIGHLIGHT)
        .encode(
            x=alt.X(
                "share_correct:Q",
                title="Rated correct",
                scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%"),
            ),
            y=alt.Y("row:N", title=None, axis=WHOLE_LABELS),
            tooltip=[
                alt.Tooltip("model:N", title="Model"),
                alt.Tooltip("share_correct:Q", title="Correct", format=".0%"),
                alt.Tooltip("correct:Q", title="Rated correct"),
                alt.Tooltip("rated:Q", title="Rated"),
            ],
        )
    )


def confusion_frame(counts: Sequence[Sequence[int]], class_names: Sequence[str]) -> pd.DataFrame:
    """Return one row per (true class, predicted class) cell: counts and the row's share."""
    rows = []
    for i, truth in enumerate(class_names):
        total = sum(counts[i]) or 1
        for j, guess in enumerate(class_names):
            n = int(counts[i][j])
            rows.append({"true": truth, "predicted": guess, "count": n, "share": n / total})
    return pd.DataFrame(rows)


def confusion_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """Draw a confusion matrix: true classes down, predicted across, each cell's count in it.

    Right answers are on the diagonal; the colour is the share of the true class's photos.
    """
    order = list(dict.fromkeys(frame["true"]))
    base = alt.Chart(frame).encode(
        x=alt.X("predicted:N", title="Taken for", sort=order, axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("true:N", title="Class", sort=order, axis=WHOLE_LABELS),
    )
    cells = base.mark_rect(cornerRadius=2).encode(
        color=alt.Color(
            "share:Q",
            title="Share of the class",
            scale=alt.Scale(domain=[0, 1], scheme="blues"),
            legend=alt.Legend(format="%"),
        ),
        tooltip=[
            alt.Tooltip("true:N", title="Class"),
            alt.Tooltip("predicted:N", title="Taken for"),
            alt.Tooltip("count:Q", title="Photos"),
            alt.Tooltip("share:Q", title="Share", format=".0%"),
        ],
    )
    labels = base.mark_text(fontSize=12).encode(
        text=alt.condition(alt.datum.count > 0, "count:Q", alt.value("")),
        color=alt.condition(alt.datum.share > 0.5, alt.value("white"), alt.value("black")),
    )
    side = max(36, min(64, 480 // max(1, len(order))))
    return (cells + labels).properties(width=alt.Step(side), height=alt.Step(side))
