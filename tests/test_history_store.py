"""Tests for the prediction history store, on SQLite and (when configured) PostgreSQL.

What a store does with its rows: saving and reading records, filters, sorts and
pages, feedback and deletes, exports, the summary counts, threads and processes
sharing a database, and 100,000 rows. The tables' versions and upgrades are in
test_history_tables_and_migrations.py; URLs, read-only opening and the SQLite and
PostgreSQL connections in test_history_connecting.py.

PostgreSQL runs when CLASSIFIER_TEST_POSTGRES_URL names a server, e.g.
postgresql://postgres@127.0.0.1:5432/test; each test gets a fresh schema there.
Without it those tests are skipped, except with CI=true, where they fail.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import re
import sqlite3
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from multiprocessing.queues import Queue as ProcessQueue
from multiprocessing.synchronize import Barrier as ProcessBarrier
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from threading import Barrier

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from classifier import history
from classifier.history import Filters, HistoryStore, NewRecord, Record, stats, tables
from classifier.labels import TopClass
from tests.conftest import ROOT
from tests.helpers import (
    HOSTILE_NAME,
    PLUS_TWO,
    SEED,
    T0,
    make_record,
    names,
    ranked,
    seed,
)

UNICODE_NAME = "Фото кота 猫の写真 🐱 café\u0301 ﬁle.HEIC"
EXPORT_HEADER = (
    "id,public_id,created_at,file_name,sha256,width,height,image_format,model,top_k,"
    "top1_label,top1_probability,inference_ms,feedback,corrected_label,has_photo,source"
)


# --- Backends ---------------------------------------------------------------------------


# --- Round trips ------------------------------------------------------------------------


def test_add_then_get_returns_every_field(store: HistoryStore) -> None:
    created_at = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=5.5)))
    thumbnail = bytes(range(256)) * 4
    top_k = (
        TopClass("tabby cat", 281, 0.7123456789012345),
        TopClass("tiger cat", 282, 0.2),
        TopClass("Egyptian cat", 285, 0.05),
    )
    record_id = store.add(
        make_record(
            file_name=UNICODE_NAME,
            sha256="ab" * 32,
            width=4032,
            height=3024,
            image_format="HEIF",
            model="efficientnet_lite0",
            top_k=top_k,
            inference_ms=41.25,
            thumbnail=thumbnail,
            created_at=created_at,
        )
    )

    stored = store.get(record_id)

    assert stored == Record(
        id=record_id,
        created_at=created_at,
        file_name=UNICODE_NAME,
        sha256="ab" * 32,
        width=4032,
        height=3024,
        image_format="HEIF",
        model="efficientnet_lite0",
        top_k=top_k,
        top1_label="tabby cat",
        top1_probability=0.7123456789012345,
        inference_ms=41.25,
        feedback=None,
        corrected_label=None,
        thumbnail=thumbnail,
        owner=None,
        public_id=stored.public_id,
    )
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", stored.public_id)
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.created_at == datetime(2024, 5, 6, 1, 38, 9, 123456, tzinfo=UTC)


def test_top_k_is_a_tuple_of_top_classes_stored_as_a_json_list(
    store: HistoryStore, raw: sa.Engine
) -> None:
    top_k = [TopClass("tabby cat", np.int64(281), np.float32(0.75)), TopClass("lynx", 287, 0.125)]
    record = make_record(top_k=top_k)
    assert record.top_k == tuple(top_k)

    record_id = store.add(record)

    with raw.connect() as conn:
        stored = conn.exec_driver_sql(f"SELECT top_k FROM predictions WHERE id = {record_id}")
        column = stored.scalar_one()
    assert (json.loads(column) if isinstance(column, str) else column) == [
        {"label": "tabby cat", "index": 281, "probability": 0.75},
        {"label": "lynx", "index": 287, "probability": 0.125},
    ]
    read = store.get(record_id).top_k
    assert read == (TopClass("tabby cat", 281, 0.75), TopClass("lynx", 287, 0.125))
    assert [type(value) for value in vars(read[0]).values()] == [str, int, float]


def test_record_extends_new_record_and_exports_its_fields_in_order() -> None:
    assert issubclass(Record, NewRecord)
    assert set(history.records.RECORD_FIELDS) == {f.name for f in fields(Record)}
    assert ",".join(history.records.EXPORT_FIELDS) == EXPORT_HEADER
    assert set(history.records.EXPORT_FIELDS) == set(history.records.RECORD_FIELDS) - {
        "thumbnail",
        "overlay",
        "owner",
        "job_id",
        "photo",
    }


def test_created_at_defaults_to_now_in_utc(store: HistoryStore) -> None:
    before = datetime.now(UTC)
    record_id = store.add(
        NewRecord("x.png", "00" * 32, 1, 1, "PNG", "mobilenet_v2", ranked("x", 0.5), 1.0)
    )

    stored = store.get(record_id)

    assert before <= stored.created_at <= datetime.now(UTC)
    assert stored.created_at.utcoffset() == timedelta(0)


def test_get_unknown_id_returns_none(store: HistoryStore) -> None:
    store.add(make_record())
    assert store.get(123456) is None


def test_thumbnail_is_optional_and_can_be_left_out_of_lists(store: HistoryStore) -> None:
    with_thumbnail = store.add(make_record(file_name="kept.jpg", thumbnail=b"\xff\xd8jpeg"))
    without = store.add(make_record(file_name="opted-out.jpg", thumbnail=None))

    assert store.get(with_thumbnail).thumbnail == b"\xff\xd8jpeg"
    assert store.get(without).thumbnail is None
    assert [r.thumbnail for r in store.find(sort="oldest")] == [b"\xff\xd8jpeg", None]
    assert [r.thumbnail for r in store.find(with_thumbnails=False)] == [None, None]


def test_add_many_returns_ids_in_order(store: HistoryStore) -> None:
    records = [make_record(file_name=f"{n}.jpg", thumbnail=bytes([n])) for n in range(5)]

    ids = store.add_many(records)

    assert [store.get(i).file_name for i in ids] == [f"{n}.jpg" for n in range(5)]
    assert [store.get(i).thumbnail for i in ids] == [bytes([n]) for n in range(5)]
    assert store.add_many([]) == []


def test_hostile_file_name_is_stored_and_exported_verbatim(store: HistoryStore) -> None:
    record_id = store.add(make_record(file_name=HOSTILE_NAME))

    assert store.get(record_id).file_name == HOSTILE_NAME
    assert store.count() == 1  # the table is still there

    csv_bytes = store.export_csv()
    assert HOSTILE_NAME.encode() in csv_bytes
    [row] = csv.DictReader(io.StringIO(csv_bytes.decode("utf-8")))
    assert row["file_name"] == HOSTILE_NAME

    json_bytes = store.export_json()
    assert HOSTILE_NAME.encode() in json_bytes
    assert json.loads(json_bytes)[0]["file_name"] == HOSTILE_NAME


# --- Filters, sorts, pages --------------------------------------------------------------

FILTER_CASES = {
    "nothing": (Filters(), "abcdef"),
    "label, any case, also corrected": (Filters(label="CAT"), "abd"),
    "corrected label only": (Filters(label="lynx"), "d"),
    "corrected label, other case": (Filters(label="egyptian"), "b"),
    "label with spaces around": (Filters(label="  retriever "), "c"),
    "one model": (Filters(models=("efficientnet_lite0",)), "def"),
    "both models": (Filters(models=("mobilenet_v2", "efficientnet_lite0")), "abcdef"),
    "unknown model": (Filters(models=("resnet50",)), ""),
    "min confidence, inclusive": (Filters(min_confidence=0.55), "abdf"),
    "max confidence, inclusive": (Filters(max_confidence=0.35), "ce"),
    "confidence range": (Filters(min_confidence=0.3, max_confidence=0.9), "bcd"),
    "start, inclusive": (Filters(start=T0 + timedelta(days=1)), "bcdef"),
    "end, exclusive": (Filters(end=T0 + timedelta(days=2)), "ab"),
    "range in another zone": (
        Filters(
            start=(T0 + timedelta(days=2)).astimezone(PLUS_TWO),
            end=(T0 + timedelta(days=4)).astimezone(PLUS_TWO),
        ),
        "cd",
    ),
    "rated correct": (Filters(feedback="correct"), "a"),
    "rated wrong": (Filters(feedback="wrong"), "bd"),
    "unrated": (Filters(feedback="unrated"), "cef"),
    "everything at once": (
        Filters(label="cat", models=("efficientnet_lite0",), feedback="wrong", min_confidence=0.8),
        "d",
    ),
}


@pytest.mark.parametrize(("filters", "expected"), FILTER_CASES.values(), ids=FILTER_CASES)
def test_each_filter_selects_the_expected_rows(
    store: HistoryStore, filters: Filters, expected: str
) -> None:
    seed(store)
    expected_names = sorted(f"{letter}.jpg" for letter in expected)

    assert store.count(filters) == len(expected_names)
    assert sorted(names(store.find(filters, limit=None))) == expected_names


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", "fedcba"),
        ("oldest", "abcdef"),
        ("confidence_desc", "fadbce"),
        ("confidence_asc", "ecbdaf"),
    ],
)
def test_sorts(store: HistoryStore, sort: str, expected: str) -> None:
    seed(store)
    assert names(store.find(sort=sort)) == [f"{letter}.jpg" for letter in expected]


def test_ties_are_broken_by_id(store: HistoryStore) -> None:
    ids = store.add_many(make_record(file_name=f"{n}.jpg") for n in range(3))

    assert [r.id for r in store.find(sort="newest")] == ids[::-1]
    assert [r.id for r in store.find(sort="oldest")] == ids
    assert [r.id for r in store.find(sort="confidence_desc")] == ids[::-1]
    assert [r.id for r in store.find(sort="confidence_asc")] == ids


def test_pages_cover_every_row_exactly_once(store: HistoryStore) -> None:
    store.add_many(
        make_record(file_name=f"{n}.jpg", created_at=T0 + timedelta(minutes=n)) for n in range(7)
    )

    pages = [names(store.find(sort="oldest", limit=3, offset=offset)) for offset in (0, 3, 6, 9)]

    assert pages == [["0.jpg", "1.jpg", "2.jpg"], ["3.jpg", "4.jpg", "5.jpg"], ["6.jpg"], []]
    filtered = Filters(start=T0 + timedelta(minutes=2))
    assert names(store.find(filtered, sort="newest", limit=2, offset=4)) == ["2.jpg"]


def add_labelled(store: HistoryStore, labels: dict[str, str], corrected_to: str) -> None:
    """Add one row per file name with its top-1 label, and "corrected.jpg" corrected_to a label."""
    for name, label in labels.items():
        store.add(make_record(file_name=name, top_k=ranked(label, 0.5)))
    corrected = store.add(make_record(file_name="corrected.jpg", top_k=ranked("plain", 0.5)))
    store.set_feedback(corrected, "wrong", corrected_to)


def test_label_search_matches_percent_and_underscore_literally(store: HistoryStore) -> None:
    # Unescaped, every search below would also match "plain.jpg".
    add_labelled(
        store,
        {"percent.jpg": "50% off", "underscore.jpg": "snake_case", "plain.jpg": "50x offexcase"},
        corrected_to="100%_real",
    )

    def found(text: str) -> list[str]:
        return sorted(names(store.find(Filters(label=text), limit=None)))

    assert found("%") == ["corrected.jpg", "percent.jpg"]
    assert found("_") == ["corrected.jpg", "underscore.jpg"]
    assert found("0% o") == ["percent.jpg"]
    assert found("e_c") == ["underscore.jpg"]
    assert found("%_") == ["corrected.jpg"]
    assert store.count(Filters(label="%")) == 2


def test_label_search_ignores_case_beyond_ascii(store: HistoryStore) -> None:
    """SQLite's LIKE knows ASCII case only; PostgreSQL's ILIKE knows every letter's."""
    labels = {
        "eclair.jpg": "Éclair",
        "lower.jpg": "éclair au café",
        "dog.jpg": "ПЁС",
        "gross.jpg": "GROẞ",
        "escaped.jpg": "é_x",
        "unescaped.jpg": "éax",
        "cat.jpg": "tabby CAT",
    }
    add_labelled(store, labels, corrected_to="Ça va")

    def found(text: str) -> list[str]:
        matches = sorted(names(store.find(Filters(label=text), limit=None)))
        assert store.count(Filters(label=text)) == len(matches)
        return matches

    assert found("é") == ["eclair.jpg", "escaped.jpg", "lower.jpg", "unescaped.jpg"]
    assert found("ÉCLAIR") == ["eclair.jpg", "lower.jpg"]
    assert found("éCLAIR AU") == ["lower.jpg"]
    assert found("пёс") == ["dog.jpg"]
    assert found("ß") == ["gross.jpg"]  # the capital ẞ is the same letter
    assert found("ça") == ["corrected.jpg"]  # the corrected label too
    assert found("é_") == ["escaped.jpg"]  # "_" is still literal on this path
    assert found("cat") == ["cat.jpg"]  # ASCII keeps the plain LIKE
    by_label = stats.count_by_label(store, Filters(label="É"))
    assert sorted(by_label["label"]) == sorted(["é_x", "éax", "éclair au café", "Éclair"])


