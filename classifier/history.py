"""The prediction history: every successful classification, kept in SQLite or PostgreSQL.

This module owns the history database: the engine, the schema (the tables below
are the only place it is written), its upgrades, and every query. Callers hand
in a `NewRecord` after a classification succeeded and read back `Record` rows,
CSV/JSON exports and pandas DataFrames for the summary charts.

The schema has a version number stored in the database. A new release that
changes the tables appends an upgrade step to `MIGRATIONS`, so a history file
written by an older release is upgraded in place when it is opened.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import pandas as pd
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
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping, make_url
from sqlalchemy.sql.elements import ColumnElement

FEEDBACK_VALUES = ("correct", "wrong")
FEEDBACK_FILTERS = ("any", "correct", "wrong", "unrated")
SORTS = ("newest", "oldest", "confidence_desc", "confidence_asc")
MAX_LABEL_LENGTH = 200  # corrected labels are typed by users and indexed

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any fixed number works: PostgreSQL advisory locks are named by a bigint.
POSTGRES_SCHEMA_LOCK_KEY = 0x68697374  # "hist"


class HistoryError(Exception):
    """The history database exists but this version of the app cannot use it."""


class RankedLabel(TypedDict):
    """One of the top-k guesses of a model."""

    label: str
    index: int
    probability: float


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"Expected a timezone-aware datetime for {name}. Received: {value!r} (naive)."
        )


@dataclass(frozen=True)
class NewRecord:
    """One successful classification, as a caller adds it to the history."""

    file_name: str
    sha256: str
    width: int
    height: int
    image_format: str
    model: str
    top_k: Sequence[RankedLabel]  # highest probability first; the first one is the top-1
    inference_ms: float
    thumbnail: bytes | None = None  # None when the user opted out of saving thumbnails
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not self.top_k:
            raise ValueError("Expected at least one entry in top_k. Received: an empty list.")
        probabilities = [entry["probability"] for entry in self.top_k]
        if probabilities != sorted(probabilities, reverse=True):
            raise ValueError(
                f"Expected top_k sorted by probability, highest first. Received: {probabilities}"
            )
        _require_aware(self.created_at, "created_at")


@dataclass(frozen=True)
class Record:
    """A stored prediction. `thumbnail` is None if none was saved or none was asked for."""

    id: int
    created_at: datetime  # timezone-aware, in UTC
    file_name: str
    sha256: str
    width: int
    height: int
    image_format: str
    model: str
    top_k: list[RankedLabel]
    top1_label: str
    top1_probability: float
    inference_ms: float
    feedback: str | None  # "correct", "wrong" or None (not rated)
    corrected_label: str | None
    thumbnail: bytes | None


RECORD_FIELDS = tuple(f.name for f in fields(Record))
EXPORT_FIELDS = tuple(name for name in RECORD_FIELDS if name != "thumbnail")


@dataclass(frozen=True)
class Filters:
    """Which predictions to show; the defaults select all of them.

    `label` matches a case-insensitive substring of the top-1 label or of the
    corrected label. Confidence bounds are inclusive; `start` is inclusive and
    `end` exclusive, so a day is `start=midnight, end=next midnight`.
    """

    label: str = ""
    models: tuple[str, ...] = ()  # empty: every model
    min_confidence: float | None = None
    max_confidence: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    feedback: str = "any"  # one of FEEDBACK_FILTERS

    def __post_init__(self) -> None:
        if self.feedback not in FEEDBACK_FILTERS:
            raise ValueError(
                f"Expected feedback to be one of {FEEDBACK_FILTERS}. Received: {self.feedback!r}"
            )
        if isinstance(self.models, str):
            raise ValueError(f"Expected a tuple of model names. Received: {self.models!r}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None:
                _require_aware(value, name)


NO_FILTERS = Filters()


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


class HistoryStore:
    """The prediction history in one database, safe to share between threads.

    A Streamlit app opens one store and caches it (`st.cache_resource`):
    `HistoryStore(get_settings().database_url)`. It pools connections itself.

    Args:
        url: A SQLAlchemy URL, `sqlite:///path/to/history.db` or
            `postgresql://user@host/db`. The tables are created (or upgraded)
            when the store is opened.

    Raises:
        ValueError: If the URL names a database kind the store does not support.
        HistoryError: If the database was written by a newer version of the app.
    """

    migrations: tuple[Migration, ...] = MIGRATIONS

    def __init__(self, url: str) -> None:
        self._engine = _create_engine(url)
        try:
            self._open_schema()
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def schema_version(self) -> int:
        """Return the schema version this code writes: 1 plus one per upgrade step."""
        return 1 + len(self.migrations)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def add(self, record: NewRecord) -> int:
        """Store one prediction and return its id."""
        return self.add_many([record])[0]

    def add_many(self, records: Iterable[NewRecord]) -> list[int]:
        """Store predictions in one transaction and return their ids, in order."""
        records = list(records)
        if not records:
            return []
        with self._engine.begin() as conn:
            ids = (
                conn.execute(
                    insert(predictions).returning(predictions.c.id, sort_by_parameter_order=True),
                    [_to_row(record) for record in records],
                )
                .scalars()
                .all()
            )
            images = [
                {"prediction_id": record_id, "image": bytes(record.thumbnail)}
                for record_id, record in zip(ids, records, strict=True)
                if record.thumbnail is not None
            ]
            if images:
                conn.execute(insert(thumbnails), images)
        return list(ids)

    def get(self, record_id: int) -> Record | None:
        """Return one prediction with its thumbnail, or None if there is no such id."""
        query = _select_records(with_thumbnails=True).where(predictions.c.id == record_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _to_record(row)

    def list(
        self,
        filters: Filters = NO_FILTERS,
        sort: str = "newest",
        limit: int | None = 50,
        offset: int = 0,
        with_thumbnails: bool = True,
    ) -> list[Record]:
        """Return one page of the predictions that match the filters.

        Args:
            filters: Which predictions to include.
            sort: One of SORTS.
            limit: Page size; None for all matching rows.
            offset: How many matching rows to skip.
            with_thumbnails: False leaves `thumbnail` None, which reads much less data.
        """
        order_by = _order_by(sort)
        # Sort and skip on ids alone, which an index answers; then read only the page.
        page_ids = (
            select(predictions.c.id)
            .where(*self._where(filters))
            .order_by(*order_by)
            .limit(limit)
            .offset(offset)
        )
        query = _select_records(with_thumbnails).where(predictions.c.id.in_(page_ids))
        query = query.order_by(*order_by)
        with self._engine.connect() as conn:
            return [_to_record(row) for row in conn.execute(query).mappings()]

    def count(self, filters: Filters = NO_FILTERS) -> int:
        """Return how many predictions match the filters."""
        query = select(func.count()).select_from(predictions).where(*self._where(filters))
        with self._engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def set_feedback(
        self, record_id: int, feedback: str | None, corrected_label: str | None = None
    ) -> bool:
        """Record whether a prediction was right; return False if the id does not exist.

        Args:
            record_id: The prediction to rate.
            feedback: "correct", "wrong", or None to remove a rating.
            corrected_label: The right label, only with "wrong"; blank means none.
        """
        if feedback is not None and feedback not in FEEDBACK_VALUES:
            raise ValueError(
                f"Expected feedback 'correct', 'wrong' or None. Received: {feedback!r}"
            )
        corrected_label = (corrected_label or "").strip() or None
        if corrected_label is not None and len(corrected_label) > MAX_LABEL_LENGTH:
            raise ValueError(
                f"Expected a corrected label of at most {MAX_LABEL_LENGTH} characters. "
                f"Received: {len(corrected_label)} characters."
            )
        if corrected_label is not None and feedback != "wrong":
            raise ValueError(
                "Expected a corrected label only with feedback 'wrong'. "
                f"Received: feedback {feedback!r} with corrected label {corrected_label!r}"
            )
        query = (
            update(predictions)
            .where(predictions.c.id == record_id)
            .values(feedback=feedback, corrected_label=corrected_label)
        )
        with self._engine.begin() as conn:
            return conn.execute(query).rowcount == 1

    def delete(self, ids: Iterable[int]) -> int:
        """Delete the predictions with these ids (and their thumbnails); return how many."""
        ids = list(ids)
        if not ids:
            return 0
        with self._engine.begin() as conn:
            return conn.execute(delete(predictions).where(predictions.c.id.in_(ids))).rowcount

    def clear(self) -> int:
        """Delete every prediction; return how many there were."""
        with self._engine.begin() as conn:
            return conn.execute(delete(predictions)).rowcount

    def export_csv(self, filters: Filters = NO_FILTERS, sort: str = "newest") -> bytes:
        """Return the matching predictions as UTF-8 CSV with a header row, without thumbnails."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_FIELDS)
        for row in self._export_rows(filters, sort):
            row["top_k"] = json.dumps(row["top_k"], ensure_ascii=False)
            writer.writerow(row.values())
        return buffer.getvalue().encode("utf-8")

    def export_json(self, filters: Filters = NO_FILTERS, sort: str = "newest") -> bytes:
        """Return the matching predictions as a UTF-8 JSON list of objects, without thumbnails."""
        rows = self._export_rows(filters, sort)
        return json.dumps(rows, ensure_ascii=False, indent=2).encode("utf-8")

    def count_by_day(self, filters: Filters = NO_FILTERS) -> pd.DataFrame:
        """Count predictions per UTC calendar day, including days without any.

        Returns:
            Columns `day` (datetime64, midnight UTC, naive) and `count`.
        """
        day = self._utc_date(predictions.c.created_at).label("day")
        query = (
            select(day, func.count().label("count"))
            .where(*self._where(filters))
            .group_by(day)
            .order_by(day)
        )
        frame = self._frame(query, ["day", "count"])
        frame["day"] = pd.to_datetime(frame["day"])
        if not frame.empty:
            every_day = pd.date_range(frame["day"].min(), frame["day"].max(), freq="D", name="day")
            frame = frame.set_index("day").reindex(every_day, fill_value=0).reset_index()
        return frame.astype({"count": "int64"})

    def count_by_label(self, filters: Filters = NO_FILTERS, top: int = 10) -> pd.DataFrame:
        """Return the `top` most frequent top-1 labels, most frequent first (label, count)."""
        count = func.count().label("count")
        query = (
            select(predictions.c.top1_label.label("label"), count)
            .where(*self._where(filters))
            .group_by(predictions.c.top1_label)
            .order_by(count.desc(), predictions.c.top1_label)
            .limit(top)
        )
        return self._frame(query, ["label", "count"]).astype({"label": str, "count": "int64"})

    def count_by_confidence(self, filters: Filters = NO_FILTERS) -> pd.DataFrame:
        """Count predictions per top-1 confidence bin of width 0.1 (the last bin includes 1.0).

        Returns:
            Ten rows with columns `bin_start`, `bin_end` and `count`.
        """
        probability = predictions.c.top1_probability
        # Compare with i/10 rather than truncating probability*10: exact at bin edges
        # and identical on both backends (PostgreSQL rounds when casting to integer).
        bin_index = case(*((probability < (i + 1) / 10, i) for i in range(9)), else_=9).label("bin")
        query = select(bin_index, func.count()).where(*self._where(filters)).group_by(bin_index)
        with self._engine.connect() as conn:
            counts = dict(conn.execute(query).all())
        return pd.DataFrame(
            {
                "bin_start": [i / 10 for i in range(10)],
                "bin_end": [(i + 1) / 10 for i in range(10)],
                "count": [counts.get(i, 0) for i in range(10)],
            }
        ).astype({"count": "int64"})

    def count_feedback_by_model(self, filters: Filters = NO_FILTERS) -> pd.DataFrame:
        """Measure accuracy from user feedback, per model, over rated predictions only.

        Returns:
            Columns `model`, `rated`, `correct` and `share_correct` (0 to 1).
        """
        correct = func.sum(case((predictions.c.feedback == "correct", 1), else_=0))
        query = (
            select(predictions.c.model, func.count(), correct)
            .where(*self._where(filters), predictions.c.feedback.is_not(None))
            .group_by(predictions.c.model)
            .order_by(predictions.c.model)
        )
        frame = self._frame(query, ["model", "rated", "correct"])
        frame = frame.astype({"model": str, "rated": "int64", "correct": "int64"})
        frame["share_correct"] = (frame["correct"] / frame["rated"]).astype("float64")
        return frame

    def _where(self, filters: Filters) -> list[ColumnElement[bool]]:
        """Turn filters into WHERE conditions; every filtered query goes through here."""
        columns = predictions.c
        conditions: list[ColumnElement[bool]] = []
        label = filters.label.strip()
        if label:
            conditions.append(
                or_(
                    self._contains(columns.top1_label, label),
                    self._contains(columns.corrected_label, label),
                )
            )
        if filters.models:
            conditions.append(columns.model.in_(filters.models))
        if filters.min_confidence is not None:
            conditions.append(columns.top1_probability >= filters.min_confidence)
        if filters.max_confidence is not None:
            conditions.append(columns.top1_probability <= filters.max_confidence)
        if filters.start is not None:
            conditions.append(columns.created_at >= filters.start)
        if filters.end is not None:
            conditions.append(columns.created_at < filters.end)
        if filters.feedback == "unrated":
            conditions.append(columns.feedback.is_(None))
        elif filters.feedback != "any":
            conditions.append(columns.feedback == filters.feedback)
        return conditions

    def _contains(self, column: ColumnElement[str], text: str) -> ColumnElement[bool]:
        """Match a case-insensitive substring; a "%" or "_" in it matches only itself."""
        if self._engine.dialect.name == "sqlite":
            # SQLite's LIKE already ignores (ASCII) case; lower() would double the scan time.
            return column.contains(text, autoescape=True)
        return column.icontains(text, autoescape=True)

    def _export_rows(self, filters: Filters, sort: str) -> list[dict[str, Any]]:
        records = self.list(filters, sort=sort, limit=None, with_thumbnails=False)
        rows = []
        for record in records:
            row = {name: getattr(record, name) for name in EXPORT_FIELDS}
            row["created_at"] = record.created_at.isoformat()
            rows.append(row)
        return rows

    def _frame(self, query: Select[Any], columns: list[str]) -> pd.DataFrame:
        with self._engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=columns)

    def _utc_date(self, created_at: ColumnElement[datetime]) -> ColumnElement[Any]:
        if self._engine.dialect.name == "sqlite":
            return func.date(created_at)  # the stored text is already UTC
        return func.date(func.timezone("UTC", created_at))

    def _open_schema(self) -> None:
        """Create the tables in an empty database or upgrade older ones, one process at a time."""
        if self._engine.dialect.name == "sqlite":
            # pysqlite would begin the transaction lazily, at the first write;
            # BEGIN IMMEDIATE takes the write lock first, so a second process
            # starting at the same moment waits here and then finds the tables.
            with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    self._create_or_upgrade(conn)
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
        else:
            with self._engine.begin() as conn:
                conn.execute(select(func.pg_advisory_xact_lock(POSTGRES_SCHEMA_LOCK_KEY)))
                self._create_or_upgrade(conn)

    def _create_or_upgrade(self, conn: Connection) -> None:
        tables = inspect(conn)
        if not tables.has_table(schema_version_table.name):
            if tables.has_table(predictions.name):
                raise HistoryError(
                    "This database has a 'predictions' table but no schema version, so it was "
                    "not created by this app. Set CLASSIFIER_DATABASE_URL to another database."
                )
            metadata.create_all(conn)
            conn.execute(insert(schema_version_table).values(version=self.schema_version))
            return
        found = conn.execute(select(schema_version_table.c.version)).scalar_one()
        if found > self.schema_version:
            raise HistoryError(
                f"This history database was written by a newer version of the app (schema "
                f"version {found}; this version reads up to {self.schema_version}). Upgrade "
                "the app, or set CLASSIFIER_DATABASE_URL to another database."
            )
        for migrate in self.migrations[found - 1 :]:
            migrate(conn)
        if found < self.schema_version:
            conn.execute(update(schema_version_table).values(version=self.schema_version))


