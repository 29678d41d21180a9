"""Connecting to the history database: the engine for a URL, and opening its tables.

`create_engine` turns a sqlite:/// or postgresql:// URL into a SQLAlchemy engine
with each backend's settings. A SQLite file gets WAL mode, a busy timeout,
foreign keys and a `casefold` function on every connection, and read-only it is
opened with mode=ro; PostgreSQL goes through psycopg 3, in read-only sessions
when asked. `open_schema` creates or upgrades the tables (`tables`, `migrations`)
one process at a time; `check_schema` checks them without writing. `unwritable`,
`cannot_write` and `read_only_message` say why a SQLite file cannot be written.
`lock_rows` locks rows to read them and then write, on either backend.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy
from sqlalchemy import Column, ColumnElement, Connection, Engine, event, func, select, update
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from classifier.history.errors import (
    SETTINGS,
    UNSUPPORTED_URL,
    HistoryReadOnlyError,
    HistoryURLError,
    parse_url,
)
from classifier.history.migrations import Migration, check_version, create_or_upgrade

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any fixed number works: PostgreSQL advisory locks are named by a bigint.
POSTGRES_SCHEMA_LOCK_KEY = 0x68697374  # "hist"
# SQLite's (primary) result codes that mean "this file cannot be written here".
_CANNOT_WRITE_CODES = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)


def create_engine(url: str, *, read_only: bool = False) -> Engine:
    """Create an engine for a SQLite file or a PostgreSQL database (through psycopg 3).

    Args:
        url: A sqlite:/// or postgresql:// URL.
        read_only: Open connections that cannot write: a SQLite file is opened
            with mode=ro (and nothing is created), PostgreSQL sessions are read-only.

    Raises:
        HistoryURLError: If the URL cannot be parsed, names another kind of
            database, or SQLite in memory. It is also a ValueError.
    """
    parsed = parse_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        try:
            # pre_ping replaces connections the server closed (restart, idle timeout).
            engine = sqlalchemy.create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
        except (ArgumentError, NoSuchModuleError, ImportError):  # e.g. an uninstalled driver
            raise HistoryURLError(UNSUPPORTED_URL) from None
        return engine.execution_options(postgresql_readonly=True) if read_only else engine
    if backend != "sqlite":
        raise HistoryURLError(UNSUPPORTED_URL)
    path = sqlite_file(url)
    if path is None:
        # Each pooled connection to ":memory:" would be a separate, empty database.
        raise HistoryURLError(
            f"Expected a SQLite database file, not one in memory; check {SETTINGS}."
        )
    if read_only:
        # A file database gets a QueuePool: one connection per thread at a time
        # (5 kept, up to 10 more under load), which suits Streamlit's session threads.
        engine = sqlalchemy.create_engine(
            parsed, creator=partial(_connect_read_only, path), hide_parameters=True
        )
        event.listen(engine, "connect", _configure_read_only_connection)
        return engine
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if cannot_write(error) and (problem := unwritable(path)) is not None:
            raise HistoryReadOnlyError(read_only_message(problem, path)) from None
        raise
    engine = sqlalchemy.create_engine(parsed, hide_parameters=True)
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def sqlite_file(url: str) -> Path | None:
    """Return the file of a sqlite:/// URL; None for SQLite in memory or another database.

    Raises:
        HistoryURLError: If the URL cannot be parsed.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def cannot_write(error: BaseException) -> bool:
    """Return True if an error says that a file or folder cannot be written (or created)."""
    if isinstance(error, HistoryReadOnlyError):
        return True
    if isinstance(error, OSError):
        return error.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
    if isinstance(error, SQLAlchemyError):
        error = getattr(error, "orig", None)
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(error, sqlite3.Error) or code is None:
        return False
    return code & 0xFF in _CANNOT_WRITE_CODES


def unwritable(path: Path) -> Path | None:
    """Return what stops writing the SQLite file at `path`: its folder, the file, or None.

    In WAL mode SQLite writes beside the file, in its -wal and -shm files, so the
    folder must be writable too, unless both already exist and are writable.
    (Root may write anywhere except on a read-only file system.)
    """
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folder would be created inside this one
    side_files = (Path(f"{path}-wal"), Path(f"{path}-shm"))
    if not _is_writable(folder) and not all(
        side.exists() and _is_writable(side) for side in side_files
    ):
        return folder
    if path.exists() and not _is_writable(path):
        return path
    return None


