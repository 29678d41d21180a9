"""The history's tables, its engine, and creating or upgrading the schema when a store opens.

The schema has a version number stored in the database. A new release that
changes the tables appends an upgrade step to `MIGRATIONS`, so a history file
written by an older release is upgraded in place when it is opened.
"""

from __future__ import annotations

import errno
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from classifier.history.errors import (
    SETTINGS,
    UNSUPPORTED_URL,
    HistoryError,
    HistoryReadOnlyError,
    HistoryURLError,
    parse_url,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
MAX_MODEL_NAME_LENGTH = 60
PUBLIC_ID_LENGTH = 32  # room for `secrets.token_urlsafe(16)` (22 characters)
# Any fixed number works: PostgreSQL advisory locks are named by a bigint.
POSTGRES_SCHEMA_LOCK_KEY = 0x68697374  # "hist"
# SQLite's (primary) result codes that mean "this file cannot be written here".
_CANNOT_WRITE_CODES = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)


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
    # Schema version 4. Who saved it: "issuer subject" of a signed-in person (see
    # `classifier.history.owners`), or NULL for nobody (saved anonymously, or before owners).
    Column("owner", Text),
    # The prediction's name in links (`?prediction=...`): random, so links cannot be guessed.
    # Always set by the store; nullable only because older rows got theirs in an upgrade.
    Column("public_id", String(PUBLIC_ID_LENGTH)),
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

# A person's own history, newest first: the same columns, after the owner.
Index(
    "ix_predictions_owner",
    predictions.c.owner,
    predictions.c.created_at,
    predictions.c.id,
    predictions.c.top1_probability,
    *_FILTERED_COLUMNS,
)
Index("ix_predictions_public_id", predictions.c.public_id, unique=True)

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