def test_label_filter_is_cleaned_and_bounded() -> None:
    assert Filters(label="  tab\x00by\n ").label == "tabby"
    assert Filters(label="\x00\x01\t\r\n\x7f\x9f").label == ""
    assert Filters(label="cat\ud800").label == "cat"  # an unpaired surrogate encodes nowhere
    assert Filters(label="x" * 50_000).label == "x" * history.MAX_LABEL_LENGTH
    assert Filters(label="é" * 300).label == "é" * history.MAX_LABEL_LENGTH
    assert Filters(label="Éclair ß").label == "Éclair ß"  # letters and spaces stay
    with pytest.raises(ValueError, match="Expected the label filter as a string"):
        Filters(label=None)  # type: ignore[arg-type]


HOSTILE_SEARCHES = {
    "50,000 characters": ("x" * 50_000, ""),
    "50,000 accented": ("é" * 50_000, ""),
    "50,000 percent signs": ("%" * 50_000, ""),
    "a NUL": ("tab\x00by", "ad"),
    "only NUL": ("\x00", "abcdef"),
    "control characters": ("\x07ly\x1bnx\r\n", "d"),
    "a lone surrogate": ("retriever\udc00", "c"),
}


@pytest.mark.parametrize(("text", "expected"), HOSTILE_SEARCHES.values(), ids=HOSTILE_SEARCHES)
def test_any_filter_text_is_safe_for_every_query(
    store: HistoryStore, text: str, expected: str
) -> None:
    """SQLite refuses a LIKE pattern of 50,000 bytes, PostgreSQL a NUL: neither gets them."""
    seed(store)
    filters = Filters(label=text)
    expected_names = sorted(f"{letter}.jpg" for letter in expected)

    assert sorted(names(store.find(filters, limit=None))) == expected_names
    assert store.count(filters) == len(expected_names)
    assert len(json.loads(store.export_json(filters))) == len(expected_names)
    assert len(store.export_csv(filters).splitlines()) == 1 + len(expected_names)
    assert stats.count_by_label(store, filters)["count"].sum() == len(expected_names)
    assert stats.count_by_day(store, filters)["count"].sum() == len(expected_names)
    assert stats.count_by_confidence(store, filters)["count"].sum() == len(expected_names)
    stats.count_feedback_by_model(store, filters)


