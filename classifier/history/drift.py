"""What changed in the answers over time: confidence and unsure answers per day or week, and
the class mix and confidence of the latest period tested against the period before.

Periods are UTC days when the filtered answers lie within 31 days, otherwise weeks from
Monday. The latest period with answers is compared with the one before it that has
answers: the class counts with a chi-square test (`scipy.stats.chi2_contingency`) and the
top-1 confidences with a Mann-Whitney U test. `what_changed` says in one sentence what
moved more than chance explains (p < 0.01, with at least 20 answers in each period).

Like `stats`, it takes an open HistoryStore and the same Filters as `HistoryStore.find`,
and reads through `store.conditions`, so a scoped store's figures are its owner's own.
It reads the top-1 label and confidence of the answers in the periods shown (the last 31
days, or the last 26 weeks), never the rest of the history.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, mannwhitneyu
from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from classifier.history.records import NO_FILTERS, Filters
from classifier.history.store import HistoryStore
from classifier.history.tables import predictions

DAYS = 31  # answers within this many days are shown per day, otherwise per week
WEEKS = 26  # the weeks shown (and read) when per week
MIN_ANSWERS = 20  # in each of the two periods compared
SIGNIFICANT = 0.01  # a p-value below this is more than chance explains
MAX_CLASSES = 10  # classes tested one by one; the rest are taken together
MIN_EXPECTED = 5  # the chi-square test's usual rule for each cell's expected count
FRACTIONS = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth", 6: "a sixth",
             7: "a seventh", 8: "an eighth", 9: "a ninth", 10: "a tenth"}  # fmt: skip


@dataclass(frozen=True)
class Period:
    """One day or week of answers."""

    start: date  # the day, or the Monday of the week (UTC)
    answers: int
    median_confidence: float  # of the top-1 answers
    unsure_share: float  # 0 to 1: answers below the confidence threshold


@dataclass(frozen=True)
class Comparison:
    """The latest period with answers against the one before it with answers.

    `table` holds the class counts, the period before first; its columns are `classes`
    and then, when `others` > 0, those other classes taken together.
    """

    unit: str  # "day" or "week"
    before: Period
    latest: Period
    classes: tuple[str, ...]
    others: int  # how many classes are taken together in the last column
    table: tuple[tuple[int, ...], tuple[int, ...]]
    mix_p: float | None  # None: one class in all (nothing to test)
    confidence_p: float
    changed: int  # the column whose change weighs most in the chi-square statistic

    @property
    def mix_moved(self) -> bool:
        """Whether the class mix moved more than chance explains."""
        return self.mix_p is not None and self.mix_p < SIGNIFICANT

    @property
    def confidence_moved(self) -> bool:
        """Whether the confidence moved more than chance explains, by a shown percent."""
        shown = (f"{self.before.median_confidence:.0%}", f"{self.latest.median_confidence:.0%}")
        return self.confidence_p < SIGNIFICANT and shown[0] != shown[1]

    def shares(self, column: int) -> tuple[float, float]:
        """Return a column's share of the answers before and in the latest period."""
        before, latest = self.table
        return before[column] / sum(before), latest[column] / sum(latest)

    def sentence(self, name: Callable[[str], str] = str) -> str | None:
        """Say what moved more than chance explains, or None when nothing did.

        Args:
            name: Writes a class name for where the sentence is shown (the page
                escapes Markdown: a class name is shown as written).
        """
        parts = []
        if self.mix_moved:
            parts.append(self._mix_phrase(name))
        if self.confidence_moved:
            before, latest = self.before.median_confidence, self.latest.median_confidence
            moved = "fell" if latest < before else "rose"
            parts.append(f"confidence {moved} from {before:.0%} to {latest:.0%}")
        if not parts:
            return None
        return f"Since {day_text(self.latest.start)}, {' and '.join(parts)}."

    def details(self) -> str:
        """Say which periods were compared and the two tests' p-values."""
        columns = f"{len(self.classes)} class{'es' if len(self.classes) != 1 else ''}"
        if self.others:
            columns += f" and {self.others:,} other{'s' if self.others != 1 else ''} taken together"
        if self.mix_p is not None:
            mix = f"chi-square {p_text(self.mix_p)} over {columns}"
        elif self.others:
            mix = "too few answers of each class for a chi-square test"
        else:
            mix = "one class in both, so no chi-square test"
        return (
            f"{period_text(self.latest.start, self.unit)} ({_answers(self.latest.answers)}) "
            f"against {period_text(self.before.start, self.unit)} "
            f"({_answers(self.before.answers)}): class mix {mix}; confidence Mann-Whitney "
            f"{p_text(self.confidence_p)}. A change is named below p = {SIGNIFICANT:g}."
        )

    def _mix_phrase(self, name: Callable[[str], str]) -> str:
        before, latest = self.shares(self.changed)
        if self.changed < len(self.classes):
            who, verb = f"'{name(self.classes[self.changed])}'", "is"
        else:
            who, verb = "the less frequent classes together", "are"
        if before == 0:
            return f"{who} {verb} new ({latest:.0%} of the answers, none before)"
        if latest == 0:
            return f"{who} {verb} gone ({before:.0%} of the answers before)"
        return f"{who} {verb} {how_often(latest / before)} as frequent"


