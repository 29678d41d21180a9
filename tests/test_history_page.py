"""The History page and the classify page's history hooks, driven with AppTest."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from classifier import history
from classifier.history import Filters, HistoryStore, NewRecord, connecting, tables
from classifier.labels import TopClass
from tests.conftest import ROOT
from tests.helpers import app_test

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
    at = app_test(120).run()
    return at.switch_page("pages/history.py").run()


def open_summary(at: AppTest) -> AppTest:
    """Open the Summary tab, as a click on it does (its charts are made only then)."""
    at.session_state["h_tab"] = "Summary"
    return at.run()


def chart_frame(chart):
    """Return the data frame behind an Altair chart element."""
    return pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_all().to_pandas()


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
    at.sidebar.text_input(key="h_from").set_value(yesterday.isoformat()).run()
    assert caption_count(at) == "2 of 4 saved predictions match the filters."  # and today's
    at.sidebar.text_input(key="h_to").set_value(f"{yesterday:%Y/%m/%d}").run()
    assert caption_count(at) == "1 of 4 saved predictions match the filters."
    assert list(at.dataframe[0].value["top-1"]) == ["espresso"]
    at.sidebar.text_input(key="h_to").set_value("yesterday").run()
    assert "Not a date; write it as" in at.sidebar.caption[0].value
    assert caption_count(at) == "2 of 4 saved predictions match the filters."


def test_feedback_filter_and_sort(seeded):
    [row] = seeded.find(filters=Filters(label="espresso"))
    seeded.set_feedback(row.id, "correct")
    [unsure, *_] = seeded.find(sort="confidence_asc")
    seeded.set_feedback(unsure.id, "unusable")
    at = history_page()
    at.sidebar.selectbox(key="h_feedback").set_value("correct").run()
    assert list(at.dataframe[0].value["top-1"]) == ["espresso"]
    at.sidebar.selectbox(key="h_feedback").set_value("any").run()
    at.sidebar.selectbox(key="h_sort").set_value("confidence_asc").run()
    assert list(at.dataframe[0].value["confidence"]) == [0.2, 0.4, 0.9, 0.95]
    # In the page's words, not as stored.
    assert list(at.dataframe[0].value["feedback"]) == ["not usable", "", "", "right"]


@pytest.mark.parametrize("last_day", ["9999-12-31", "99991231"])
def test_the_last_day_there_is_as_to_keeps_every_row(seeded, last_day):
    at = history_page()
    at.sidebar.text_input(key="h_to").set_value(last_day).run()
    assert caption_count(at) == "4 of 4 saved predictions match the filters."
    assert not at.exception and not at.error


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


def test_a_row_deleted_elsewhere_and_a_new_save_never_let_a_tick_delete_the_new_one(seeded):
    at = history_page()
    newest = seeded.find(limit=1)[0]
    seeded.delete([newest.id])  # another tab deletes the newest row, then saves a new one
    newcomer = seeded.add(record("newcomer", 0.5))
    _select_rows(at, [0])  # this tab ticks the newest row it shows: the deleted one
    at.run()
    assert "The table changed since you ticked rows" in at.info[0].value
    assert at.button(key="h_delete").disabled
    assert seeded.get(newcomer).top1_label == "newcomer"
    assert newcomer != newest.id


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
    at = open_summary(history_page())
    titles = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any("Predictions per day" in spec for spec in titles)
    assert any("Most frequent labels" in spec for spec in titles)
    assert any("Confidence of the top-1 answer" in spec for spec in titles)


def test_only_the_open_tab_is_made(seeded, monkeypatch):
    """The table opens without the summary's four queries and charts, and the other way
    round; back on Predictions, the table is there again."""
    from classifier.history import stats

    asked, real = [], stats.count_by_label
    monkeypatch.setattr(stats, "count_by_label", lambda *a: asked.append(a) or real(*a))
    at = history_page()
    assert at.dataframe and not at.get("vega_lite_chart") and not asked
    at = open_summary(at)
    assert not at.dataframe and len(asked) == 1
    assert any("Most frequent labels" in c.proto.spec for c in at.get("vega_lite_chart"))
    at.session_state["h_tab"] = "Predictions"
    at.run()
    assert len(at.dataframe[0].value) == 4 and not at.get("vega_lite_chart")


def test_the_table_keeps_its_page_size_and_page_while_the_summary_is_open(store):
    store.add_many([record("tabby", 0.5 + i / 100, file_name=f"{i}.jpg") for i in range(25)])
    at = history_page()
    at.selectbox(key="h_page_size").set_value(10).run()
    at.number_input(key="h_page").set_value(3).run()
    at = open_summary(at)
    at.session_state["h_tab"] = "Predictions"
    at.run()
    assert at.selectbox(key="h_page_size").value == 10
    assert at.number_input(key="h_page").value == 3
    assert len(at.dataframe[0].value) == 5  # the last of three pages of ten
    assert not at.warning  # no "set both by default and through Session State"


def test_download_buttons_offer_csv_and_json(seeded):
    at = history_page()
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download CSV (4)", "Download JSON (4)"]


def classify_page(model: str = "efficientnet_lite0") -> AppTest:
    at = app_test(300).run()
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


# --- What the page says when the database fails -------------------------------------------


@pytest.fixture
def no_name_lookups(monkeypatch):
    """Refuse every host name lookup, so no URL in a test can reach beyond this machine.

    psycopg resolves host names itself through socket.getaddrinfo.
    """
    real = socket.getaddrinfo

    def local_only(host, *args, **kwargs):
        if host in (None, "127.0.0.1", "::1", "localhost"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (no lookups in tests)")

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


def page_texts(at: AppTest) -> list[str]:
    """Every text the page shows, and every element as the browser would receive it."""
    texts = [
        *(element.value for element in (*at.error, *at.warning, *at.info, *at.success)),
        *(element.value for element in (*at.markdown, *at.caption, *at.title, *at.toast)),
        *(line for element in at.exception for line in (element.proto.message,
                                                        *element.proto.stack_trace)),
    ]  # fmt: skip

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            texts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return texts


def leaks(texts: list[str], secrets: tuple[str, ...]) -> list[str]:
    return [secret for secret in secrets for text in texts if secret in text]


MALFORMED = (
    "The history database URL is malformed; check CLASSIFIER_DATABASE_URL or "
    "[connections.history] url in the secrets."
)
# URL: pieces of its password, and how the page starts its error.
PASSWORD_URLS = {
    "postgresql://user:p@ss:w0rd@127.0.0.1:5432/db": (("p@ss", "w0rd"), MALFORMED),
    "postgresql://u:PW123@x@127.0.0.1:1/db": (("PW123", "x@127"), MALFORMED),
    "postgresql://u:x@PW123@127.0.0.1:1/db": (("PW123", "x@PW"), MALFORMED),
    "postgresql://u:s3cret@127.0.0.1:w0rd/db": (("s3cret", "w0rd"), MALFORMED),
    # Percent-encoded, so it parses: port 1 here refuses the connection at once.
    "postgresql://user:s3cr%40t%3Aw0rd@127.0.0.1:1/db": (
        ("s3cr", "w0rd"),
        "The history database cannot be reached (OperationalError); the server log",
    ),
    "nonsense://": ((), MALFORMED),
    "mysql://user:s3cret@127.0.0.1:1/db": (("s3cret",), MALFORMED),
}


@pytest.mark.parametrize(("url", "secrets", "message"), [(u, *v) for u, v in PASSWORD_URLS.items()])
def test_the_database_password_never_reaches_the_page_or_the_log(
    url, secrets, message, monkeypatch, caplog, no_name_lookups, lite0
):
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    caplog.set_level(logging.DEBUG)

    at = history_page()

    assert [error.value for error in at.error] == [at.error[0].value]
    assert at.error[0].value.startswith(message)
    assert not at.exception
    assert leaks(page_texts(at), secrets) == []
    logged = [caplog.text, *(record.getMessage() for record in caplog.records)]
    assert leaks(logged, secrets) == []
    [record] = [r for r in caplog.records if r.name == "ui.history_view"]
    assert "History database" in record.getMessage()  # the details are in the server log
    if message != MALFORMED:
        assert "postgresql://user:***@127.0.0.1:1/db" in record.getMessage()
    elif url.count("@") > 1 or "w0rd" in url:
        assert "URL not shown" in record.getMessage()  # unparseable: no part of it logged


@pytest.fixture
def backend_seeded(database_url, monkeypatch, lite0) -> HistoryStore:
    """The page's four predictions in an empty database, once per backend."""
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", database_url)
    st.cache_data.clear()
    store = HistoryStore(database_url)
    now = datetime.now(UTC)
    store.add_many(
        [
            record("tabby", 0.9, created_at=now - timedelta(days=3)),
            record("tabby", 0.4, created_at=now - timedelta(days=2)),
            record("espresso", 0.95, model="mobilenet_v2", created_at=now - timedelta(days=1)),
            record("Éclair", 0.2, created_at=now),
        ]
    )
    yield store
    history.close_shared_stores()
    store.dispose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x" * 50_000, 0),  # SQLite: "LIKE or GLOB pattern too complex"
        ("%" * 50_000, 0),
        ("tab\x00by", 2),  # PostgreSQL: a NUL in text is a DataError
        ("\x00", 4),
        ("éCLAIR", 1),  # beyond ASCII, on SQLite too
    ],
    ids=["50000 characters", "50000 percent signs", "NUL", "only NUL", "accented"],
)
def test_any_filter_text_gives_a_count_never_sql(backend_seeded, text, expected):
    at = history_page()
    box = at.sidebar.text_input(key="h_label")
    assert box.max_chars == 200
    box.set_value(text).run()  # as a hand-made request would send it, past max_chars

    assert not at.exception
    assert not at.error
    assert caption_count(at) == f"{expected} of 4 saved predictions match the filters."
    if expected:
        assert len(at.dataframe[0].value) == expected
    else:
        assert "No saved predictions match these filters." in [i.value for i in at.info]
    assert leaks(page_texts(at), ("SELECT", "LIKE", "[SQL")) == []