def test_a_model_filter_or_link_holding_a_nul_finds_nothing(store: HistoryStore) -> None:
    """No model's name nor public id holds a control character; PostgreSQL would refuse
    the query ("A string literal cannot contain NUL characters")."""
    seed(store)
    nul = Filters(models=("\x00", "mobilenet\x00"))
    assert (store.find(nul), store.count(nul)) == ([], 0)
    assert store.count(Filters(models=("\x00", "mobilenet_v2"))) == store.count(
        Filters(models=("mobilenet_v2",))
    )
    assert store.get_public("AAAAAAAAAAAAAAAA\x00") is None


def test_invalid_sort_and_filters_are_refused(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match=r"Expected sort to be one of .* Received: 'random'"):
        store.find(sort="random")
    with pytest.raises(ValueError, match=r"Expected feedback to be one of .* Received: 'maybe'"):
        Filters(feedback="maybe")
    with pytest.raises(ValueError, match=r"Expected a tuple of model names\. Received: 'mobilenet"):
        Filters(models="mobilenet_v2")
    with pytest.raises(ValueError, match="Expected a timezone-aware datetime for start"):
        Filters(start=datetime(2024, 1, 1))


def test_new_records_are_validated() -> None:
    with pytest.raises(ValueError, match="Expected a timezone-aware datetime for created_at"):
        make_record(created_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="Expected at least one entry in top_k"):
        make_record(top_k=[])
    low_first = [TopClass("a", 0, 0.1), TopClass("b", 1, 0.9)]
    with pytest.raises(ValueError, match=r"highest first. Received: \[0.1, 0.9\]"):
        make_record(top_k=low_first)
    as_dict = {"label": "a", "index": 0, "probability": 0.9}
    with pytest.raises(TypeError, match=r"Expected top_k to hold labels\.TopClass entries"):
        make_record(top_k=[as_dict])


