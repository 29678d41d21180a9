"""Summary counts of the saved predictions, as pandas DataFrames for the History page's charts.

The only part of the history package that imports pandas. Each function takes
an open HistoryStore and the same Filters as `HistoryStore.find`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Select, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from classifier.history.records import NO_FILTERS, Filters
from classifier.history.store import HistoryStore
from classifier.history.tables import predictions


def count_by_day(store: HistoryStore, filters: Filters = NO_FILTERS) -> pd.DataFrame:
    """Count predictions per UTC calendar day, including days without any.

    Returns:
        Columns `day` (datetime64, midnight UTC, naive) and `count`.
    """
    return _count_over_time(store, filters, _utc_date(store, predictions.c.created_at), "day")


def count_by_hour(store: HistoryStore, filters: Filters = NO_FILTERS) -> pd.DataFrame:
    """Count predictions per UTC hour, including hours without any.

    Returns:
        Columns `hour` (datetime64, on the hour, UTC, naive) and `count`.
    """
    if store.backend == "sqlite":  # the stored text is already UTC
        hour = func.strftime("%Y-%m-%d %H:00:00", predictions.c.created_at)
    else:
        hour = func.date_trunc("hour", func.timezone("UTC", predictions.c.created_at))
    return _count_over_time(store, filters, hour, "hour")


def _count_over_time(
    store: HistoryStore, filters: Filters, bucket: ColumnElement[Any], name: str
) -> pd.DataFrame:
    """Count predictions per time bucket (`day` or `hour`), filling empty buckets with 0."""
    bucket = bucket.label(name)
    query = (
        select(bucket, func.count().label("count"))
        .where(*store.conditions(filters))
        .group_by(bucket)
        .order_by(bucket)
    )
    frame = _frame(store, query, [name, "count"])
    frame[name] = pd.to_datetime(frame[name])
    if not frame.empty:
        freq = {"day": "D", "hour": "h"}[name]
        every = pd.date_range(frame[name].min(), frame[name].max(), freq=freq, name=name)
        frame = frame.set_index(name).reindex(every, fill_value=0).reset_index()
    return frame.astype({"count": "int64"})


def count_by_label(
    store: HistoryStore, filters: Filters = NO_FILTERS, top: int = 10
) -> pd.DataFrame:
    """Return the `top` most frequent top-1 labels, most frequent first (label, count)."""
    count = func.count().label("count")
    query = (
        select(predictions.c.top1_label.label("label"), count)
        .where(*store.conditions(filters))
        .group_by(predictions.c.top1_label)
        .order_by(count.desc(), predictions.c.top1_label)
        .limit(top)
    )
    return _frame(store, query, ["label", "count"]).astype({"label": str, "count": "int64"})


def count_by_confidence(store: HistoryStore, filters: Filters = NO_FILTERS) -> pd.DataFrame:
    """Count predictions per top-1 confidence bin of width 0.1 (the last bin includes 1.0).

    Returns:
        Ten rows with columns `bin_start`, `bin_end` and `count`.
    """
    probability = predictions.c.top1_probability
    # Compare with i/10 rather than truncating probability*10: exact at bin edges
    # and identical on both backends (PostgreSQL rounds when casting to integer).
    bin_index = case(*((probability < (i + 1) / 10, i) for i in range(9)), else_=9).label("bin")
    query = select(bin_index, func.count()).where(*store.conditions(filters)).group_by(bin_index)
    with store.connect() as conn:
        counts = dict(conn.execute(query).all())
    return pd.DataFrame(
        {
            "bin_start": [i / 10 for i in range(10)],
            "bin_end": [(i + 1) / 10 for i in range(10)],
            "count": [counts.get(i, 0) for i in range(10)],
        }
    ).astype({"count": "int64"})


def count_feedback_by_model(store: HistoryStore, filters: Filters = NO_FILTERS) -> pd.DataFrame:
    """Measure accuracy from user feedback, per model, over the predictions rated right or
    wrong only (a photo said to be not usable says nothing about the model).

    Returns:
        Columns `model`, `rated`, `correct` and `share_correct` (0 to 1).
    """
    correct = func.sum(case((predictions.c.feedback == "correct", 1), else_=0))
    query = (
        select(predictions.c.model, func.count(), correct)
        .where(*store.conditions(filters), predictions.c.feedback.in_(("correct", "wrong")))
        .group_by(predictions.c.model)
        .order_by(predictions.c.model)
    )
    frame = _frame(store, query, ["model", "rated", "correct"])
    frame = frame.astype({"model": str, "rated": "int64", "correct": "int64"})
    frame["share_correct"] = (frame["correct"] / frame["rated"]).astype("float64")
    return frame


def _frame(store: HistoryStore, query: Select[Any], columns: list[str]) -> pd.DataFrame:
    with store.connect() as conn:
        return pd.DataFrame(conn.execute(query).all(), columns=columns)


def _utc_date(store: HistoryStore, created_at: ColumnElement[datetime]) -> ColumnElement[Any]:
    if store.backend == "sqlite":
        return func.date(created_at)  # the stored text is already UTC
    return func.date(func.timezone("UTC", created_at))