# Models people added (schema version 2). The model file itself is kept in the
# database, in its own table like the thumbnails, so every server sharing a
# PostgreSQL database serves the same models; each copies the file into its data
# folder on first use (`classifier.models.own`).
models = Table(
    "models",
    metadata,
    Column("name", String(MAX_MODEL_NAME_LENGTH), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("source", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("details", JSON, nullable=False),
    Column("owner", Text),  # schema version 4: who added or taught it; NULL for nobody
)

model_files = Table(
    "model_files",
    metadata,
    Column(
        "name",
        String(MAX_MODEL_NAME_LENGTH),
        ForeignKey("models.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("data", LargeBinary, nullable=False),
)

# "Where it looked" of each saved prediction's top class (schema version 3): a small
# picture like the thumbnail, kept when thumbnails are.
overlays = Table(
    "overlays",
    metadata,
    Column(
        "prediction_id",
        Integer,
        ForeignKey("predictions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("image", LargeBinary, nullable=False),
)

# The people who signed in (schema version 4): how an owner is named on the command line
# (`--owner EMAIL`) and on an admin's History page.
people = Table(
    "people",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("email", Text),
    Column("name", Text),
    Column("last_seen", UTCDateTime, nullable=False),
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


def _add_models_tables(conn: Connection) -> None:
    """Version 1 -> 2: the tables of added models, as version 2 defined them."""
    version_2 = MetaData()
    Table(
        "models",
        version_2,
        Column("name", String(MAX_MODEL_NAME_LENGTH), primary_key=True),
        Column("created_at", UTCDateTime, nullable=False),
        Column("source", Text, nullable=False),
        Column("sha256", String(64), nullable=False),
        Column("size", Integer, nullable=False),
        Column("details", JSON, nullable=False),
    )
    Table(
        "model_files",
        version_2,
        Column(
            "name",
            String(MAX_MODEL_NAME_LENGTH),
            ForeignKey("models.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("data", LargeBinary, nullable=False),
    )
    version_2.create_all(conn)


def _add_overlays_table(conn: Connection) -> None:
    """Version 2 -> 3: the table of overlay thumbnails, as version 3 defined it."""
    version_3 = MetaData()
    Table("predictions", version_3, Column("id", Integer, primary_key=True))
    Table(
        "overlays",
        version_3,
        Column(
            "prediction_id",
            Integer,
            ForeignKey("predictions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("image", LargeBinary, nullable=False),
    )
    version_3.tables["overlays"].create(conn)


def _add_owners(conn: Connection) -> None:
    """Version 3 -> 4: owners of predictions and models, public ids, and the people table.

    Every existing row belongs to nobody (owner NULL) and gets a random public id.
    """
    conn.exec_driver_sql("ALTER TABLE predictions ADD COLUMN owner TEXT")
    public_id = f"public_id VARCHAR({PUBLIC_ID_LENGTH})"
    conn.exec_driver_sql(f"ALTER TABLE predictions ADD COLUMN {public_id}")
    conn.exec_driver_sql("ALTER TABLE models ADD COLUMN owner TEXT")
    ids = conn.exec_driver_sql("SELECT id FROM predictions").scalars().all()
    table = sqlalchemy.table("predictions", sqlalchemy.column("id"), sqlalchemy.column("public_id"))
    statement = (
        update(table)
        .where(table.c.id == sqlalchemy.bindparam("row_id"))
        .values(public_id=sqlalchemy.bindparam("new_id"))
    )
    for start in range(0, len(ids), 10_000):
        batch = ids[start : start + 10_000]
        conn.execute(statement, [{"row_id": i, "new_id": new_public_id()} for i in batch])
    version_4 = MetaData()
    Table(
        "predictions",
        version_4,
        Column("id", Integer, primary_key=True),
        *(Column(name, Text) for name in ("owner", "model", "feedback", "top1_label")),
        Column("corrected_label", Text),
        Column("created_at", UTCDateTime),
        Column("top1_probability", Float),
        Column("public_id", String(PUBLIC_ID_LENGTH)),
    )
    columns = version_4.tables["predictions"].c
    Index(
        "ix_predictions_owner",
        columns.owner,
        columns.created_at,
        columns.id,
        columns.top1_probability,
        *(columns[name] for name in ("model", "feedback", "top1_label", "corrected_label")),
    ).create(conn)
    Index("ix_predictions_public_id", columns.public_id, unique=True).create(conn)
    Table(
        "people",
        version_4,
        Column("owner", Text, primary_key=True),
        Column("email", Text),
        Column("name", Text),
        Column("last_seen", UTCDateTime, nullable=False),
    ).create(conn)


def new_public_id() -> str:
    """Return a prediction's public id: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


MIGRATIONS: tuple[Migration, ...] = (_add_models_tables, _add_overlays_table, _add_owners)


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


def check_schema(engine: Engine, migrations: Sequence[Migration]) -> None:
    """Check, changing nothing, that the tables exist in the version this code reads.

    Raises:
        HistoryError: If there are no tables, or an older or newer schema (an
            upgrade would need to write).
    """
    newest = 1 + len(migrations)
    with engine.connect() as conn:
        if not inspect(conn).has_table(schema_version_table.name):
            raise HistoryError(
                "This database holds no prediction history yet, and opened read-only "
                "the tables cannot be created."
            )
        found = conn.execute(select(schema_version_table.c.version)).scalar_one()
    if found > newest:
        raise HistoryError(_newer_schema_message(found, newest))
    if found < newest:
        raise HistoryError(
            f"This history database has schema version {found} and needs an upgrade to "
            f"version {newest}, which cannot be done read-only. Open it once with write access."
        )


def _newer_schema_message(found: int, newest: int) -> str:
    return (
        f"This history database was written by a newer version of the app (schema "
        f"version {found}; this version reads up to {newest}). Upgrade "
        "the app, or set CLASSIFIER_DATABASE_URL to another database."
    )


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
        raise HistoryError(_newer_schema_message(found, newest))
    for migrate in migrations[found - 1 :]:
        migrate(conn)
    if found < newest:
        conn.execute(update(schema_version_table).values(version=newest))