# --- Changes: feedback, delete, clear ---------------------------------------------------


def test_feedback_and_corrected_label(store: HistoryStore) -> None:
    record_id = store.add(make_record())

    assert store.set_feedback(record_id, "wrong", "  lynx ")
    assert (store.get(record_id).feedback, store.get(record_id).corrected_label) == (
        "wrong",
        "lynx",
    )
    assert store.set_feedback(record_id, "correct")
    assert (store.get(record_id).feedback, store.get(record_id).corrected_label) == (
        "correct",
        None,
    )
    assert store.set_feedback(record_id, None)
    assert store.count(Filters(feedback="unrated")) == 1
    assert store.set_feedback(record_id + 1000, "correct") is False


def test_feedback_only_while_unreviewed_never_writes_over_a_review(store: HistoryStore) -> None:
    record_id = store.add(make_record())
    guarded = partial(store.set_feedback, only_unreviewed=True)

    assert guarded(record_id, "wrong")  # unrated: written; rated wrong without a correction
    assert guarded(record_id, "wrong", "lynx")  # still to review: the correction is written
    assert guarded(record_id, "correct") is False  # reviewed: left as it is
    assert guarded(record_id, "unusable") is False
    stored = store.get(record_id)
    assert (stored.feedback, stored.corrected_label) == ("wrong", "lynx")
    assert store.set_feedback(record_id, "correct")  # unguarded, as any page's own change


ONE_OF_THE_VALUES = "Expected feedback 'correct', 'wrong', 'unusable' or None."


@pytest.mark.parametrize(
    ("feedback", "corrected", "message"),
    [
        ("good", None, f"{ONE_OF_THE_VALUES} Received: 'good'"),
        ("Correct", None, f"{ONE_OF_THE_VALUES} Received: 'Correct'"),
        ("", None, f"{ONE_OF_THE_VALUES} Received: ''"),
        ("correct", "lynx", "Expected a corrected label only with feedback 'wrong'"),
        (None, "lynx", "Expected a corrected label only with feedback 'wrong'"),
        ("wrong", "x" * 201, "at most 200 characters. Received: 201 characters"),
    ],
)
def test_invalid_feedback_is_refused_and_changes_nothing(
    store: HistoryStore, feedback: str | None, corrected: str | None, message: str
) -> None:
    record_id = store.add(make_record())
    store.set_feedback(record_id, "wrong", "tiger cat")

    with pytest.raises(ValueError, match=re.escape(message)):
        store.set_feedback(record_id, feedback, corrected)

    stored = store.get(record_id)
    assert (stored.feedback, stored.corrected_label) == ("wrong", "tiger cat")


def test_delete_removes_exactly_the_given_ids(store: HistoryStore, raw: sa.Engine) -> None:
    ids = store.add_many(make_record(file_name=f"{n}.jpg", thumbnail=b"thumb") for n in range(5))

    assert store.delete([ids[1], ids[3], ids[4] + 1000]) == 2

    assert [r.id for r in store.find(sort="oldest")] == [ids[0], ids[2], ids[4]]
    assert store.get(ids[1]) is None
    with raw.connect() as conn:  # their thumbnails went with them
        kept = conn.exec_driver_sql("SELECT prediction_id FROM thumbnails ORDER BY 1").scalars()
        assert list(kept) == [ids[0], ids[2], ids[4]]
    assert store.delete([]) == 0
    assert store.count() == 3


def test_a_deleted_id_is_never_given_again(store: HistoryStore) -> None:
    # A page still showing a deleted prediction rates or deletes by its id: that id must
    # never name a newer prediction (SQLite by itself gives a deleted highest id again).
    ids = store.add_many(make_record(file_name=f"{n}.jpg") for n in range(3))
    store.delete([ids[2]])
    after_delete = store.add(make_record(file_name="after-delete.jpg"))
    removed = store.remove([after_delete, ids[1]])
    after_remove = store.add_many([make_record(file_name="a.jpg"), make_record(file_name="b.jpg")])
    store.restore(removed)  # back under their own ids
    store.clear()
    after_clear = store.add(make_record(file_name="after-clear.jpg"))

    given = [*ids, after_delete, *after_remove, after_clear]
    assert given == sorted(set(given))  # each new one above every one before it
    assert not store.set_feedback(ids[2], "correct")  # the deleted id names nothing
    assert store.get(after_clear).feedback is None


