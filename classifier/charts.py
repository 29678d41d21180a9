"""Altair charts as pure functions of tidy data frames."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from classifier.predict import TopClass

HIGHLIGHT = "#E4572E"
MUTED = "#9AA5B1"


def top_k_frame(top_k: Sequence[TopClass]) -> pd.DataFrame:
    """Return one row per ranked class: rank, label, class index, probability.

    Two ImageNet classes share a short name ("crane", "maillot"); such labels get
    their class index so the chart keeps them apart.
    """
    names = [c.label for c in top_k]
    return pd.DataFrame(
        {
            "rank": range(1, len(top_k) + 1),
            "label": [
                f"{c.label} (#{c.index})" if names.count(c.label) > 1 else c.label for c in top_k
            ],
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
                axis=alt.Axis(format="%"),
            ),
            y=alt.Y(
                "label:N", title=None, sort=alt.EncodingSortField("probability", order="descending")
            ),
            color=alt.condition(alt.datum.rank == 1, alt.value(HIGHLIGHT), alt.value(MUTED)),
            tooltip=[
                alt.Tooltip("label:N", title="Class"),
                alt.Tooltip("probability:Q", title="Probability", format=".2%"),
            ],
        )
        .properties(height=alt.Step(28))
    )
