"""The History page and the classify page's history hooks, driven with AppTest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from classifier.history import Filters, HistoryStore, NewRecord
from classifier.labels import TopClass
from tests.conftest import ROOT

APP = str(ROOT / "streamlit_app.py")
NASTY_NAME = "'); DROP TABLE predictions;-- <b>x</b> [y](javascript:z).png"


@pytest.fixture
def store(tmp_path, monkeypatch, lite0) -> HistoryStore:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    st.cache_data.clear()
    store = HistoryStore(url)
    yield store
    store.dispose()


def record(label: str, probability: float, model: str = "efficientnet_lite0", **extra) -> NewRecord:
    return NewRecord(
        file_name=extra.pop("file_name", f"{label}.jpg"),
        sha256="0" * 64,
        width=640,
        height=480,
        image_format="JPEG",
        model=model,
        top_k=(TopClass(label, 1, probability),),
        inference_ms=4.2,
        thumbnail=extra.pop("thumbnail", None),
        **extra,
    )


@pytest.fixture
def seeded(store) -> HistoryStore:
    now = datetime.now(UTC)
    store.add_many(
        [
            record("tabby", 0.9, created_at=now - timedelta(days=3)),
            record("tabby", 0.4, created_at=now - timedelta(days=2)),
            record("espresso", 0.95, model="mobilenet_v2", created_at=now - timedelta(days=1)),
            record("tench", 0.2, created_at=now, file_name=NASTY_NAME),
        ]
    )
    return store


def history_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    return at.switch_page("pages/history.py").run()


def caption_count(at: AppTest) -> str:
    return next(c.value for c in at.caption if "saved predictions match" in c.value)


def test_empty_history_points_to_the_classify_page(store):
    at = history_page()
    assert not at.exception
    assert "No predictions yet" in at.info[0].value


def test_table_lists_newest_first_with_names_as_plain_text(seeded):
    at = history_page()
    assert not at.exception
    assert caption_count(at) == "4 of 4 saved predictions match the filters."
    table = at.dataframe[0].value
    assert list(table["top-1"]) == ["tench", "espresso", "tabby", "tabby"]
    assert table["file"][0] == NASTY_NAME  # a text cell: never markdown or HTML


@pytest.mark.parametrize(
    ("widget", "value", "expected"),
    [
        (lambda at: at.sidebar.text_input(key="h_label"), "tab", 2),
        (lambda at: at.sidebar.multiselect(key="h_models"), ["mobilenet_v2"], 1),
        (lambda at: at.sidebar.slider(key="h_confidence"), (0.5, 1.0), 2),
        (lambda at: at.sidebar.selectbox(key="h_feedback"), "unrated", 4),
    ],
    ids=["label", "model", "confidence", "feedback"],
)
def test_filters_change_the_count(seeded, widget, value, expected):
    at = history_page()
    widget(at).set_value(value).run()
    assert caption_count(at) == f"{expected} of 4 saved predictions match the filters."
    assert len(at.dataframe[0].value) == expected


def test_date_filter_keeps_one_day(seeded):
    at = history_page()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    at.sidebar.date_input(key="h_dates").set_value((yesterday, yesterday)).run()
    assert caption_count(at) == "1 of 4 saved predictions match the filters."
    assert list(at.dataframe[0].value["top-1"]) == ["espresso"]


def test_feedback_filter_and_sort(seeded):
    [row] = seeded.find(filters=Filters(label="espresso"))
    seeded.set_feedback(row.id, "correct")
    at = history_page()
    at.sidebar.selectbox(key="h_feedback").set_value("correct").run()
    assert list(at.dataframe[0].value["top-1"]) == ["espresso"]
    at.sidebar.selectbox(key="h_feedback").set_value("any").run()
    at.sidebar.selectbox(key="h_sort").set_value("confidence_asc").run()
    assert list(at.dataframe[0].value["confidence"]) == [0.2, 0.4, 0.9, 0.95]


def test_delete_removes_exactly_the_selected_rows(seeded):
    at = history_page()
    table = at.dataframe[0].value
    ids = list(table["id"])
    _select_rows(at, [1, 3])
    at.run()
    assert at.button(key="h_delete").label == "Delete 2 selected"
    at.button(key="h_delete").click().run()
    remaining = {r.id for r in seeded.find(limit=None)}
    assert remaining == {ids[0], ids[2]}
    assert caption_count(at) == "2 of 2 saved predictions match the filters."
    assert at.button(key="h_delete").label == "Delete selected"  # nothing left ticked


@pytest.mark.parametrize(
    "change",
    [
        lambda at: at.sidebar.text_input(key="h_label").set_value("tabby"),
        lambda at: at.sidebar.selectbox(key="h_sort").set_value("oldest"),
    ],
    ids=["filter", "sort"],
)
def test_a_selection_never_moves_to_other_rows_when_the_view_changes(seeded, change):
    at = history_page()
    _select_rows(at, [0])
    at.run()
    assert at.button(key="h_delete").label == "Delete 1 selected"
    change(at).run()
    assert at.button(key="h_delete").label == "Delete selected"
    assert at.button(key="h_delete").disabled


def test_a_view_with_the_same_rows_keeps_the_selection(seeded):
    at = history_page()
    first_id = int(at.dataframe[0].value["id"][0])
    _select_rows(at, [0])
    at.run()
    at.selectbox(key="h_page_size").set_value(10).run()  # still the same four rows
    at.button(key="h_delete").click().run()
    assert seeded.get(first_id) is None
    assert seeded.count() == 3


def test_rows_added_meanwhile_drop_the_selection_instead_of_shifting_it(seeded):
    at = history_page()
    seen = [int(i) for i in at.dataframe[0].value["id"]]
    seeded.add(record("newcomer", 0.5))  # another session saves while this one looks
    _select_rows(at, [0])
    at.run()
    assert "The table changed since you ticked rows" in at.info[0].value
    assert at.button(key="h_delete").disabled
    assert all(seeded.get(i) is not None for i in seen)
    assert seeded.count() == 5


def _select_rows(at: AppTest, rows: list[int]) -> None:
    """Select table rows the way the browser reports a selection."""
    key = at.dataframe[0].key
    at.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}


def test_clear_asks_for_confirmation_first(seeded):
    at = history_page()
    at.button(key="h_clear").click().run()
    assert seeded.count() == 4  # nothing deleted yet
    assert "Delete all 4 saved predictions?" in at.warning[0].value
    at.button(key="h_clear_no").click().run()
    assert seeded.count() == 4
    assert not at.warning
    at.button(key="h_clear").click().run()
    at.sidebar.text_input(key="h_label").set_value("tab").run()  # doing something else
    assert not at.warning  # dismisses the question
    at.button(key="h_clear").click().run()
    at.button(key="h_clear_yes").click().run()
    assert seeded.count() == 0
    assert "No predictions yet" in at.info[0].value


def test_summary_charts_are_drawn(seeded):
    at = history_page()
    titles = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any("Predictions per day" in spec for spec in titles)
    assert any("Most frequent labels" in spec for spec in titles)
    assert any("Confidence of the top-1 answer" in spec for spec in titles)


def test_download_buttons_offer_csv_and_json(seeded):
    at = history_page()
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download CSV (4)", "Download JSON (4)"]


def classify_page(model: str = "efficientnet_lite0") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.sidebar.selectbox(key="model").set_value(model).run()
    return at


def test_a_prediction_is_saved_once_with_its_details(store, coffee_jpeg):
    at = classify_page()
    at.file_uploader(key="uploads").set_value((NASTY_NAME, coffee_jpeg, "image/jpeg")).run()
    at.sidebar.slider(key="top_k").set_value(3).run()  # a rerun must not save again
    [saved] = store.find(limit=None)
    assert saved.file_name == NASTY_NAME
    assert saved.top1_label == "espresso"
    assert saved.model == "efficientnet_lite0"
    assert (saved.width, saved.height, saved.image_format) == (600, 400, "JPEG")
    assert len(saved.top_k) == 5
    assert saved.thumbnail[8:12] == b"WEBP"


def test_saving_off_saves_nothing(store, coffee_jpeg):
    at = classify_page()
    at.sidebar.toggle(key="save").set_value(False).run()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    assert at.subheader[0].value.startswith("espresso")
    assert store.count() == 0


def test_thumbnails_off_saves_the_row_without_a_picture(store, coffee_jpeg):
    at = classify_page()
    at.sidebar.toggle(key="save_thumbnails").set_value(False).run()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    [saved] = store.find(limit=None)
    assert saved.thumbnail is None


def test_feedback_and_corrected_label_land_on_the_row(store, chelsea_png):
    at = classify_page()
    at.file_uploader(key="uploads").set_value(("chelsea.png", chelsea_png, "image/png")).run()
    [saved] = store.find(limit=None)
    at.feedback(key=f"feedback_{saved.id}").set_value(1).run()
    assert store.get(saved.id).feedback == "correct"

    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()
    assert store.get(saved.id).feedback == "wrong"
    at.selectbox(key=f"correction_{saved.id}").set_value("lynx").run()
    row = store.get(saved.id)
    assert (row.feedback, row.corrected_label) == ("wrong", "lynx")
    assert store.count() == 1

    at.feedback(key=f"feedback_{saved.id}").set_value(1).run()  # changed their mind
    row = store.get(saved.id)
    assert (row.feedback, row.corrected_label) == ("correct", None)
    assert f"correction_{saved.id}" not in [box.key for box in at.selectbox]


def test_a_failed_classification_saves_nothing(store):
    at = classify_page()
    at.file_uploader(key="uploads").set_value(("cat.png", b"not a picture", "image/png")).run()
    assert at.error
    assert store.count() == 0