def test_an_undo_brings_back_feedback_given_while_the_delete_waited(store: HistoryStore) -> None:
    """A thumbs click saved in another tab while this one deletes the row: the undo brings
    the row back with it (the delete used to read the row before the click was in)."""
    [row_id] = store.add_many([make_record()])
    removed: list[history.Removed] = []
    with store.begin() as conn:  # the click, not yet committed
        conn.execute(
            sa.update(tables.predictions)
            .where(tables.predictions.c.id == row_id)
            .values(feedback="wrong", corrected_label="lynx")
        )
        deleting = threading.Thread(target=lambda: removed.append(store.remove([row_id])))
        deleting.start()
        deleting.join(0.5)  # the delete has read the row, or waits to
    deleting.join(60)
    assert store.get(row_id) is None
    assert store.restore(removed[0]) == 1
    back = store.get(row_id)
    assert (back.feedback, back.corrected_label) == ("wrong", "lynx")


def test_clear_deletes_everything(store: HistoryStore, raw: sa.Engine) -> None:
    seed(store)

    assert store.clear() == len(SEED)

    assert store.count() == 0
    assert store.find() == []
    with raw.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM thumbnails").scalar_one() == 0
    assert store.clear() == 0
    assert store.get(store.add(make_record())).file_name == "cat.jpg"


# --- Exports ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters", [Filters(), Filters(label="cat", feedback="wrong"), Filters(models=("none",))]
)
def test_exports_hold_exactly_the_filtered_rows(store: HistoryStore, filters: Filters) -> None:
    seed(store)
    store.add(make_record(file_name=UNICODE_NAME, created_at=T0 + timedelta(days=9)))
    expected = store.find(filters, limit=None)
    expected_rows = [
        {
            "id": r.id,
            "public_id": r.public_id,
            "created_at": r.created_at.isoformat(),
            "file_name": r.file_name,
            "sha256": r.sha256,
            "width": r.width,
            "height": r.height,
            "image_format": r.image_format,
            "model": r.model,
            "top_k": [c.as_dict() for c in r.top_k],
            "top1_label": r.top1_label,
            "top1_probability": r.top1_probability,
            "inference_ms": r.inference_ms,
            "feedback": r.feedback,
            "corrected_label": r.corrected_label,
            "has_photo": r.has_photo,
            "source": r.source,
        }
        for r in expected
    ]

    assert json.loads(store.export_json(filters)) == expected_rows

    text = store.export_csv(filters).decode("utf-8")
    assert text.splitlines()[0] == EXPORT_HEADER
    as_text = [
        {
            key: "" if value is None else json.dumps(value) if key == "top_k" else str(value)
            for key, value in row.items()
        }
        for row in expected_rows
    ]
    parsed = list(csv.DictReader(io.StringIO(text)))
    for row in parsed:
        row["top_k"] = json.dumps(json.loads(row["top_k"]))
    assert parsed == as_text


def test_exports_keep_unicode_and_timezone(store: HistoryStore) -> None:
    store.add(make_record(file_name=UNICODE_NAME, created_at=datetime(2024, 1, 2, 3, 4, 5, 6, UTC)))

    csv_bytes = store.export_csv()
    json_bytes = store.export_json()

    assert UNICODE_NAME.encode("utf-8") in csv_bytes
    assert UNICODE_NAME.encode("utf-8") in json_bytes
    assert b"2024-01-02T03:04:05.000006+00:00" in csv_bytes
    assert json.loads(json_bytes)[0]["created_at"] == "2024-01-02T03:04:05.000006+00:00"
    assert b"thumbnail" not in csv_bytes + json_bytes


def test_export_bytes_keep_their_format(store: HistoryStore) -> None:
    """The exact bytes earlier releases wrote; scripts may parse them."""
    top_k = (TopClass("tabby cat", 281, 0.75), TopClass("lynx", 287, 0.125))
    record_id = store.add(make_record(top_k=top_k))
    store.set_feedback(record_id, "wrong", "tiger cat")
    sha256 = make_record().sha256
    public_id = store.get(record_id).public_id

    assert (
        store.export_csv()
        == (
            f"{EXPORT_HEADER}\r\n"
            f"{record_id},{public_id},2024-03-01T12:00:00+00:00,cat.jpg,{sha256},640,480,JPEG,"
            "mobilenet_v2,"
            '"[{""label"": ""tabby cat"", ""index"": 281, ""probability"": 0.75}, '
            '{""label"": ""lynx"", ""index"": 287, ""probability"": 0.125}]",'
            "tabby cat,0.75,12.5,wrong,tiger cat,False,app\r\n"
        ).encode()
    )
    assert store.export_json().decode() == EXPORTED_JSON.format(
        id=record_id, public_id=public_id, sha256=sha256
    )


EXPORTED_JSON = """[
  {{
    "id": {id},
    "public_id": "{public_id}",
    "created_at": "2024-03-01T12:00:00+00:00",
    "file_name": "cat.jpg",
    "sha256": "{sha256}",
    "width": 640,
    "height": 480,
    "image_format": "JPEG",
    "model": "mobilenet_v2",
    "top_k": [
      {{
        "label": "tabby cat",
        "index": 281,
        "probability": 0.75
      }},
      {{
        "label": "lynx",
        "index": 287,
        "probability": 0.125
      }}
    ],
    "top1_label": "tabby cat",
    "top1_probability": 0.75,
    "inference_ms": 12.5,
    "feedback": "wrong",
    "corrected_label": "tiger cat",
    "has_photo": false,
    "source": "app"
  }}
]"""


