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
import os
import re
import sqlite3
import subprocess
import sys
import traceback
import uuid
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
from tests.conftest import ROOT
from tests.helpers import RECORD_TIME, make_record, ranked

POSTGRES_URL_VARIABLE = "CLASSIFIER_TEST_POSTGRES_URL"
HOSTILE_NAME = "'); DROP TABLE predictions;-- <b>x</b> [y](javascript:z).png"
UNICODE_NAME = "Фото кота 猫の写真 🐱 café\u0301 ﬁle.HEIC"
T0 = RECORD_TIME  # make_record's created_at
PLUS_TWO = timezone(timedelta(hours=2))
EXPORT_HEADER = (
    "id,created_at,file_name,sha256,width,height,image_format,model,top_k,"
    "top1_label,top1_probability,inference_ms,feedback,corrected_label"
)


# --- Backends ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url() -> sa.URL:
    """Return the PostgreSQL server to test against; skip without one, fail on CI."""
    on_ci = os.environ.get("CI", "").lower() == "true"
    raw_url = os.environ.get(POSTGRES_URL_VARIABLE, "").strip()
    if not raw_url:
        reason = (
            f"{POSTGRES_URL_VARIABLE} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
        if on_ci:
            pytest.fail(f"{reason}; CI=true requires the PostgreSQL tests.")
        pytest.skip(reason)
    url = _with_psycopg(make_url(raw_url))
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        reason = f"PostgreSQL at {POSTGRES_URL_VARIABLE} is unreachable: {error.orig}"
        if on_ci:
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        engine.dispose()
    return make_url(raw_url)


@pytest.fixture(scope="session")
def postgres_admin(postgres_server_url: sa.URL) -> Iterator[sa.Engine]:
    """An engine on the PostgreSQL server, to create and drop the per-test schemas."""
    engine = sa.create_engine(_with_psycopg(postgres_server_url))
    yield engine
    engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    server_url: sa.URL = request.getfixturevalue("postgres_server_url")
    admin: sa.Engine = request.getfixturevalue("postgres_admin")
    schema = f"history_test_{uuid.uuid4().hex}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        # The URL keeps the scheme it was given (usually plain postgresql://).
        url = server_url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


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
    engine = sa.create_engine(_with_psycopg(make_url(database_url)))
    yield engine
    engine.dispose()


def _with_psycopg(url: sa.URL) -> sa.URL:
    return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url


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
    )
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
    assert set(history.records.EXPORT_FIELDS) == set(history.records.RECORD_FIELDS) - {"thumbnail"}


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


def test_label_search_matches_percent_and_underscore_literally(store: HistoryStore) -> None:
    # Unescaped, every search below would also match "plain.jpg".
    labels = {
        "percent.jpg": "50% off",
        "underscore.jpg": "snake_case",
        "plain.jpg": "50x offexcase",
    }
    for name, label in labels.items():
        store.add(make_record(file_name=name, top_k=ranked(label, 0.5)))
    corrected = store.add(make_record(file_name="corrected.jpg", top_k=ranked("plain", 0.5)))
    store.set_feedback(corrected, "wrong", "100%_real")

    def found(text: str) -> list[str]:
        return sorted(names(store.find(Filters(label=text), limit=None)))

    assert found("%") == ["corrected.jpg", "percent.jpg"]
    assert found("_") == ["corrected.jpg", "underscore.jpg"]
    assert found("0% o") == ["percent.jpg"]
    assert found("e_c") == ["underscore.jpg"]
    assert found("%_") == ["corrected.jpg"]
    assert store.count(Filters(label="%")) == 2


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

    assert store.get(old_id) == Record(
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
        for table in ("thumbnails", "predictions", "schema_version"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
    create_version_1_database(raw)

    open_store()

    assert describe_schema(raw) == new
    assert set(new) == {"predictions", "thumbnails", "schema_version"}


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
    assert "s3cret" not in str(error.value)


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