@dataclass(frozen=True)
class Drift:
    """The answers per period, and the latest period against the one before.

    `periods` has columns `period` (datetime64, midnight UTC, naive), `answers`,
    `median_confidence` and `unsure_share` (0 to 1), one row per period with answers.
    `comparison` is None when there is not enough to compare; `note` then says why.
    """

    unit: str  # "day" or "week"
    unsure_below: float
    periods: pd.DataFrame
    comparison: Comparison | None
    note: str | None

    def sentence(self, name: Callable[[str], str] = str) -> str | None:
        """Say what moved more than chance explains (see `Comparison.sentence`); else None."""
        return None if self.comparison is None else self.comparison.sentence(name)


def what_changed(
    store: HistoryStore, filters: Filters = NO_FILTERS, unsure_below: float = 0.25
) -> Drift:
    """Measure the answers per period and test the latest period against the one before.

    Args:
        unsure_below: The confidence threshold: a top-1 answer below it is unsure (the
            default is the app's, `classifier.predict.UNSURE_BELOW`, not imported here:
            that would load the models with the history).
    """
    with store.connect() as conn:
        first, last = conn.execute(
            select(func.min(predictions.c.created_at), func.max(predictions.c.created_at)).where(
                *store.conditions(filters)
            )
        ).one()
    if last is None:
        return Drift("day", unsure_below, _no_periods(), None, "No answers to compare.")
    first_day, last_day = first.astimezone(UTC).date(), last.astimezone(UTC).date()
    unit = "day" if (last_day - first_day).days < DAYS else "week"
    since = first_day
    if unit == "week":
        since = last_day - timedelta(days=last_day.weekday(), weeks=WEEKS - 1)
    rows = _answers_since(store, filters, unit, datetime.combine(since, time.min, tzinfo=UTC))
    periods = _per_period(rows, unsure_below)
    comparison, note = _compare(rows, periods, unit)
    return Drift(unit, unsure_below, periods, comparison, note)


def _answers_since(
    store: HistoryStore, filters: Filters, unit: str, since: datetime
) -> pd.DataFrame:
    """Read the period, top-1 label and confidence of the filtered answers from `since` on."""
    period = _period(store, unit).label("period")
    query = select(period, predictions.c.top1_label, predictions.c.top1_probability).where(
        *store.conditions(filters), predictions.c.created_at >= since
    )
    with store.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=["period", "label", "confidence"])
    frame["period"] = pd.to_datetime(frame["period"])
    return frame.astype({"label": str, "confidence": "float64"})


def _period(store: HistoryStore, unit: str) -> ColumnElement[Any]:
    """Return the UTC day, or the Monday of the UTC week, of each answer, in SQL."""
    created_at = predictions.c.created_at
    if store.backend == "sqlite":  # the stored text is already UTC
        if unit == "day":
            return func.date(created_at)
        return func.date(created_at, "weekday 0", "-6 days")  # the Sunday on or after, less 6
    utc = func.timezone("UTC", created_at)
    return func.date(utc if unit == "day" else func.date_trunc("week", utc))


def _per_period(rows: pd.DataFrame, unsure_below: float) -> pd.DataFrame:
    """Return the answers, median confidence and unsure share of each period, oldest first."""
    grouped = rows.assign(unsure=rows["confidence"] < unsure_below).groupby("period", sort=True)
    frame = pd.DataFrame(
        {
            "answers": grouped.size(),
            "median_confidence": grouped["confidence"].median(),
            "unsure_share": grouped["unsure"].mean(),
        }
    ).reset_index()
    if frame.empty:
        return _no_periods()
    return frame.astype({"answers": "int64", "median_confidence": "float64",
                         "unsure_share": "float64"})  # fmt: skip


def _no_periods() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period": pd.Series([], dtype="datetime64[ns]"),
            "answers": pd.Series([], dtype="int64"),
            "median_confidence": pd.Series([], dtype="float64"),
            "unsure_share": pd.Series([], dtype="float64"),
        }
    )