FORMULAS = {
    "hyperlink.jpg": '=HYPERLINK("http://x","y")',
    "at.jpg": "@SUM(A1)",
    "plus.jpg": "+1+1.jpg",
    "minus.jpg": "-2.jpg",
    "tab.jpg": "\t=1+1",
    "cr.jpg": "\r=1+1",
}


def test_csv_export_never_holds_a_live_formula(store: HistoryStore) -> None:
    """Text cells that a spreadsheet would run get a leading quote; numbers stay numbers."""
    for name in FORMULAS.values():
        store.add(make_record(file_name=name, top_k=ranked("=cmd|' /C calc'!A0", 0.5)))
    wrong = store.add(make_record(file_name="ok.jpg", inference_ms=-2.5))
    store.set_feedback(wrong, "wrong", "-lynx")

    rows = list(csv.DictReader(io.StringIO(store.export_csv(sort="oldest").decode("utf-8"))))

    assert [row["file_name"] for row in rows] == [f"'{name}" for name in FORMULAS.values()] + [
        "ok.jpg"
    ]
    assert {row["top1_label"] for row in rows[:-1]} == {"'=cmd|' /C calc'!A0"}
    assert rows[-1]["corrected_label"] == "'-lynx"
    assert rows[-1]["inference_ms"] == "-2.5"  # a negative number is not a formula
    assert rows[-1]["top1_label"] == "tabby cat"
    assert json.loads(rows[0]["top_k"])[0]["label"] == "=cmd|' /C calc'!A0"  # a JSON cell


def test_json_export_keeps_formula_like_text_exactly(store: HistoryStore) -> None:
    for name in FORMULAS.values():
        store.add(make_record(file_name=name))
    records = store.find(sort="oldest", limit=None, with_thumbnails=False)
    expected = [history.records.to_export_row(record) for record in records]

    exported = store.export_json(sort="oldest")

    assert exported == json.dumps(expected, ensure_ascii=False, indent=2).encode("utf-8")
    assert [row["file_name"] for row in json.loads(exported)] == list(FORMULAS.values())


# --- Summary aggregates -----------------------------------------------------------------


def test_count_by_day_counts_utc_days_and_fills_gaps(store: HistoryStore) -> None:
    seed(store)

    by_day = stats.count_by_day(store)

    assert by_day["day"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-03-01",
        "2024-03-02",
        "2024-03-03",
        "2024-03-04",
        "2024-03-05",
    ]
    assert by_day["count"].tolist() == [1, 1, 2, 0, 2]
    assert pd.api.types.is_datetime64_dtype(by_day["day"])
    assert by_day["count"].dtype == "int64"

    filtered = stats.count_by_day(store, Filters(models=("mobilenet_v2",)))
    assert filtered["count"].tolist() == [1, 1, 1]
    assert stats.count_by_day(store, Filters(models=("none",))).empty


def test_count_by_label_gives_the_most_frequent_top1_labels(store: HistoryStore) -> None:
    seed(store)

    top = stats.count_by_label(store, top=2)

    assert top.to_dict("records") == [
        {"label": "tabby cat", "count": 2},
        {"label": "espresso", "count": 1},
    ]
    filtered = stats.count_by_label(store, Filters(feedback="unrated"))
    assert filtered.to_dict("records") == [
        {"label": "espresso", "count": 1},
        {"label": "golden retriever", "count": 1},
        {"label": "sports car", "count": 1},
    ]


def test_count_by_confidence_uses_bins_of_one_tenth(store: HistoryStore) -> None:
    seed(store)
    for probability in (0.0, 0.1, 0.3, 0.7, 0.9999):
        store.add(make_record(model="edges", top_k=ranked("edge", probability)))

    bins = stats.count_by_confidence(store)

    assert bins["bin_start"].tolist() == pytest.approx([i / 10 for i in range(10)])
    assert bins["bin_end"].tolist() == pytest.approx([(i + 1) / 10 for i in range(10)])
    # seed: 0.05, 0.35, 0.55, 0.85, 0.95, 1.0; edges: 0.0, 0.1, 0.3, 0.7, 0.9999
    assert bins["count"].tolist() == [2, 1, 0, 2, 0, 1, 0, 1, 1, 3]
    filtered = stats.count_by_confidence(store, Filters(models=("edges",)))
    assert filtered["count"].tolist() == [1, 1, 0, 1, 0, 0, 0, 1, 0, 1]


def test_count_feedback_by_model_measures_accuracy(store: HistoryStore) -> None:
    seed_ids = seed(store)

    accuracy = stats.count_feedback_by_model(store)

    assert accuracy.to_dict("records") == [
        {"model": "efficientnet_lite0", "rated": 1, "correct": 0, "share_correct": 0.0},
        {"model": "mobilenet_v2", "rated": 2, "correct": 1, "share_correct": 0.5},
    ]
    only_cats = stats.count_feedback_by_model(store, Filters(label="tabby"))
    assert only_cats.to_dict("records") == [
        {"model": "efficientnet_lite0", "rated": 1, "correct": 0, "share_correct": 0.0},
        {"model": "mobilenet_v2", "rated": 1, "correct": 1, "share_correct": 1.0},
    ]
    assert stats.count_feedback_by_model(store, Filters(feedback="unrated")).empty
    assert store.set_feedback(seed_ids["c.jpg"], "unusable")  # says nothing about the model
    assert stats.count_feedback_by_model(store).to_dict("records") == accuracy.to_dict("records")


