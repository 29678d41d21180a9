"""The history's tables, its engine, and creating or upgrading the schema when a store opens.

The schema has a version number stored in the database. A new release that
changes the tables appends an upgrade step to `MIGRATIONS`, so a history file
written by an older release is upgraded in place when it is opened.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any fixed number works: PostgreSQL advisory locks are named by a bigint.
POSTGRES_SCHEMA_LOCK_KEY = 0x68697374  # "hist"


class HistoryError(Exception):
    """The history database exists but this version of the app cannot use it."""


class UTCDateTime(TypeDecorator[datetime]):
    """Store UTC and read back timezone-aware UTC datetimes, also on SQLite (which has no zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        # SQLite keeps the text "YYYY-MM-DD HH:MM:SS.ffffff"; all in UTC, it sorts correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The schema, in its newest version. Change it only together with a new step in MIGRATIONS.
metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("image_format", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("top_k", JSON, nullable=False),
    Column("top1_label", Text, nullable=False),
    Column("top1_probability", Float, nullable=False),
    Column("inference_ms", Float, nullable=False),
    Column("feedback", Text),
    Column("corrected_label", Text),
    CheckConstraint("feedback IN ('correct', 'wrong')", name="ck_predictions_feedback"),
)

# One index per sort order, each also holding every column a filter reads, so
# count() and the search for a page's ids never touch the full rows. Separate
# indexes on model or feedback would hurt: SQLite keeps no statistics unless
# ANALYZE runs, assumes any index is selective, and would then look up half
# the table row by row for "model = 'mobilenet_v2'".
_FILTERED_COLUMNS = ("model", "feedback", "top1_label", "corrected_label")
Index(
    "ix_predictions_newest",
    predictions.c.created_at,
    predictions.c.id,
    predictions.c.top1_probability,
    *_FILTERED_COLUMNS,
)
Index(
    "ix_predictions_confidence",
    predictions.c.top1_probability,
    predictions.c.id,
    predictions.c.created_at,
    *_FILTERED_COLUMNS,
)

# Thumbnails live in their own table so that reading predictions never reads
# pictures: SQLite stores a blob inside its row, which would make the
# predictions table many times larger to scan or export.
thumbnails = Table(
    "thumbnails",
    metadata,
    Column(
        "prediction_id",
        Integer,
        ForeignKey("predictions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("image", LargeBinary, nullable=False),
)

schema_version_table = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

Migration = Callable[[Connection], None]

# Upgrade steps, oldest first: MIGRATIONS[0] turns a version-1 database into
# version 2, MIGRATIONS[1] turns version 2 into 3, and so on. Never edit or
# remove a step once released; a database remembers which ones it has had.
# tests/test_history_store.py keeps a hand-written version-1 database and
# checks that, once upgraded, it matches a database created from scratch.
MIGRATIONS: tuple[Migration, ...] = ()


def create_engine(url: str) -> Engine:
    """Create an engine for a SQLite file or a PostgreSQL database (through psycopg 3).

    Raises:
        ValueError: If the URL names another kind of database, or SQLite in memory.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # pre_ping replaces connections the server closed (restart, idle timeout).
        return sqlalchemy.create_engine(parsed, pool_pre_ping=True)
    if backend != "sqlite":
        raise ValueError(
            "Expected a sqlite:/// or postgresql:// database URL. "
            f"Received: {parsed.render_as_string(hide_password=True)!r}"
        )
    if parsed.database in (None, "", ":memory:"):
        # Each pooled connection to ":memory:" would be a separate, empty database.
        raise ValueError(f"Expected a SQLite database file. Received: {url!r} (in memory).")
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # A file database gets a QueuePool: one connection per thread at a time
    # (5 kept, up to 10 more under load), which suits Streamlit's session threads.
    engine = sqlalchemy.create_engine(parsed)
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


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
                _create_or_upgrade(conn, migrations)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    else:
        with engine.begin() as conn:
            conn.execute(select(func.pg_advisory_xact_lock(POSTGRES_SCHEMA_LOCK_KEY)))
            _create_or_upgrade(conn, migrations)


def _create_or_upgrade(conn: Connection, migrations: Sequence[Migration]) -> None:
    newest = 1 + len(migrations)
    tables = inspect(conn)
    if not tables.has_table(schema_version_table.name):
        if tables.has_table(predictions.name):
            raise HistoryError(
                "This database has a 'predictions' table but no schema version, so it was "
                "not created by this app. Set CLASSIFIER_DATABASE_URL to another database."
            )
        metadata.create_all(conn)
        conn.execute(insert(schema_version_table).values(version=newest))
        return
    found = conn.execute(select(schema_version_table.c.version)).scalar_one()
    if found > newest:
        raise HistoryError(
            f"This history database was written by a newer version of the app (schema "
            f"version {found}; this version reads up to {newest}). Upgrade "
            "the app, or set CLASSIFIER_DATABASE_URL to another database."
        )
    for migrate in migrations[found - 1 :]:
        migrate(conn)
    if found < newest:
        conn.execute(update(schema_version_table).values(version=newest))
