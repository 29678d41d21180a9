"""Tests for the prediction history store, on SQLite and (when configured) PostgreSQL.

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
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing.queues import Queue as ProcessQueue
from multiprocessing.synchronize import Barrier as ProcessBarrier
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path
from threading import Barrier

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from classifier import history
from classifier.history import Filters, HistoryError, HistoryStore, NewRecord, Record, stats
from classifier.labels import TopClass
from tests.conftest import ROOT, with_psycopg
from tests.helpers import RECORD_TIME, make_record, ranked

HOSTILE_NAME = "'); DROP TABLE predictions;-- <b>x</b> [y](javascript:z).png"
UNICODE_NAME = "Фото кота 猫の写真 🐱 café\u0301 ﬁle.HEIC"
T0 = RECORD_TIME  # make_record's created_at
PLUS_TWO = timezone(timedelta(hours=2))
EXPORT_HEADER = (
    "id,created_at,file_name,sha256,width,height,image_format,model,top_k,"
    "top1_label,top1_probability,inference_ms,feedback,corrected_label"
)


# --- Backends ---------------------------------------------------------------------------


@pytest.fixture
def open_store(database_url: str) -> Iterator[Callable[..., HistoryStore]]:
    """Open stores on the test database (any HistoryStore class); close them afterwards."""
    stores: list[HistoryStore] = []

    def open_(store_class: type[HistoryStore] = HistoryStore) -> HistoryStore:
        store = store_class(database_url)
        stores.append(store)
        return store

    yield open_
    for store in stores:
        store.dispose()


@pytest.fixture
def store(open_store: Callable[..., HistoryStore]) -> HistoryStore:
    return open_store()


@pytest.fixture
def raw(database_url: str) -> Iterator[sa.Engine]:
    """An engine that bypasses the store, to arrange and inspect the database."""
    engine = sa.create_engine(with_psycopg(make_url(database_url)))
    yield engine
    engine.dispose()


# --- Data -------------------------------------------------------------------------------


# name: (model, top-1 label, probability, created_at, feedback, corrected label)
SEED = {
    "a.jpg": ("mobilenet_v2", "tabby cat", 0.95, T0, "correct", None),
    "b.jpg": ("mobilenet_v2", "tiger cat", 0.55, T0 + timedelta(days=1), "wrong", "Egyptian cat"),
    "c.jpg": ("mobilenet_v2", "golden retriever", 0.35, T0 + timedelta(days=2), None, None),
    # 01:30 at UTC+2 is 23:30 UTC the day before: it belongs to March 3.
    "d.jpg": (
        "efficientnet_lite0",
        "tabby cat",
        0.85,
        datetime(2024, 3, 4, 1, 30, tzinfo=PLUS_TWO),
        "wrong",
        "lynx",
    ),
    "e.jpg": ("efficientnet_lite0", "espresso", 0.05, T0 + timedelta(days=4), None, None),
    "f.jpg": ("efficientnet_lite0", "sports car", 1.0, T0 + timedelta(days=4, hours=1), None, None),
}


def seed(store: HistoryStore) -> dict[str, int]:
    """Add the SEED predictions with their feedback; return their ids by file name."""
    ids = {}
    for name, (model, label, probability, created_at, feedback, corrected) in SEED.items():
        record = make_record(
            file_name=name,
            model=model,
            top_k=ranked(label, probability),
            created_at=created_at,
            thumbnail=name.encode(),
        )
        ids[name] = store.add(record)
        if feedback:
            assert store.set_feedback(ids[name], feedback, corrected)
    return ids


def names(records: list[Record]) -> list[str]:
    return [record.file_name for record in records]


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
        "public_id",
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


@pytest.mark.parametrize(
    ("feedback", "corrected", "message"),
    [
        ("good", None, "Expected feedback 'correct', 'wrong' or None. Received: 'good'"),
        ("Correct", None, "Expected feedback 'correct', 'wrong' or None. Received: 'Correct'"),
        ("", None, "Expected feedback 'correct', 'wrong' or None. Received: ''"),
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

    assert (
        store.export_csv()
        == (
            f"{EXPORT_HEADER}\r\n"
            f"{record_id},2024-03-01T12:00:00+00:00,cat.jpg,{sha256},640,480,JPEG,mobilenet_v2,"
            '"[{""label"": ""tabby cat"", ""index"": 281, ""probability"": 0.75}, '
            '{""label"": ""lynx"", ""index"": 287, ""probability"": 0.125}]",'
            "tabby cat,0.75,12.5,wrong,tiger cat\r\n"
        ).encode()
    )
    assert store.export_json().decode() == EXPORTED_JSON.format(id=record_id, sha256=sha256)


EXPORTED_JSON = """[
  {{
    "id": {id},
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
    "corrected_label": "tiger cat"
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
    seed(store)

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


# --- Schema versions --------------------------------------------------------------------

CURRENT_VERSION = 1 + len(HistoryStore.migrations)

# Version 1 exactly as released, written out by hand: if the tables in
# classifier/history/schema.py change without a migration, opening this fails.
V1_SCHEMA = """
CREATE TABLE predictions (
    id {id_type} NOT NULL PRIMARY KEY,
    created_at {timestamp} NOT NULL,
    file_name TEXT NOT NULL,
    sha256 VARCHAR(64) NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    image_format TEXT NOT NULL,
    model TEXT NOT NULL,
    top_k JSON NOT NULL,
    top1_label TEXT NOT NULL,
    top1_probability FLOAT NOT NULL,
    inference_ms FLOAT NOT NULL,
    feedback TEXT,
    corrected_label TEXT,
    CONSTRAINT ck_predictions_feedback CHECK (feedback IN ('correct', 'wrong'))
);
CREATE INDEX ix_predictions_newest ON predictions
    (created_at, id, top1_probability, model, feedback, top1_label, corrected_label);
CREATE INDEX ix_predictions_confidence ON predictions
    (top1_probability, id, created_at, model, feedback, top1_label, corrected_label);
CREATE TABLE thumbnails (
    prediction_id INTEGER NOT NULL PRIMARY KEY,
    image {blob} NOT NULL,
    FOREIGN KEY (prediction_id) REFERENCES predictions (id) ON DELETE CASCADE
);
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (1)
"""
V1_TYPES = {
    "sqlite": {"id_type": "INTEGER", "timestamp": "DATETIME", "blob": "BLOB"},
    "postgresql": {"id_type": "SERIAL", "timestamp": "TIMESTAMP WITH TIME ZONE", "blob": "BYTEA"},
}
# How version 1 stores 2024-03-01 12:00 UTC on each backend.
V1_TIMESTAMPS = {
    "sqlite": "2024-03-01 12:00:00.000000",
    "postgresql": "2024-03-01 12:00:00.000000+00",
}
V1_TOP_K = '[{"label": "tabby cat", "index": 281, "probability": 0.9}]'


def create_version_1_database(raw: sa.Engine) -> list[int]:
    """Build a version-1 history with raw SQL, with two rows; return their ids."""
    backend = raw.dialect.name
    insert_row = sa.text(
        "INSERT INTO predictions (created_at, file_name, sha256, width, height, image_format,"
        " model, top_k, top1_label, top1_probability, inference_ms, feedback, corrected_label)"
        " VALUES (:created_at, :file_name, :sha256, 10, 20, 'PNG', 'mobilenet_v2', :top_k,"
        " 'tabby cat', 0.9, 3.5, :feedback, :corrected_label)"
    )
    with raw.begin() as conn:
        for statement in V1_SCHEMA.format(**V1_TYPES[backend]).split(";"):
            conn.exec_driver_sql(statement)
        for file_name, feedback, corrected_label in [
            ("old.png", None, None),
            (HOSTILE_NAME, "wrong", "lynx"),
        ]:
            conn.execute(
                insert_row,
                {
                    "created_at": V1_TIMESTAMPS[backend],
                    "file_name": file_name,
                    "sha256": "cd" * 32,
                    "top_k": V1_TOP_K,
                    "feedback": feedback,
                    "corrected_label": corrected_label,
                },
            )
        ids = list(conn.exec_driver_sql("SELECT id FROM predictions ORDER BY id").scalars())
        conn.execute(
            sa.text("INSERT INTO thumbnails (prediction_id, image) VALUES (:id, :image)"),
            {"id": ids[0], "image": b"\x89PNG old"},
        )
    return ids


def stored_version(raw: sa.Engine) -> int:
    with raw.connect() as conn:
        return conn.exec_driver_sql("SELECT version FROM schema_version").scalar_one()


def test_opens_a_version_1_database_with_rows_intact(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    old_id, hostile_id = create_version_1_database(raw)

    store = open_store()

    old = store.get(old_id)
    assert old == Record(
        id=old_id,
        created_at=T0,
        file_name="old.png",
        sha256="cd" * 32,
        width=10,
        height=20,
        image_format="PNG",
        model="mobilenet_v2",
        top_k=(TopClass("tabby cat", 281, 0.9),),
        top1_label="tabby cat",
        top1_probability=0.9,
        inference_ms=3.5,
        feedback=None,
        corrected_label=None,
        thumbnail=b"\x89PNG old",
        owner=None,
        public_id=old.public_id,
    )
    hostile = store.get(hostile_id)
    assert (hostile.file_name, hostile.feedback, hostile.corrected_label) == (
        HOSTILE_NAME,
        "wrong",
        "lynx",
    )
    assert store.count(Filters(label="lynx")) == 1
    new_id = store.add(make_record())
    assert new_id not in (old_id, hostile_id)
    assert store.count() == 3
    assert stored_version(raw) == CURRENT_VERSION


def describe_schema(raw: sa.Engine) -> dict:
    """Everything about the tables that a schema change could alter."""
    inspector = sa.inspect(raw)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(table)
            ],
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign keys": [
                (fk["constrained_columns"], fk["referred_table"], fk["options"])
                for fk in inspector.get_foreign_keys(table)
            ],
            "indexes": sorted(
                (index["name"], index["column_names"], index["unique"])
                for index in inspector.get_indexes(table)
            ),
            "checks": sorted(
                (check["name"], check["sqltext"])
                for check in inspector.get_check_constraints(table)
            ),
        }
        for table in sorted(inspector.get_table_names())
    }