def _compare(
    rows: pd.DataFrame, periods: pd.DataFrame, unit: str
) -> tuple[Comparison | None, str | None]:
    """Test the latest period against the one before; or say why there is nothing to test."""
    if len(periods) < 2:
        return None, f"All the answers are from one {unit}: nothing to compare yet."
    before, latest = (_as_period(row) for row in periods.tail(2).itertuples(index=False))
    if min(before.answers, latest.answers) < MIN_ANSWERS:
        return None, (
            f"Too few answers to compare {period_text(latest.start, unit)} "
            f"({_answers(latest.answers)}) with {period_text(before.start, unit)} "
            f"({_answers(before.answers)}): at least {MIN_ANSWERS} in each are needed."
        )
    starts = [pd.Timestamp(before.start), pd.Timestamp(latest.start)]
    two = rows[rows["period"].isin(starts)]
    counts = pd.crosstab(two["period"], two["label"]).reindex(starts)
    classes, others, table = _mix_table(counts)
    mix_p = None
    if table.shape[1] > 1:
        mix_p = float(chi2_contingency(table).pvalue)
    confidences = [two.loc[two["period"] == start, "confidence"].to_numpy() for start in starts]
    confidence_p = float(mannwhitneyu(*confidences, alternative="two-sided").pvalue)
    if math.isnan(confidence_p):  # every confidence the same
        confidence_p = 1.0
    changed = _most_changed(table)
    comparison = Comparison(
        unit=unit,
        before=before,
        latest=latest,
        classes=classes,
        others=others,
        table=(tuple(int(n) for n in table[0]), tuple(int(n) for n in table[1])),
        mix_p=mix_p,
        confidence_p=confidence_p,
        changed=changed,
    )
    return comparison, None


def _mix_table(counts: pd.DataFrame) -> tuple[tuple[str, ...], int, np.ndarray]:
    """Return the classes tested one by one, how many are taken together, and the table.

    The most frequent classes (at most MAX_CLASSES) are kept whose expected count is at
    least MIN_EXPECTED in both periods; the others are summed into a last column, itself
    folded together with the least frequent kept class until its expected count is valid.
    """
    totals = counts.sum(axis=0)
    order = sorted(totals.index, key=lambda label: (-totals[label], label))
    rows = counts.sum(axis=1)
    # Expected count of a class in a period: its total * the period's share of all answers.
    enough = MIN_EXPECTED * rows.sum() / rows.min()
    kept = [label for label in order[:MAX_CLASSES] if totals[label] >= enough]
    rest = [label for label in order if label not in kept]
    while rest and kept and totals[rest].sum() < enough:
        rest.insert(0, kept.pop())
    columns = [counts[label].to_numpy() for label in kept]
    if rest:
        columns.append(counts[rest].sum(axis=1).to_numpy())
    return tuple(kept), len(rest), np.column_stack(columns).astype("int64")


def _most_changed(table: np.ndarray) -> int:
    """Return the column that weighs most in the chi-square statistic, (observed -
    expected)^2 / expected summed over both periods; the first of equals (the more frequent)."""
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    return int(np.argmax(((table - expected) ** 2 / expected).sum(axis=0)))


def _as_period(row: Any) -> Period:
    return Period(
        start=row.period.date(),
        answers=int(row.answers),
        median_confidence=float(row.median_confidence),
        unsure_share=float(row.unsure_share),
    )


def how_often(ratio: float) -> str:
    """Say a ratio of frequencies as a person would: "3x", "1.5x", "half", "a third"."""
    if ratio >= 1:
        if ratio >= 10:
            return f"{round(ratio):,}x"
        return f"{round(ratio, 2 if ratio < 1.1 else 1):g}x"  # 1.04x, not 1x
    inverse = 1 / ratio
    whole = round(inverse)
    if whole in FRACTIONS and abs(inverse - whole) <= 0.1 * whole:
        return FRACTIONS[whole]
    return f"{ratio:.1f}x" if ratio >= 0.1 else "less than a tenth"


def day_text(day: date, today: date | None = None) -> str:
    """Write a day as "1 Dec", with its year when that is not this year's."""
    today = today or datetime.now(UTC).date()
    return f"{day.day} {day:%b}" + (f" {day.year}" if day.year != today.year else "")


def period_text(start: date, unit: str) -> str:
    """Write a period as "1 Dec" (a day) or "the week of 1 Dec"."""
    return day_text(start) if unit == "day" else f"the week of {day_text(start)}"


def p_text(p: float) -> str:
    """Write a p-value with two significant digits: "p = 0.0003", "p < 0.0001"."""
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.2g}"


def _answers(count: int) -> str:
    return f"{count:,} answer{'s' if count != 1 else ''}"