def test_a_failing_query_is_a_sentence_and_the_details_are_logged(seeded, monkeypatch, caplog):
    def fail(*args, **kwargs):
        raise sa.exc.OperationalError(
            "SELECT id FROM predictions WHERE top1_label LIKE ?",
            ("%needle%",),
            sqlite3.OperationalError("disk I/O error"),
        )

    monkeypatch.setattr(HistoryStore, "find", fail)
    at = history_page()

    assert [error.value for error in at.error] == [
        "The history database cannot be reached (OperationalError); the server log has the details."
    ]
    assert not at.exception
    assert leaks(page_texts(at), ("SELECT", "needle", "disk I/O")) == []
    assert "SELECT id FROM predictions" in caplog.text
    assert "disk I/O error" in caplog.text


def test_a_failing_delete_is_a_sentence(seeded, monkeypatch):
    at = history_page()
    _select_rows(at, [0])
    at.run()

    def fail(self, ids):
        raise sa.exc.IntegrityError("DELETE FROM predictions WHERE id IN (?)", ids, Exception())

    monkeypatch.setattr(HistoryStore, "remove", fail)
    at.button(key="h_delete").click().run()

    assert at.error[0].value.startswith("The history database could not answer (IntegrityError)")
    assert not at.exception
    assert leaks(page_texts(at), ("DELETE",)) == []
    assert seeded.count() == 4


