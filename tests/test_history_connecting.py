"""Tests for connecting to the history database: URLs, SQLite and PostgreSQL, read-only.

A SQLite file and its folder are created on first use and switched to WAL; bad
URLs are refused without showing their passwords; a read-only store (or a SQLite
file in a read-only folder) reads everything and writes nothing; and stores that
open a new database at the same moment create its tables once
(`classifier.history.connecting`). On SQLite and (when configured) PostgreSQL:
see test_history_store.py.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from threading import Barrier

import pytest
import sqlalchemy as sa

from classifier import history
from classifier.history import Filters, HistoryError, HistoryStore, stats
from tests.helpers import SEED, make_record, names, seed

# --- Backends ---------------------------------------------------------------------------


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
    history.connecting._switch_to_wal(busy_then_ok)
    assert busy_then_ok.calls == 3
    with pytest.raises(sqlite3.OperationalError):
        history.connecting._switch_to_wal(Cursor(error(sqlite3.SQLITE_IOERR)))


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

    monkeypatch.setattr(history.connecting, "_switch_to_wal", no_wal_files)
    monkeypatch.setattr(
        history.connecting, "_is_writable", lambda p: not p.is_relative_to(tmp_path)
    )
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
    monkeypatch.setattr(history.connecting, "_is_writable", lambda p: p != path)

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
    monkeypatch.setattr(history.connecting, "_is_writable", lambda p: p != tmp_path)
    assert history.connecting.unwritable(path) == tmp_path
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").touch()
    assert history.connecting.unwritable(path) is None  # SQLite needs to create nothing


def test_a_history_that_cannot_even_be_read_says_why(
    read_only_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(uri: str) -> sqlite3.Connection:
        raise cannot_open()

    monkeypatch.setattr(history.connecting, "_sqlite_connect", refuse)

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
    connect = history.connecting._sqlite_connect

    def read_only_folder(uri: str) -> sqlite3.Connection:
        tried.append(uri.split("?", 1)[1])
        if "immutable=1" not in uri:
            raise no_side_files()
        return connect(uri)

    monkeypatch.setattr(history.connecting, "_sqlite_connect", read_only_folder)
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


# --- Opening together -------------------------------------------------------------------


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
