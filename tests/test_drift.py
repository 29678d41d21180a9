"""What changed in the answers over time (`classifier.history.drift`), and the History
page's "What changed" section, on SQLite and (when configured) PostgreSQL.

The histories are made up with known counts and confidences, written through the store,
so the expected sentence, the p-values (scipy's on the same table) and the periods
follow from them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
import streamlit as st
from markdown_it import MarkdownIt
from scipy.stats import chi2_contingency, mannwhitneyu

from classifier.history import Filters, HistoryStore, NewRecord, drift
from classifier.history.owners import Scope
from tests.helpers import make_record, ranked
from tests.test_history_page import chart_frame, history_page, open_summary
from ui.columns import WORD_JOINER

MONDAY = datetime(2024, 12, 2, 8, 0, tzinfo=UTC)  # two weeks: 2 to 15 Dec 2024
BEFORE = {"tabby cat": 50, "tench": 40, "espresso": 10}
AFTER = {"tabby cat": 40, "tench": 30, "espresso": 30}  # espresso 3x as frequent
SHIFTED = "Since 15 Dec 2024, 'espresso' is 3x as frequent and confidence fell from 81% to 62%."


def confidences(median: float, count: int) -> np.ndarray:
    """Evenly spread confidences around a median (exactly that median)."""
    return np.linspace(median - 0.15, median + 0.15, count)


def one_day(day: datetime, mix: dict[str, int], median: float) -> list[NewRecord]:
    """A day's answers: so many of each class, their confidences around a median, mixed
    among the classes (the same mixing every day)."""
    labels = [label for label, count in mix.items() for _ in range(count)]
    spread = confidences(median, len(labels))[np.random.default_rng(0).permutation(len(labels))]
    return [
        make_record(
            top_k=ranked(label, float(confidence)),
            created_at=day + timedelta(minutes=minute),
        )
        for minute, (label, confidence) in enumerate(zip(labels, spread, strict=True))
    ]


def two_weeks(shift: bool = True) -> list[NewRecord]:
    """Fourteen days of 100 answers; on the last day, with `shift`, espresso is three times
    as frequent and the median confidence falls from 81% to 62%."""
    records = []
    for day in range(14):
        last = shift and day == 13
        records += one_day(MONDAY + timedelta(days=day), AFTER if last else BEFORE,
                           0.62 if last else 0.81)  # fmt: skip
    return records


def same_distribution(days: int = 14, per_day: int = 100, seed: int = 0) -> list[NewRecord]:
    """Answers drawn every day from one class mix and one confidence distribution."""
    rng = np.random.default_rng(seed)
    records = []
    for day in range(days):
        labels = rng.choice(list(BEFORE), size=per_day, p=[0.5, 0.4, 0.1])
        for minute, label in enumerate(labels):
            records.append(
                make_record(
                    top_k=ranked(str(label), float(rng.beta(8, 2))),
                    created_at=MONDAY + timedelta(days=day, minutes=minute),
                )
            )
    return records


# --- The computation --------------------------------------------------------------------


def test_a_known_shift_is_said_in_one_sentence_with_scipys_p_values(store: HistoryStore) -> None:
    store.add_many(two_weeks())

    changed = drift.what_changed(store)

    assert changed.unit == "day"
    assert changed.sentence() == SHIFTED
    compared = changed.comparison
    assert (compared.before.start.isoformat(), compared.latest.start.isoformat()) == (
        "2024-12-14",
        "2024-12-15",
    )
    assert compared.classes == ("tabby cat", "tench", "espresso") and compared.others == 0
    assert compared.table == ((50, 40, 10), (40, 30, 30))
    expected = chi2_contingency([[50, 40, 10], [40, 30, 30]]).pvalue
    assert compared.mix_p == pytest.approx(expected, rel=1e-12)
    assert compared.mix_p < 0.01
    same = mannwhitneyu(confidences(0.81, 100), confidences(0.62, 100)).pvalue
    assert compared.confidence_p == pytest.approx(same, rel=1e-12)
    assert compared.details().startswith(
        "15 Dec 2024 (100 answers) against 14 Dec 2024 (100 answers): class mix chi-square "
        f"{drift.p_text(expected)} over 3 classes; confidence Mann-Whitney p < 0.0001."
    )


def test_the_periods_hold_each_days_answers_median_and_unsure_share(store: HistoryStore) -> None:
    store.add_many(two_weeks())

    periods = drift.what_changed(store, unsure_below=0.7).periods

    assert [d.isoformat() for d in periods["period"].dt.date] == [
        (MONDAY.date() + timedelta(days=day)).isoformat() for day in range(14)
    ]
    assert periods["answers"].tolist() == [100] * 14
    assert periods["median_confidence"].round(6).tolist() == [0.81] * 13 + [0.62]
    below = [float(np.mean(confidences(m, 100) < 0.7)) for m in (0.81, 0.62)]
    assert periods["unsure_share"].tolist() == [below[0]] * 13 + [below[1]]


def test_the_same_distribution_every_day_says_nothing(store: HistoryStore) -> None:
    store.add_many(same_distribution())

    changed = drift.what_changed(store)

    assert changed.sentence() is None
    assert changed.comparison.mix_p > 0.01 and changed.comparison.confidence_p > 0.01
    assert changed.note is None  # compared: the caption gives the p-values


def test_only_the_confidence_moved(store: HistoryStore) -> None:
    records = []
    for day in range(14):
        records += one_day(MONDAY + timedelta(days=day), BEFORE, 0.62 if day == 13 else 0.81)
    store.add_many(records)

    changed = drift.what_changed(store)

    assert changed.comparison.mix_p == pytest.approx(1.0)
    assert changed.sentence() == "Since 15 Dec 2024, confidence fell from 81% to 62%."


def test_too_few_answers_are_not_compared(store: HistoryStore) -> None:
    records = []
    for day in range(14):  # 10 answers a day, 19 on the last
        mix = {"espresso": 10 if day == 13 else 1, "tench": 9}
        records += one_day(MONDAY + timedelta(days=day), mix, 0.8)
    store.add_many(records)

    changed = drift.what_changed(store)

    assert changed.comparison is None and changed.sentence() is None
    assert changed.note == (
        "Too few answers to compare 15 Dec 2024 (19 answers) with 14 Dec 2024 (10 answers): "
        "at least 20 in each are needed."
    )
    assert len(changed.periods) == 14  # still drawn


def test_one_day_of_answers_has_nothing_to_compare(store: HistoryStore) -> None:
    store.add_many(one_day(MONDAY, AFTER, 0.6))

    changed = drift.what_changed(store)

    assert changed.note == "All the answers are from one day: nothing to compare yet."
    assert changed.periods["answers"].tolist() == [100]
    assert drift.what_changed(store, Filters(label="no such class")).periods.empty


def test_beyond_a_month_the_periods_are_weeks_from_monday(store: HistoryStore) -> None:
    """Six weeks: the last one against the one before, named by its Monday; an answer late
    on a Sunday (UTC, also when saved with another offset) is in the week it ends."""
    records = []
    for week in range(6):
        start = MONDAY - timedelta(weeks=5 - week)
        shifted = week == 5
        for day in range(7):  # a seventh of the week's answers each day
            mix = {label: count // 7 + (day < count % 7) for label, count in
                   (AFTER if shifted else BEFORE).items()}  # fmt: skip
            records += one_day(start + timedelta(days=day), mix, 0.62 if shifted else 0.81)
    sunday_night = datetime(2024, 12, 1, 23, 30, tzinfo=UTC)  # Monday 01:30 at UTC+2
    plus_two = sunday_night.astimezone(timezone(timedelta(hours=2)))
    records.append(make_record(top_k=ranked("tench", 0.81), created_at=plus_two))
    store.add_many(records)

    changed = drift.what_changed(store)

    assert changed.unit == "week"
    assert [d.isoformat() for d in changed.periods["period"].dt.date] == [
        (MONDAY.date() - timedelta(weeks=5 - week)).isoformat() for week in range(6)
    ]
    assert changed.periods["answers"].tolist() == [100, 100, 100, 100, 101, 100]
    assert changed.sentence() == SHIFTED.replace("15 Dec", "2 Dec")
    assert changed.comparison.details().startswith(
        "the week of 2 Dec 2024 (100 answers) against the week of 25 Nov 2024 (101 answers): "
    )


def test_only_the_last_26_weeks_are_read(store: HistoryStore) -> None:
    store.add_many(make_record(created_at=MONDAY - timedelta(weeks=w)) for w in range(30))

    periods = drift.what_changed(store).periods

    assert len(periods) == 26
    assert periods["period"].min().date() == (MONDAY - timedelta(weeks=25)).date()


RARE = {
    "fourteen classes": (
        {f"class {i:02d}": 30 - 2 * i for i in range(14)},  # 30, 28, ... 4 answers
        {**{f"class {i:02d}": 30 - 2 * i for i in range(14)}, "class 00": 90},
        tuple(f"class {i:02d}" for i in range(10)),
        4,
    ),
    # One class too rare for a column of its own, and too rare alone as the others: it
    # takes the least frequent class with it.
    "one rare class": ({"a": 40, "b": 40, "c": 1}, {"a": 20, "b": 60}, ("b",), 2),
}


@pytest.mark.parametrize(("before", "after", "classes", "others"), RARE.values(), ids=RARE)
def test_rare_classes_are_taken_together_so_every_expected_count_is_valid(
    store: HistoryStore, before, after, classes, others
) -> None:
    store.add_many(one_day(MONDAY, before, 0.8) + one_day(MONDAY + timedelta(days=1), after, 0.8))

    compared = drift.what_changed(store).comparison

    assert (compared.classes, compared.others) == (classes, others)
    table = np.array(compared.table)
    assert table.sum(axis=1).tolist() == [sum(before.values()), sum(after.values())]
    assert table[:, 0].tolist() == [before[classes[0]], after[classes[0]]]
    result = chi2_contingency(table)
    assert result.expected_freq.min() >= drift.MIN_EXPECTED
    assert compared.mix_p == pytest.approx(result.pvalue, rel=1e-12)
    assert f"over {len(classes)} class" in compared.details()
    assert f" and {others} others taken together;" in compared.details()


@pytest.mark.parametrize(
    ("ratio", "said"),
    [(3.0, "3x"), (1.5, "1.5x"), (1.04, "1.04x"), (12.4, "12x"), (0.5, "half"),
     (1 / 3, "a third"), (0.26, "a quarter"), (0.7, "0.7x"), (0.05, "less than a tenth")],
)  # fmt: skip
def test_ratios_are_said_as_a_person_would(ratio: float, said: str) -> None:
    assert drift.how_often(ratio) == said


def test_each_person_sees_the_figures_of_their_own_answers(store: HistoryStore) -> None:
    alice = store.scoped(Scope.own("https://issuer.example alice"))
    bob = store.scoped(Scope.own("https://issuer.example bob"))
    alice.add_many(two_weeks())
    bob.add_many(r for day in range(14) for r in one_day(
        MONDAY + timedelta(days=day), {"tench": 20, "tabby cat": 10}, 0.9))  # fmt: skip

    mine, theirs, everyone = (drift.what_changed(s) for s in (alice, bob, store))

    assert mine.sentence() == SHIFTED
    assert mine.periods["answers"].tolist() == [100] * 14
    assert mine.comparison.table == ((50, 40, 10), (40, 30, 30))
    assert theirs.sentence() is None
    assert theirs.periods["answers"].tolist() == [30] * 14
    assert theirs.periods["median_confidence"].round(6).tolist() == [0.9] * 14
    assert theirs.comparison.classes == ("tench", "tabby cat")
    assert everyone.periods["answers"].tolist() == [130] * 14


# --- The History page -------------------------------------------------------------------


@pytest.fixture
def page_store(tmp_path, monkeypatch, lite0) -> HistoryStore:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    st.cache_data.clear()
    store = HistoryStore(url)
    yield store
    store.dispose()


def test_the_summary_says_what_changed_with_names_as_written(page_store: HistoryStore) -> None:
    name = "*crema* [x](http://evil.example/)"
    page_store.add_many(
        replace(r, top_k=ranked(name, r.top_k[0].probability))
        if r.top_k[0].label == "espresso" else r for r in two_weeks()
    )  # fmt: skip

    at = history_page()
    del at.session_state["kept_threshold"]  # as if the History page opened first (a link)
    at = open_summary(at)

    assert not at.exception
    summary = at.tabs[1]
    [said] = [i.value for i in summary.info if "Since 15 Dec 2024" in i.value]
    html = MarkdownIt("commonmark").render(said)
    assert "<em>" not in html and "<a " not in html
    shown = html.replace(WORD_JOINER, "")  # what keeps a bare address from becoming a link
    assert f"<p>{SHIFTED.replace('espresso', name)}</p>" in shown
    captions = [c.value for c in summary.caption]
    assert any(c.startswith("15 Dec 2024 (100 answers) against 14 Dec 2024") for c in captions)
    mix = summary.dataframe[-1].value  # the class mix, the day before against the latest
    shares = {row["class"]: (row["before"], row["latest"]) for _, row in mix.iterrows()}
    assert shares[name] == pytest.approx((0.1, 0.3))  # 3x as frequent, name as written
    assert any("below 25%, the app's default confidence threshold" in c for c in captions)
    chart = next(c for c in summary.get("vega_lite_chart") if "Confidence per day" in c.proto.spec)
    lines = chart_frame(chart)
    medians = lines[lines["measure"] == "Median confidence"]["value"].round(6).tolist()
    assert medians == [0.81] * 13 + [0.62]
    assert json.loads(chart.proto.spec)["title"] == "Confidence per day"

    at.session_state["kept_threshold"] = 0.7  # as the Classify page's sidebar keeps it
    at.run()
    captions = [c.value for c in at.tabs[1].caption]
    assert any("below 70%, the confidence threshold set in the Classify page's" in c
               for c in captions)  # fmt: skip


def test_a_signed_in_visitor_sees_what_changed_in_their_own_answers(page_store) -> None:
    from tests.test_private import ALICE, BOB, open_app, owner_of

    page_store.scoped(Scope.own(owner_of(ALICE))).add_many(two_weeks())  # shifted
    page_store.scoped(Scope.own(owner_of(BOB))).add_many(two_weeks(shift=False))

    def summary_of(person: dict) -> list[str]:
        at = open_app(signed_in=person, page="pages/history.py")
        at.session_state["h_tab"] = "Summary"
        at.run()
        assert not at.exception
        return [i.value for i in at.tabs[1].info]

    assert SHIFTED in summary_of(ALICE)
    assert not any(said.startswith("Since ") for said in summary_of(BOB))