def test_the_store_works_without_importing_pandas(tmp_path: Path) -> None:
    """Only history.stats imports pandas; the command line and saving never need it."""
    script = f"""
import sys
import classifier.history as history
from tests.helpers import make_record
assert "pandas" not in sys.modules
store = history.HistoryStore({f"sqlite:///{tmp_path / 'history.db'}"!r})
store.add(make_record())
assert store.count() == len(store.find(history.Filters(label="cat"))) == 1
assert store.export_csv() and store.export_json()
store.dispose()
assert "pandas" not in sys.modules, "the store imported pandas"
assert history.stats.count_by_day is not None
assert "pandas" in sys.modules
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


# --- Concurrency ------------------------------------------------------------------------


def test_threads_share_one_store(store: HistoryStore) -> None:
    threads, rows_each = 8, 50
    start = Barrier(threads)

    def insert_rows(thread: int) -> list[int]:
        start.wait(timeout=30)
        return [
            store.add(make_record(file_name=f"t{thread}-{n}.png", thumbnail=b"t"))
            for n in range(rows_each)
        ]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        ids = [i for batch in pool.map(insert_rows, range(threads)) for i in batch]

    assert len(set(ids)) == threads * rows_each
    assert store.count() == threads * rows_each
    assert store.count(Filters(label="tabby")) == threads * rows_each
    assert len(store.find(limit=None, with_thumbnails=True)) == threads * rows_each


WRITERS = 4
ROWS_PER_WRITER = 200


def _write_rows(
    url: str, writer: int, start: ProcessBarrier, reading: ProcessEvent, results: ProcessQueue
) -> None:
    """Process body: open a store on `url` with the others, then add 200 rows one by one."""
    try:
        start.wait(timeout=60)
        store = HistoryStore(url)
        reading.wait(timeout=60)  # write only while the reader is reading
        ids = [
            store.add(make_record(file_name=f"w{writer}-{n}.png", thumbnail=b"w"))
            for n in range(ROWS_PER_WRITER)
        ]
        store.dispose()
        results.put(("writer", ids, None))
    except BaseException:
        results.put(("writer", [], traceback.format_exc()))


def _read_rows(
    url: str,
    start: ProcessBarrier,
    reading: ProcessEvent,
    done: ProcessEvent,
    results: ProcessQueue,
) -> None:
    """Process body: count and find in `url` again and again until the writers are done."""
    try:
        start.wait(timeout=60)
        store = HistoryStore(url)
        counts = []
        while not done.is_set():
            counts.append(store.count())
            page = store.find(limit=20)
            assert len(page) >= min(20, counts[-1])
            reading.set()
        store.dispose()
        results.put(("reader", counts, None))
    except BaseException:
        reading.set()
        results.put(("reader", [], traceback.format_exc()))


@pytest.mark.slow  # four processes each import the app's modules: about 4 s
def test_processes_write_while_another_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared' / 'history.db'}"  # created by whichever is first
    spawn = multiprocessing.get_context("spawn")
    start, reading, done = spawn.Barrier(WRITERS + 1), spawn.Event(), spawn.Event()
    results = spawn.Queue()
    processes = [
        spawn.Process(target=_write_rows, args=(url, n, start, reading, results))
        for n in range(WRITERS)
    ]
    processes.append(spawn.Process(target=_read_rows, args=(url, start, reading, done, results)))
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=120) for _ in range(WRITERS)]
        done.set()
        outcomes.append(results.get(timeout=60))
        for process in processes:
            process.join(timeout=30)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()

    assert [error for _, _, error in outcomes if error] == []
    assert [process.exitcode for process in processes] == [0] * len(processes)
    written = [i for role, ids, _ in outcomes if role == "writer" for i in ids]
    [counts] = [values for role, values, _ in outcomes if role == "reader"]
    assert len(set(written)) == WRITERS * ROWS_PER_WRITER
    assert counts and counts == sorted(counts) and counts[-1] <= WRITERS * ROWS_PER_WRITER
    store = HistoryStore(url)
    try:
        assert store.count() == WRITERS * ROWS_PER_WRITER
        assert {r.id for r in store.find(limit=None, with_thumbnails=False)} == set(written)
    finally:
        store.dispose()


# --- Size -------------------------------------------------------------------------------

BIG = 100_000


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HistoryStore]:
    """A SQLite history of 100,000 predictions, filled straight through sqlite3 (fast)."""
    path = tmp_path_factory.mktemp("big") / "history.db"
    store = HistoryStore(f"sqlite:///{path}")
    start = datetime(2024, 1, 1)
    models = ("mobilenet_v2", "efficientnet_lite0")

    def values(n: int) -> tuple:
        probability = (n % 1000) / 1000
        label = f"label {n % 500}"
        top_k = json.dumps([{"label": label, "index": n % 1000, "probability": probability}])
        return (
            (start + timedelta(seconds=n)).strftime("%Y-%m-%d %H:%M:%S.%f"),
            f"img_{n}.jpg",
            "ab" * 32,
            models[n % 2],
            top_k,
            label,
            probability,
            "correct" if n % 50 == 0 else None,
        )

    with closing(sqlite3.connect(path)) as conn, conn:
        conn.executemany(
            "INSERT INTO predictions (created_at, file_name, sha256, width, height,"
            " image_format, model, top_k, top1_label, top1_probability, inference_ms,"
            " feedback) VALUES (?, ?, ?, 640, 480, 'JPEG', ?, ?, ?, ?, 12.0, ?)",
            (values(n) for n in range(BIG)),
        )
        conn.executemany(
            "INSERT INTO thumbnails (prediction_id, image) VALUES (?, ?)",
            ((n, b"t" * 2000) for n in range(1, BIG + 1, 10)),
        )
    # The rows read back like the store's own: same text format for created_at.
    assert store.get(1).created_at == datetime(2024, 1, 1, tzinfo=UTC)
    yield store
    store.dispose()


@pytest.mark.parametrize(
    ("filters", "sort", "expected"),
    [
        # "label 7" and "label 70" to "label 79", 200 rows each
        (Filters(label="label 7"), "newest", 11 * 200),
        (Filters(models=("mobilenet_v2",), min_confidence=0.5), "confidence_desc", 25_000),
        (Filters(label="LABEL 49", feedback="unrated"), "newest", 11 * 200),
        (Filters(label="no such label"), "confidence_asc", 0),
        (Filters(feedback="correct"), "oldest", BIG // 50),
        (
            Filters(
                start=datetime(2024, 1, 1, 6, tzinfo=UTC), end=datetime(2024, 1, 1, 12, tzinfo=UTC)
            ),
            "confidence_desc",
            6 * 3600,
        ),
    ],
)
def test_count_and_a_page_of_100000_rows(
    big_store: HistoryStore, filters: Filters, sort: str, expected: int
) -> None:
    """Correct counts and pages at scale; benchmarks/page.py times these queries."""
    count = big_store.count(filters)
    page = big_store.find(filters, sort=sort, limit=50, offset=50)

    assert count == expected
    assert len(page) == min(50, max(0, expected - 50))
    first_two_pages = big_store.find(filters, sort=sort, limit=100)
    assert page == first_two_pages[50:]
    keys = [
        (r.top1_probability if sort.startswith("confidence") else r.created_at, r.id)
        for r in first_two_pages
    ]
    assert keys == sorted(keys, reverse=sort in ("newest", "confidence_desc"))


def test_csv_export_can_name_each_model_for_people(store: HistoryStore) -> None:
    store.add(make_record(model="efficientnet_lite0"))
    text = store.export_csv(model_title={"efficientnet_lite0": "EfficientNet-Lite0"}.get)
    [row] = csv.DictReader(io.StringIO(text.decode("utf-8")))
    header = text.decode("utf-8").splitlines()[0].split(",")
    assert header[header.index("model") + 1] == "model_title"
    assert (row["model_title"], row["top1_label"], row["top1_probability"]) == (
        "EfficientNet-Lite0",
        "tabby cat",
        "0.8",
    )


KILL_WRITER = """
import sys
from classifier.history import HistoryStore
from tests.helpers import make_record
store = HistoryStore(sys.argv[1])
while True:  # batches of five, each in one transaction, until killed
    store.add_many([make_record(file_name=f"{n}.jpg") for n in range(5)])
    print(store.count(), flush=True)