def sqlite_error(code: int, message: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


@pytest.fixture
def read_only_folder(seeded, tmp_path, monkeypatch) -> HistoryStore:
    """The seeded history, in a folder the app cannot write.

    Tests run as root, whom chmod does not stop: writable() says no, and switching a
    new connection to WAL fails as SQLite does when it cannot create its side files.
    """

    def no_wal_files(cursor):  # as SQLite says it to a user other than root
        raise sqlite_error(
            sqlite3.SQLITE_READONLY_DIRECTORY, "attempt to write a readonly database"
        )

    monkeypatch.setattr(connecting, "_switch_to_wal", no_wal_files)
    monkeypatch.setattr(connecting, "_is_writable", lambda path: not path.is_relative_to(tmp_path))
    return seeded


def test_a_read_only_folder_shows_the_history_read_only(read_only_folder, tmp_path):
    at = history_page()

    assert not at.exception and not at.error
    assert f"folder {tmp_path} cannot be written" in at.warning[0].value
    assert caption_count(at) == "4 of 4 saved predictions match the filters."
    assert at.button(key="h_delete").disabled
    assert at.button(key="h_clear").disabled


def test_a_history_that_cannot_even_be_read_says_why(read_only_folder, tmp_path, monkeypatch):
    def refuse(uri):
        raise sqlite_error(sqlite3.SQLITE_CANTOPEN, "unable to open database file")

    monkeypatch.setattr(connecting, "_sqlite_connect", refuse)
    at = history_page()

    assert not at.exception
    assert at.error[0].value.startswith(
        f"The history database folder {tmp_path} is read-only; the database "
        f"{tmp_path / 'history.db'} cannot be opened, even read-only"
    )


def test_reset_filters_shows_everything_again(seeded):
    at = history_page()
    at.sidebar.text_input(key="h_label").set_value("tabby").run()
    assert caption_count(at) == "2 of 4 saved predictions match the filters."
    at.sidebar.button(key="h_reset").click().run()
    assert caption_count(at) == "4 of 4 saved predictions match the filters."
    assert at.sidebar.text_input(key="h_label").value == ""


def test_no_matches_is_a_clear_empty_state_with_the_downloads_off(seeded):
    at = history_page()
    at.sidebar.text_input(key="h_label").set_value("giraffe").run()
    assert "No saved predictions match these filters." in [i.value for i in at.info]
    assert not at.dataframe
    downloads = at.get("download_button")
    assert len(downloads) == 2 and all(button.proto.disabled for button in downloads)
    at.button(key="h_reset_empty").click().run()
    assert caption_count(at) == "4 of 4 saved predictions match the filters."


def test_a_page_past_the_last_is_corrected_to_the_last(seeded):
    at = history_page()
    at.number_input(key="h_page").set_value(99).run()
    assert not at.exception
    assert at.number_input(key="h_page").value == 1
    assert "Page 1 of 1" in [c.value for c in at.caption]


def test_the_whole_page_shows_without_an_inner_scroll_open_and_top_1_first(seeded):
    at = history_page()
    [table] = at.dataframe
    assert table.proto.row_height == 40  # the table's height is set from it to fit the page
    assert list(table.proto.column_order)[:3] == ["link", "top-1", "confidence"]  # phones: these


def test_the_clear_question_stands_under_its_button(seeded):
    at = history_page()
    at.button(key="h_clear").click().run()
    predictions_tab = at.tabs[0]
    assert any("Delete all 4 saved predictions?" in w.value for w in predictions_tab.warning)


def test_one_days_predictions_are_counted_per_hour(store):
    now = datetime.now(UTC).replace(hour=12, minute=30)
    store.add_many(
        [record("tabby", 0.9, created_at=now), record("tench", 0.5, created_at=now.replace(hour=9))]
    )
    at = open_summary(history_page())
    spec = json.loads(at.tabs[1].get("vega_lite_chart")[0].proto.spec)
    assert spec["title"] == "Predictions per hour (UTC)"


def test_accuracy_says_its_counts(seeded):
    [first, second, *_] = seeded.find(sort="oldest")
    seeded.set_feedback(first.id, "correct")
    seeded.set_feedback(second.id, "wrong")
    at = open_summary(history_page())
    charts = at.tabs[1].get("vega_lite_chart")
    accuracy = next(c for c in charts if "Accuracy" in c.proto.spec)
    rows = chart_frame(accuracy)
    assert list(rows["row"]) == ["EfficientNet-Lite0 (1 of 2 rated correct)"]


# --- Undoing a delete, links first, the models the rows name ------------------------------


def _undo_fixture_rows(store: HistoryStore) -> list[history.Record]:
    """Give two of the page's rows what a delete must not lose: feedback with a correction
    of the person's own, a thumbnail and a map; return every row as stored."""
    tabby, espresso, *_ = store.find(sort="oldest")
    store.set_feedback(tabby.id, "wrong", "my neighbour's cat")
    with store.begin() as conn:
        conn.execute(sa.insert(tables.thumbnails), {"prediction_id": espresso.id, "image": b"T"})
        conn.execute(sa.insert(tables.overlays), {"prediction_id": espresso.id, "image": b"O"})
    return [store.get(r.id) for r in store.find(limit=None)]


def test_a_delete_is_undone_with_ids_links_feedback_and_pictures(backend_seeded):
    before = _undo_fixture_rows(backend_seeded)
    at = history_page()
    shown = [int(i) for i in at.dataframe[0].value["id"]]
    _select_rows(at, [2, 3])  # the two oldest: the corrected one and the one with pictures
    at.run()
    at.button(key="h_delete").click().run()
    assert backend_seeded.count() == 2
    assert "Deleted 2 predictions." in [i.value for i in at.info]
    assert caption_count(at) == "2 of 2 saved predictions match the filters."

    at.button(key="h_undo").click().run()
    after = [backend_seeded.get(r.id) for r in backend_seeded.find(limit=None)]
    assert after == before  # ids, public ids, correction, thumbnail and map: all as they were
    assert [int(i) for i in at.dataframe[0].value["id"]] == shown
    assert not any("Deleted" in i.value for i in at.info)
    assert not at.exception


def take_id(store, new_id: int, old_id: int) -> None:
    """Give a new prediction a deleted one's id, as a SQLite history from before schema
    version 11 did for a deleted newest prediction."""
    with store.begin() as conn:
        conn.execute(
            sa.update(tables.predictions).where(tables.predictions.c.id == new_id).values(id=old_id)
        )


def test_undoing_twice_restores_once_and_a_taken_id_keeps_the_link(backend_seeded):
    newest = backend_seeded.find(limit=1)[0]
    removed = backend_seeded.remove([newest.id])
    take_id(backend_seeded, backend_seeded.add(record("newcomer", 0.5)), newest.id)
    assert backend_seeded.restore(removed) == 1
    assert backend_seeded.restore(removed) == 0
    back = backend_seeded.get_public(newest.public_id)
    assert (back.top1_label, back.created_at) == (newest.top1_label, newest.created_at)
    assert backend_seeded.count() == 5


def test_undoing_two_deletes_after_a_new_save_brings_both_back(backend_seeded):
    # The new prediction holds the lower of the two deleted ids (as an older SQLite history
    # gave it); the other deleted row keeps its id, and the taken one comes back under a
    # new id.
    two_newest = backend_seeded.find(limit=2)
    removed = backend_seeded.remove([record.id for record in two_newest])
    lower = min(record.id for record in two_newest)
    take_id(backend_seeded, backend_seeded.add(record("newcomer", 0.5)), lower)
    assert backend_seeded.restore(removed) == 2
    for before in two_newest:
        back = backend_seeded.get_public(before.public_id)
        assert (back.top1_label, back.created_at) == (before.top1_label, before.created_at)
    assert backend_seeded.count() == 5


def test_undo_puts_a_batch_jobs_answer_back_in_its_job(backend_seeded):
    [answer] = backend_seeded.find(filters=Filters(label="espresso"))
    now = datetime.now(UTC)
    with backend_seeded.begin() as conn:
        job_id = conn.execute(
            sa.insert(tables.jobs).returning(tables.jobs.c.id),
            {"public_id": "job-public-id-0001", "title": "photos", "model": "mobilenet_v2",
             "top_k": 5, "thumbnails": False, "source": "app", "status": "done", "total": 1,
             "done": 1, "failed": 0, "created_at": now, "folder": "x"},
        ).scalar_one()  # fmt: skip
        conn.execute(
            sa.insert(tables.job_items),
            {"job_id": job_id, "position": 0, "file_name": "espresso.jpg", "status": "done",
             "prediction_id": answer.id},
        )  # fmt: skip

    def linked() -> int | None:
        with backend_seeded.connect() as conn:
            return conn.execute(sa.select(tables.job_items.c.prediction_id)).scalar_one()

    removed = backend_seeded.remove([answer.id])
    assert linked() is None
    backend_seeded.restore(removed)
    assert linked() == answer.id


def test_clearing_drops_the_undo_of_an_earlier_delete(seeded):
    at = history_page()
    _select_rows(at, [0])
    at.run()
    at.button(key="h_delete").click().run()
    assert at.button(key="h_undo")
    at.button(key="h_clear").click().run()
    assert "Delete all 3 saved predictions? This cannot be undone." in at.warning[0].value
    at.button(key="h_clear_yes").click().run()
    assert seeded.count() == 0
    assert not [b for b in at.button if b.key == "h_undo"]


def test_each_row_opens_with_one_link_first_in_the_table(seeded):
    at = history_page()
    [table] = at.dataframe
    public_ids = seeded.public_ids(int(i) for i in table.value["id"])
    assert list(table.value["link"]) == [
        f"?prediction={public_ids[int(i)]}" for i in table.value["id"]
    ]
    assert next(iter(table.proto.column_order)) == "link"
    config = json.loads(table.proto.columns)["link"]
    assert (config["label"], config["type_config"]["display_text"]) == ("Open", "Open")


@pytest.mark.parametrize("kind", ["CSV", "JSON"])
def test_exports_hold_each_rows_public_id_and_link(seeded, kind):
    from ui import history_view

    data = history_view._export(
        seeded,
        kind,
        history.NO_FILTERS,
        "newest",
        lambda p: f"https://app.example/history?prediction={p}",
    )
    if kind == "CSV":
        import csv
        import io

        rows = list(csv.DictReader(io.StringIO(data.decode())))
        assert list(rows[0])[:3] == ["id", "public_id", "link"]
    else:
        rows = json.loads(data)
    by_id = seeded.public_ids(int(row["id"]) for row in rows)
    assert [(row["public_id"], row["link"]) for row in rows] == [
        (by_id[int(row["id"])], f"https://app.example/history?prediction={by_id[int(row['id'])]}")
        for row in rows
    ]


def test_the_model_filter_offers_the_models_of_the_rows(seeded):
    seeded.add(record("sparrow", 0.7, model="Garden birds"))  # an added model since removed
    at = history_page()
    box = at.sidebar.multiselect(key="h_models")
    assert box.options == ["EfficientNet-Lite0", "Garden birds", "MobileNetV2"]
    box.set_value(["Garden birds"]).run()
    assert caption_count(at) == "1 of 5 saved predictions match the filters."
    assert list(at.dataframe[0].value["top-1"]) == ["sparrow"]


def test_a_row_without_a_picture_or_map_shows_empty_cells_not_none(seeded):
    [tench] = seeded.find(filters=Filters(label="tench"))
    with seeded.begin() as conn:
        conn.execute(
            sa.insert(tables.overlays), {"prediction_id": tench.id, "image": b"RIFF0000WEBP"}
        )
    at = history_page()
    table = at.dataframe[0].value
    assert list(table["looked"]) == ["data:image/webp;base64,UklGRjAwMDBXRUJQ", "", "", ""]
    assert list(table["picture"]) == ["", "", "", ""]


# --- One click opens a prediction -------------------------------------------------------


def _select_in_the_browser(at: AppTest, rows: list[int], cells: list[list]) -> AppTest:
    """Run the page as after a click in the table: the browser sends the table's new
    selection with the other widgets' values, and the table's callback runs (a value put in
    Session State, as `_select_rows` does, would not run it)."""
    [table] = at.dataframe
    states = at._tree.get_widget_states()
    selection = {"selection": {"rows": rows, "columns": [], "cells": cells}}
    states.widgets.add(id=table.proto.id, string_value=json.dumps(selection))
    return at._run(states)


def test_clicking_an_open_cell_once_opens_its_prediction_in_this_tab(seeded):
    at = history_page()
    espresso = seeded.get(int(at.dataframe[0].value["id"][1]))
    _select_in_the_browser(at, [], [[1, "link"]])
    assert not at.exception
    assert at.query_params["prediction"] == espresso.public_id  # the address the link gives
    assert not at.dataframe  # the prediction on its own page, not the list
    assert [h.value for h in at.subheader] == ["espresso · 95%"]
    assert at.code[0].value.endswith(f"?prediction={espresso.public_id}")

    at.button[0].click().run()  # "All predictions": the list, which opens nothing again
    assert "prediction" not in at.query_params
    assert caption_count(at) == "4 of 4 saved predictions match the filters."
    at.run()
    assert len(at.dataframe) == 1 and not at.subheader
    _select_in_the_browser(at, [], [[1, "link"]])  # the same cell again: open again
    assert at.query_params["prediction"] == espresso.public_id


def test_clicking_another_cell_stays_on_the_list_and_ticks_still_delete(seeded):
    at = history_page()
    ids = [int(i) for i in at.dataframe[0].value["id"]]
    _select_in_the_browser(at, [], [[1, "top-1"]])
    assert not at.exception
    assert "prediction" not in at.query_params
    assert caption_count(at) == "4 of 4 saved predictions match the filters."
    _select_in_the_browser(at, [0, 2], [[1, "top-1"]])
    assert at.button(key="h_delete").label == "Delete 2 selected"
    at.button(key="h_delete").click().run()
    assert seeded.get(ids[0]) is None and seeded.get(ids[2]) is None and seeded.count() == 2
    assert "Deleted 2 predictions." in [i.value for i in at.info]


def test_deleting_every_row_still_offers_the_undo(store):
    store.add(record("tabby", 0.9))
    at = history_page()
    _select_in_the_browser(at, [0], [])
    at.button(key="h_delete").click().run()
    assert store.count() == 0
    assert [i.value for i in at.info][:2] == [
        "Deleted 1 prediction.",
        "No predictions yet. Classify a photo and it will appear here.",
    ]
    at.button(key="h_undo").click().run()
    assert store.count() == 1
    assert caption_count(at) == "1 of 1 saved predictions match the filters."
