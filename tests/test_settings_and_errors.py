"""Sizes said as people read them, and history failures that say what went wrong."""

from __future__ import annotations

import errno
import sqlite3

import psycopg.errors
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from classifier import history
from classifier.cli import main
from classifier.history import connecting
from tests.helpers import make_record

FULL = (
    "The disk holding the history database is full; nothing can be saved to the history "
    "until space is freed."
)
BUSY = "The history database is busy (locked by another program); try again."


def uploader_page() -> None:
    from ui import uploads

    uploads.collect_uploads()


@pytest.mark.parametrize(
    ("max_bytes", "label", "uploader_mb"),
    [
        ("7", "Drop photos here, up to 7 bytes each", 1),
        ("1500", "Drop photos here, up to 1.5 KB each", 1),
        ("1500000", "Drop photos here, up to 1.5 MB each", 2),
        # A limit of whole MB is said once, by the uploader itself ("20MB per file").
        ("20000000", "Drop photos here", 20),
    ],
)
def test_the_uploader_says_its_limit_once(max_bytes, label, uploader_mb, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_MAX_BYTES", max_bytes)

    at = AppTest.from_function(uploader_page, default_timeout=60).run()

    assert not at.exception
    uploader = at.file_uploader(key="uploads").proto
    assert (uploader.label, uploader.max_upload_size_mb) == (label, uploader_mb)


@pytest.fixture
def history_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'history.db'}"
    store = history.HistoryStore(url)
    store.add(make_record())
    store.dispose()
    return url


@pytest.fixture
def small_disk():
    """Let every new SQLite connection grow its database by a few pages only, as on a full disk."""

    def limit(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 4}")

    sa.event.listen(sa.engine.Engine, "connect", limit)
    yield
    sa.event.remove(sa.engine.Engine, "connect", limit)


def test_saving_to_a_full_sqlite_database_says_the_disk_is_full(history_url, small_disk):
    store = history.HistoryStore(history_url)
    try:
        with pytest.raises(sa.exc.OperationalError, match="database or disk is full") as failed:
            store.add(make_record(file_name="big.jpg", thumbnail=b"\x01" * 200_000))
    finally:
        store.dispose()

    assert history.public_message(failed.value) == FULL
    assert history.public_message(failed.value, url=history_url, detail=True) == FULL


def test_a_locked_sqlite_database_is_busy_not_unreachable_on_the_command_line(
    history_url, monkeypatch, capsys
):
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", history_url)
    monkeypatch.setattr(connecting, "SQLITE_BUSY_TIMEOUT_MS", 100)
    holder = sqlite3.connect(sa.engine.make_url(history_url).database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program writing, for longer than the timeout
    try:
        status = main(["history", "clear", "--all", "--yes"])
    finally:
        holder.close()

    assert status == 1
    assert capsys.readouterr().err.splitlines() == [f"error: {BUSY}"]


def test_saving_to_a_locked_sqlite_database_says_it_is_busy(history_url, monkeypatch):
    monkeypatch.setattr(connecting, "SQLITE_BUSY_TIMEOUT_MS", 100)
    store = history.HistoryStore(history_url)
    holder = sqlite3.connect(sa.engine.make_url(history_url).database, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(sa.exc.OperationalError, match="database is locked") as failed:
            store.add(make_record(file_name="later.jpg"))
    finally:
        holder.close()
        store.dispose()

    assert history.public_message(failed.value) == BUSY
    assert history.public_message(failed.value, url=history_url, detail=True) == BUSY


URL = "postgresql://user:s3cr3t@db.example/history"


def wrapped(driver_error: Exception) -> sa.exc.OperationalError:
    """The error as SQLAlchemy raises it: its text holds the statement and its parameters."""
    return sa.exc.OperationalError(
        "INSERT INTO predictions (file_name) VALUES (%(file_name)s)",
        {"file_name": "holiday.jpg"},
        driver_error,
    )


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        (wrapped(psycopg.errors.DiskFull('could not extend file "1": No space left on device')),
         FULL),
        (wrapped(psycopg.errors.LockNotAvailable("canceling statement due to lock timeout")),
         BUSY),
        (OSError(errno.ENOSPC, "No space left on device"), FULL),
        # A driver that gives no code: its message says it.
        (wrapped(RuntimeError("could not write to file: No space left on device")), FULL),
    ],
    ids=["postgresql-53100", "postgresql-55P03", "ENOSPC", "no-code"],
)  # fmt: skip
def test_a_full_disk_or_a_lock_has_its_own_sentence_without_sql_or_password(failed, expected):
    for text in (
        history.public_message(failed),
        history.public_message(failed, url=URL, detail=True),
    ):
        assert text == expected
        assert not [s for s in ("INSERT", "holiday", "s3cr3t", "db.example") if s in text]


def test_a_parameter_that_reads_like_a_full_disk_is_not_taken_for_one():
    failed = sa.exc.IntegrityError(
        "INSERT INTO predictions (file_name) VALUES (?)",
        ("database or disk is full.jpg",),
        sqlite3.IntegrityError("NOT NULL constraint failed: predictions.sha256"),
    )

    assert history.public_message(failed) == (
        "The history database could not answer (IntegrityError); the server log has the details."
    )