def _is_writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def read_only_message(problem: Path, path: Path, *, even_read_only: str | None = None) -> str:
    """Say that the SQLite history at `path` cannot be written because of `problem`.

    Args:
        problem: The folder or the file that cannot be written (see `unwritable`).
        path: The database file.
        even_read_only: Why opening it read-only failed too, if that was tried.
    """
    kind = "file" if problem == path else "folder"
    if even_read_only is None:
        consequence = "predictions cannot be saved, changed or deleted there"
    else:
        consequence = f"the database {path} cannot be opened, even read-only ({even_read_only})"
    return (
        f"The history database {kind} {problem} is read-only; {consequence}. "
        f"Make it writable for the app, or check {SETTINGS}."
    )


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """Open a SQLite file read-only, also where its WAL side files cannot be created.

    SQLite reads a WAL database only if its -wal and -shm files exist or can be
    created; otherwise it says SQLITE_READONLY_DIRECTORY ("attempt to write a
    readonly database") even with mode=ro. Where they are missing (a clean shutdown
    removes them) and cannot be created (a read-only folder), no one can be writing
    the file either, since a writer needs them too: only then is the file opened as
    immutable, which skips them.
    """
    uri = f"file:{quote(path.absolute().as_posix())}?mode=ro"
    try:
        return _sqlite_connect(uri)
    except sqlite3.OperationalError as error:
        code = error.sqlite_errorcode & 0xFF
        no_side_files = code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN)
        if not no_side_files or not path.is_file() or Path(f"{path}-wal").exists():
            raise
    return _sqlite_connect(f"{uri}&immutable=1")


def _sqlite_connect(uri: str) -> sqlite3.Connection:
    """Connect to a SQLite URI and read its schema, which fails now if the file cannot be read."""
    connection = sqlite3.connect(
        uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        connection.close()
        raise
    return connection


def _configure_read_only_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    """Make a read-only SQLite connection refuse writes and know `casefold`."""
    dbapi_connection.execute("PRAGMA query_only = ON")
    _add_functions(dbapi_connection)


def _configure_sqlite_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    """Make a new SQLite connection wait for locks, use WAL and enforce foreign keys."""
    cursor = dbapi_connection.cursor()
    # busy_timeout first: switching to WAL needs a lock another process may hold.
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    _switch_to_wal(cursor)
    # With WAL, NORMAL never corrupts the file; a power cut may lose the last commits.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")  # deleting a prediction deletes its thumbnail
    cursor.close()
    _add_functions(dbapi_connection)


def _add_functions(dbapi_connection: Any) -> None:
    """Give SQLite `casefold(text)`: Python's caseless form, for searches beyond ASCII.

    SQLite's own LIKE, lower() and upper() know the case of ASCII letters only.
    """
    dbapi_connection.create_function("casefold", 1, _casefold, deterministic=True)


def _casefold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _switch_to_wal(cursor: Any) -> None:
    """Set WAL mode, retrying while another connection is creating or switching the file.

    Processes that open a new database together can get "database is locked" here
    at once: SQLite skips the busy timeout when waiting could deadlock.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY  # also BUSY_RECOVERY
            if not busy or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def lock_rows(conn: Connection, column: Column, *where: ColumnElement[bool]) -> None:
    """Lock a table's rows until `conn`'s transaction ends, before reading them to write:
    a writer doing the same meanwhile waits, then reads what this one wrote.

    An UPDATE that sets `column` (any of the table's) to its own value: on SQLite
    it takes the write lock, which a SELECT does not (the driver begins the transaction at
    the first write); on PostgreSQL it locks the rows, and each later statement of the
    transaction sees what others committed before (READ COMMITTED).
    """
    conn.execute(update(column.table).where(*where).values({column.name: column}))


def open_schema(engine: Engine, migrations: Sequence[Migration]) -> None:
    """Create the tables in an empty database or upgrade older ones, one process at a time.

    The newest schema version is `1 + len(migrations)`.

    Raises:
        HistoryError: If the database holds a foreign predictions table or a newer schema.
    """
    if engine.dialect.name == "sqlite":
        # pysqlite would begin the transaction lazily, at the first write;
        # BEGIN IMMEDIATE takes the write lock first, so a second process
        # starting at the same moment waits here and then finds the tables.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                create_or_upgrade(conn, migrations)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    else:
        with engine.begin() as conn:
            conn.execute(select(func.pg_advisory_xact_lock(POSTGRES_SCHEMA_LOCK_KEY)))
            create_or_upgrade(conn, migrations)


def check_schema(engine: Engine, migrations: Sequence[Migration]) -> None:
    """Check, changing nothing, that the tables exist in the version this code reads.

    Raises:
        HistoryError: If there are no tables, or an older or newer schema (an
            upgrade would need to write).
    """
    with engine.connect() as conn:
        check_version(conn, migrations)