def test_an_upgraded_version_1_database_matches_a_new_one(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    open_store().dispose()
    new = describe_schema(raw)
    with raw.begin() as conn:
        # Every table a version-1 database did not have, too.
        tables = ("overlays", "thumbnails", "predictions", "schema_version")
        tables += ("model_files", "models", "people")
        for table in tables:
            conn.exec_driver_sql(f"DROP TABLE {table}")
    create_version_1_database(raw)

    open_store()

    assert describe_schema(raw) == new
    assert set(new) == set(tables)


def test_a_registered_migration_runs_once_and_keeps_rows(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    runs = []

    def add_note_column(conn: sa.Connection) -> None:
        runs.append(conn.exec_driver_sql("SELECT version FROM schema_version").scalar_one())
        conn.exec_driver_sql("ALTER TABLE predictions ADD COLUMN test_note TEXT")

    class StoreV2(HistoryStore):
        migrations = (*HistoryStore.migrations, add_note_column)

    first = open_store()
    ids = seed(first)
    before = [first.get(i) for i in ids.values()]

    upgraded = open_store(StoreV2)
    open_store(StoreV2)

    assert runs == [CURRENT_VERSION]
    assert upgraded.schema_version == CURRENT_VERSION + 1
    assert stored_version(raw) == CURRENT_VERSION + 1
    assert [upgraded.get(i) for i in ids.values()] == before
    with raw.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(test_note) FROM predictions").scalar_one() == 0
    newer = f"schema version {CURRENT_VERSION + 1}; this version reads up to {CURRENT_VERSION}"
    with pytest.raises(HistoryError, match=newer):
        open_store()


def test_a_failing_migration_changes_nothing(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    def half_done(conn: sa.Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE predictions ADD COLUMN test_note TEXT")
        raise RuntimeError("step failed halfway")

    class BrokenStore(HistoryStore):
        migrations = (*HistoryStore.migrations, half_done)

    ids = seed(open_store())

    with pytest.raises(RuntimeError, match="step failed halfway"):
        open_store(BrokenStore)

    assert stored_version(raw) == CURRENT_VERSION
    assert "test_note" not in {
        column["name"] for column in sa.inspect(raw).get_columns("predictions")
    }
    assert open_store().count() == len(ids)


def test_a_newer_database_is_refused_with_a_clear_error(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    seed(open_store())
    with raw.begin() as conn:
        conn.exec_driver_sql("UPDATE schema_version SET version = 99")

    with pytest.raises(HistoryError) as error:
        open_store()

    assert str(error.value) == (
        "This history database was written by a newer version of the app (schema version 99; "
        f"this version reads up to {CURRENT_VERSION}). Upgrade the app, or set "
        "CLASSIFIER_DATABASE_URL to another database."
    )
    assert stored_version(raw) == 99


def test_a_foreign_predictions_table_is_refused(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    with raw.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE predictions (name TEXT)")

    with pytest.raises(HistoryError, match="no schema version, so it was not created by this app"):
        open_store()


# --- URLs -------------------------------------------------------------------------------


def test_sqlite_file_and_directory_are_created_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "new" / "nested" / "history.db"
    store = HistoryStore(f"sqlite:///{path}")
    try:
        store.add(make_record())
        assert path.is_file()
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        store.dispose()


def test_switching_to_wal_retries_while_another_connection_holds_the_file() -> None:
    """SQLite may refuse at once, without waiting, when new stores open together."""

    def error(code: int) -> sqlite3.OperationalError:
        refused = sqlite3.OperationalError("database is locked")
        refused.sqlite_errorcode = code
        return refused

    class Cursor:
        def __init__(self, *errors: sqlite3.OperationalError) -> None:
            self.errors, self.calls = list(errors), 0

        def execute(self, sql: str) -> None:
            self.calls += 1
            if self.errors:
                raise self.errors.pop(0)

    busy_then_ok = Cursor(error(sqlite3.SQLITE_BUSY), error(sqlite3.SQLITE_BUSY_RECOVERY))
    history.schema._switch_to_wal(busy_then_ok)
    assert busy_then_ok.calls == 3
    with pytest.raises(sqlite3.OperationalError):
        history.schema._switch_to_wal(Cursor(error(sqlite3.SQLITE_IOERR)))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://user:s3cret@db.example/history", "Expected a sqlite:/// or postgresql://"),
        ("sqlite://", "Expected a SQLite database file"),
        ("sqlite:///:memory:", "Expected a SQLite database file"),
    ],
)
def test_unsupported_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        HistoryStore(url)
    assert isinstance(error.value, history.HistoryURLError)
    assert "s3cret" not in str(error.value)


MALFORMED = "The history database URL is malformed; check CLASSIFIER_DATABASE_URL or "
# URL: the pieces of its password that no message may hold, and whether it parses
# (if not, no part of it is ever logged, not even masked).
BAD_URLS = {
    "postgresql://user:p@ss:w0rd@127.0.0.1:5432/db": (("p@ss", "w0rd", "ss:w0rd"), False),
    "postgresql://u:PW123@x@127.0.0.1:1/db": (("PW123", "x@127"), False),
    "postgresql://u:x@PW123@127.0.0.1:1/db": (("PW123", "x@PW"), False),
    "postgresql://u:ab@c/d@127.0.0.1:1/db": (("ab@c", "c/d", "d@127"), False),
    "postgresql://u:ab@c?d@127.0.0.1:1/db": (("ab@c", "c?d", "d@127"), False),
    "postgresql://u@h:port/db": ((), False),
    "postgresql://u:s3cret@127.0.0.1:5432x/db": (("s3cret",), False),
    "not a url at all: s3cret": (("s3cret",), False),
    "nonsense://": ((), True),
    "mysql://x": ((), True),
    "mysql://user:s3cret@db.example/history": (("s3cret",), True),
    "postgresql+nosuchdriver://u:s3cret@127.0.0.1:1/db": (("s3cret",), True),
}


@pytest.mark.parametrize(("url", "secrets", "parses"), [(u, *v) for u, v in BAD_URLS.items()])
def test_a_malformed_url_is_refused_without_quoting_it(
    url: str, secrets: tuple[str, ...], parses: bool
) -> None:
    with pytest.raises(history.HistoryURLError) as error:
        HistoryStore(url)

    message = str(error.value)
    assert message.startswith(MALFORMED)
    assert isinstance(error.value, ValueError)  # as before, for callers that catch that
    shown = [
        message,
        history.public_message(error.value),
        history.public_message(error.value, url=url, detail=True),
        history.log_message(error.value, url),
    ]
    assert [piece for piece in secrets for text in shown if piece in text] == []
    assert (history.masked_url(url) is not None) == parses
    if not parses:
        assert url not in shown[-1] and "(URL not shown: it cannot be parsed)" in shown[-1]


def test_messages_about_a_reachable_url_mask_its_password() -> None:
    # Percent-encoded, "p@ss:w0rd" parses; port 1 on this machine refuses at once.
    url = "postgresql://user:p%40ss%3Aw0rd@127.0.0.1:1/db?sslpassword=k3y"
    with pytest.raises(sa.exc.OperationalError) as error:
        HistoryStore(url)

    public = history.public_message(error.value)
    detailed = history.public_message(error.value, url=url, detail=True)
    logged = history.log_message(error.value, url)

    assert public == (
        "The history database cannot be reached (OperationalError); the server log has the details."
    )
    assert detailed.startswith("The history database cannot be reached (OperationalError: ")
    assert "Connection refused" in detailed and "\n" not in detailed
    assert "postgresql://user:***@127.0.0.1:1/db?sslpassword=***" in logged
    assert "Connection refused" in logged
    for text in (public, detailed, logged):
        assert not [s for s in ("p@ss", "w0rd", "p%40ss", "k3y") if s in text]
    # Should a driver ever repeat the password, it is masked there too.
    echoed = RuntimeError("login as user with p@ss:w0rd or p%40ss%3Aw0rd failed")
    assert "w0rd" not in history.log_message(echoed, url)
    assert "w0rd" not in history.public_message(echoed, url=url, detail=True)


def test_a_failed_query_is_a_sentence_without_its_sql() -> None:
    failed = sa.exc.DataError(
        "SELECT id FROM predictions WHERE top1_label LIKE %(needle)s",
        {"needle": "%tab\x00by%"},
        ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
    )
    for text in (history.public_message(failed), history.public_message(failed, detail=True)):
        assert text.startswith("The history database could not answer (DataError")
        assert "SELECT" not in text and "needle" not in text and "by%" not in text
    assert "SELECT id FROM predictions" in history.log_message(failed, "sqlite:///x.db")


# --- Read-only --------------------------------------------------------------------------


def test_a_read_only_store_reads_everything_and_writes_nothing(
    store: HistoryStore, open_store: Callable[..., HistoryStore], database_url: str
) -> None:
    ids = seed(store)
    before = store.export_json()

    reader = HistoryStore(database_url, read_only=True)
    try:
        assert reader.read_only
        assert reader.export_json() == before
        assert reader.count(Filters(label="cat")) == 3
        assert stats.count_by_label(reader)["count"].sum() == len(SEED)
        for write in (
            lambda: reader.add(make_record()),
            lambda: reader.set_feedback(ids["a.jpg"], "wrong"),
            lambda: reader.delete([ids["a.jpg"]]),
            reader.clear,
        ):
            with pytest.raises(history.HistoryReadOnlyError, match="open read-only"):
                write()
        # Not only the store refuses: the connection itself cannot write.
        with pytest.raises(sa.exc.DBAPIError), reader._engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM predictions")
    finally:
        reader.dispose()
    assert store.export_json() == before


def test_a_read_only_store_needs_the_tables(database_url: str, raw: sa.Engine) -> None:
    with raw.begin() as conn:  # a database, but not a history
        conn.exec_driver_sql("CREATE TABLE other (x INTEGER)")
    with pytest.raises(HistoryError, match="holds no prediction history yet"):
        HistoryStore(database_url, read_only=True)


def test_a_missing_sqlite_file_is_not_created_read_only(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "history.db"
    with pytest.raises(
        HistoryError, match=f"There is no history database at {re.escape(str(path))}"
    ):
        HistoryStore(f"sqlite:///{path}", read_only=True)
    assert not path.parent.exists()


def test_an_export_of_an_empty_sqlite_file_creates_the_tables_as_before(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.touch()  # e.g. created by hand: no tables yet, which only a writer can add

    store = HistoryStore.open_readable(f"sqlite:///{path}", prefer_read_only=True)
    try:
        assert not store.read_only
        assert store.export_json() == b"[]"
    finally:
        store.dispose()


def cannot_open() -> sqlite3.OperationalError:
    """What SQLite says when it cannot open a file (or a -wal file without its -shm)."""
    error = sqlite3.OperationalError("unable to open database file")
    error.sqlite_errorcode = sqlite3.SQLITE_CANTOPEN
    return error


def no_side_files() -> sqlite3.OperationalError:
    """What SQLite says, also with mode=ro, when it cannot create the -wal and -shm files.

    Seen as a user other than root, in a folder that user cannot write.
    """
    error = sqlite3.OperationalError("attempt to write a readonly database")
    error.sqlite_errorcode = sqlite3.SQLITE_READONLY_DIRECTORY
    return error


@pytest.fixture
def read_only_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite history with rows, in a folder that this process then cannot write.

    The tests run as root, whom chmod does not stop, so the folder is simulated:
    writable() says no, and switching a connection to WAL fails the way SQLite
    does when it cannot create the -wal and -shm files beside the database.
    """
    path = tmp_path / "history.db"
    writer = HistoryStore(f"sqlite:///{path}")
    seed(writer)
    writer.dispose()

    def no_wal_files(cursor: object) -> None:
        raise no_side_files()

    monkeypatch.setattr(history.schema, "_switch_to_wal", no_wal_files)
    monkeypatch.setattr(history.schema, "_is_writable", lambda p: not p.is_relative_to(tmp_path))
    return path


def test_a_history_in_a_read_only_folder_is_opened_read_only(read_only_folder: Path) -> None:
    url = f"sqlite:///{read_only_folder}"
    content = read_only_folder.read_bytes()

    with pytest.raises(history.HistoryReadOnlyError) as error:
        HistoryStore(url)
    assert str(error.value).startswith(
        f"The history database folder {read_only_folder.parent} is read-only; "
        "predictions cannot be saved, changed or deleted there."
    )

    for prefer_read_only in (False, True):
        store = HistoryStore.open_readable(url, prefer_read_only=prefer_read_only)
        try:
            assert store.read_only
            assert sorted(names(store.find(limit=None))) == sorted(SEED)
            with pytest.raises(history.HistoryReadOnlyError):
                store.add(make_record())
        finally:
            store.dispose()
    assert read_only_folder.read_bytes() == content


def test_a_read_only_file_that_sqlite_opens_quietly_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite opens a file it may not write read-only without a word; the store says so."""
    path = tmp_path / "history.db"
    writer = HistoryStore(f"sqlite:///{path}")
    seed(writer)
    writer.dispose()
    monkeypatch.setattr(history.schema, "_is_writable", lambda p: p != path)

    with pytest.raises(history.HistoryReadOnlyError) as error:
        HistoryStore(f"sqlite:///{path}")
    assert str(error.value).startswith(f"The history database file {path} is read-only; ")

    store = HistoryStore.open_readable(f"sqlite:///{path}")
    assert store.read_only and store.count() == len(SEED)
    store.dispose()


def test_a_read_only_folder_with_writable_side_files_can_still_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "history.db"
    monkeypatch.setattr(history.schema, "_is_writable", lambda p: p != tmp_path)
    assert history.schema.unwritable(path) == tmp_path
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").touch()
    assert history.schema.unwritable(path) is None  # SQLite needs to create nothing


def test_a_history_that_cannot_even_be_read_says_why(
    read_only_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(uri: str) -> sqlite3.Connection:
        raise cannot_open()

    monkeypatch.setattr(history.schema, "_sqlite_connect", refuse)

    with pytest.raises(history.HistoryReadOnlyError) as error:
        HistoryStore.open_readable(f"sqlite:///{read_only_folder}")

    assert str(error.value) == (
        f"The history database folder {read_only_folder.parent} is read-only; the database "
        f"{read_only_folder} cannot be opened, even read-only (unable to open database file). "
        "Make it writable for the app, or check CLASSIFIER_DATABASE_URL or "
        "[connections.history] url in the secrets."
    )


def test_a_wal_history_without_its_side_files_is_read_as_immutable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a read-only folder SQLite cannot create the -shm file that mode=ro needs.

    Root can always create it, so the refusal is simulated; the immutable open is real.
    """
    path = tmp_path / "history.db"
    writer = HistoryStore(f"sqlite:///{path}")
    seed(writer)
    writer.dispose()
    assert not Path(f"{path}-wal").exists()  # a clean close removes the side files
    tried = []
    connect = history.schema._sqlite_connect

    def read_only_folder(uri: str) -> sqlite3.Connection:
        tried.append(uri.split("?", 1)[1])
        if "immutable=1" not in uri:
            raise no_side_files()
        return connect(uri)

    monkeypatch.setattr(history.schema, "_sqlite_connect", read_only_folder)
    store = HistoryStore(f"sqlite:///{path}", read_only=True)
    try:
        assert store.count() == len(SEED)
    finally:
        store.dispose()
    assert tried[:2] == ["mode=ro", "mode=ro&immutable=1"]

    # With a -wal file present, someone may be writing: never read it as immutable.
    Path(f"{path}-wal").write_bytes(b"")
    tried.clear()
    with pytest.raises(history.HistoryError, match="cannot be opened, even read-only"):
        HistoryStore(f"sqlite:///{path}", read_only=True)
    assert tried == ["mode=ro"]


def test_read_only_opens_real_sqlite_files_with_mode_ro(tmp_path: Path) -> None:
    path = tmp_path / "odd ?#% name" / "history.db"  # characters a file: URI must encode
    writer = HistoryStore(f"sqlite:///{path}")
    writer.add(make_record())
    writer.dispose()

    store = HistoryStore(f"sqlite:///{path}", read_only=True)
    try:
        assert store.count() == 1
        refused = pytest.raises(sa.exc.OperationalError, match="readonly database")
        with refused, store._engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA query_only = OFF")  # mode=ro still refuses
            conn.exec_driver_sql("DELETE FROM predictions")
    finally:
        store.dispose()


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


def test_stores_opened_at_once_create_the_schema_once(database_url: str) -> None:
    """Several app processes starting together all open the same new database."""
    start = Barrier(4)

    def open_and_add(n: int) -> int:
        start.wait(timeout=30)
        store = HistoryStore(database_url)
        try:
            return store.add(make_record(file_name=f"{n}.png"))
        finally:
            store.dispose()

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(open_and_add, range(4)))

    store = HistoryStore(database_url)
    try:
        assert sorted(ids) == sorted(r.id for r in store.find())
    finally:
        store.dispose()


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