"""


@pytest.mark.slow  # a writer process imports the app's modules
def test_a_writer_killed_mid_save_loses_no_saved_row_and_no_batch_half(database_url: str) -> None:
    import signal

    writer = subprocess.Popen(
        [sys.executable, "-c", KILL_WRITER, database_url],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        saved = [int(writer.stdout.readline()) for _ in range(20)]  # 20 committed batches
    finally:
        writer.send_signal(signal.SIGKILL)  # mid-way through some later save
        writer.wait(timeout=30)
    store = HistoryStore(database_url)
    try:
        count = store.count()
        assert count >= saved[-1]  # every reported save survived
        assert count % 5 == 0  # a batch is all there or not at all
        if database_url.startswith("sqlite"):
            with store._engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        store.dispose()


def test_counts_per_hour_fill_the_empty_hours(store: HistoryStore) -> None:
    from classifier.history import stats

    day = datetime(2024, 3, 1, tzinfo=UTC)
    store.add_many(
        [
            make_record(created_at=day.replace(hour=9, minute=5)),
            make_record(created_at=day.replace(hour=12, minute=59)),
            make_record(created_at=day.replace(hour=12, minute=1)),
        ]
    )
    frame = stats.count_by_hour(store)
    assert [t.hour for t in frame["hour"]] == [9, 10, 11, 12]
    assert list(frame["count"]) == [1, 0, 0, 2]


def test_a_public_id_is_exported_as_links_use_it(store: HistoryStore) -> None:
    """Ids of letters, digits, "-" and "_" cannot make a formula: one starting with "-"
    (as rows made before ids avoided it may) is written as it is, not quoted."""
    record_id = store.add(make_record(file_name="-starts-with-a-dash.jpg"))
    with store.begin() as conn:
        conn.execute(
            sa.update(tables.predictions)
            .where(tables.predictions.c.id == record_id)
            .values(public_id="-AbC_dEf0123456789xyzw")
        )
    (row,) = csv.DictReader(io.StringIO(store.export_csv().decode("utf-8")))
    assert row["public_id"] == "-AbC_dEf0123456789xyzw"
    assert row["file_name"] == "'-starts-with-a-dash.jpg"  # a name someone chose still is
    assert not any(tables.new_public_id().startswith("-") for _ in range(2000))