def _create_engine(url: str) -> Engine:
    """Create an engine for a SQLite file or a PostgreSQL database (through psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # pre_ping replaces connections the server closed (restart, idle timeout).
        return create_engine(parsed, pool_pre_ping=True)
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
    engine = create_engine(parsed)
    event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _connection_record: Any) -> None:
    """Make a new SQLite connection wait for locks, use WAL and enforce foreign keys."""
    cursor = dbapi_connection.cursor()
    # busy_timeout first: switching to WAL needs a lock another process may hold.
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    # With WAL, NORMAL never corrupts the file; a power cut may lose the last commits.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")  # deleting a prediction deletes its thumbnail
    cursor.close()


def _to_row(record: NewRecord) -> dict[str, Any]:
    """Turn a NewRecord into column values, with plain Python types (not numpy's)."""
    top_k = [
        {
            "label": str(entry["label"]),
            "index": int(entry["index"]),
            "probability": float(entry["probability"]),
        }
        for entry in record.top_k
    ]
    return {
        "created_at": record.created_at,
        "file_name": record.file_name,
        "sha256": record.sha256,
        "width": int(record.width),
        "height": int(record.height),
        "image_format": record.image_format,
        "model": record.model,
        "top_k": top_k,
        "top1_label": top_k[0]["label"],
        "top1_probability": top_k[0]["probability"],
        "inference_ms": float(record.inference_ms),
    }


def _select_records(with_thumbnails: bool) -> Select[Any]:
    if not with_thumbnails:
        return select(*predictions.c)
    return select(*predictions.c, thumbnails.c.image.label("thumbnail")).select_from(
        predictions.outerjoin(thumbnails)
    )


def _to_record(row: RowMapping) -> Record:
    values = dict(row)
    values.setdefault("thumbnail", None)  # not selected: listed without thumbnails
    return Record(**values)


def _order_by(sort: str) -> tuple[ColumnElement[Any], ...]:
    """Return the ORDER BY for a sort name; the id breaks ties so pages never overlap."""
    columns = predictions.c
    orders = {
        "newest": (columns.created_at.desc(), columns.id.desc()),
        "oldest": (columns.created_at.asc(), columns.id.asc()),
        "confidence_desc": (columns.top1_probability.desc(), columns.id.desc()),
        "confidence_asc": (columns.top1_probability.asc(), columns.id.asc()),
    }
    if sort not in orders:
        raise ValueError(f"Expected sort to be one of {SORTS}. Received: {sort!r}")
    return orders[sort]
