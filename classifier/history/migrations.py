"""The versioned upgrades of the history's tables, and the version number that tracks them.

A database stores its schema version in the `schema_version` table. A release
that changes the tables in `tables` appends an upgrade step to `MIGRATIONS`, so a
history written by an older release is upgraded in place when it is opened.
`create_or_upgrade` creates the tables in an empty database or runs the steps it
has not had yet; `check_version` only checks, for a database opened read-only.
Both work on a connection that `connecting.open_schema` or `check_schema` opened.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    insert,
    inspect,
    select,
    update,
)

from classifier.history.errors import HistoryError
from classifier.history.tables import (
    MAX_MODEL_NAME_LENGTH,
    MAX_TOKEN_NAME_LENGTH,
    PUBLIC_ID_LENGTH,
    UTCDateTime,
    metadata,
    new_public_id,
    predictions,
    schema_version_table,
)

Migration = Callable[[Connection], None]

# Upgrade steps, oldest first: MIGRATIONS[0] turns a version-1 database into
# version 2, MIGRATIONS[1] turns version 2 into 3, and so on. Never edit or
# remove a step once released; a database remembers which ones it has had.
# tests/test_history_tables_and_migrations.py keeps a hand-written version-1 database
# and checks that, once upgraded, it matches a database created from scratch.


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


def _add_sources_and_tokens(conn: Connection) -> None:
    """Version 4 -> 5: where each prediction was classified, and the API tokens table.

    Existing rows keep a NULL source (saved by the app or the command line).
    """
    conn.exec_driver_sql("ALTER TABLE predictions ADD COLUMN source TEXT")
    version_5 = MetaData()
    tokens = Table(
        "api_tokens",
        version_5,
        Column("id", Integer, primary_key=True),
        Column("owner", Text, nullable=False),
        Column("name", String(MAX_TOKEN_NAME_LENGTH), nullable=False),
        Column("secret_sha256", String(64), nullable=False),
        Column("verified_email", Text),
        Column("created_at", UTCDateTime, nullable=False),
        Column("last_used_at", UTCDateTime),
    )
    Index("ix_api_tokens_secret", tokens.c.secret_sha256, unique=True)
    Index("ix_api_tokens_owner_name", tokens.c.owner, tokens.c.name, unique=True)
    version_5.create_all(conn)


def _add_jobs(conn: Connection) -> None:
    """Version 5 -> 6: batch jobs, their pictures, and each prediction's job."""
    conn.exec_driver_sql("ALTER TABLE predictions ADD COLUMN job_id INTEGER")
    conn.exec_driver_sql("CREATE INDEX ix_predictions_job ON predictions (job_id)")
    version_6 = MetaData()
    Table("predictions", version_6, Column("id", Integer, primary_key=True))
    jobs = Table(
        "jobs",
        version_6,
        Column("id", Integer, primary_key=True),
        Column("public_id", String(PUBLIC_ID_LENGTH), nullable=False),
        Column("owner", Text),
        Column("title", Text, nullable=False),
        Column("model", Text, nullable=False),
        Column("top_k", Integer, nullable=False),
        Column("thumbnails", Boolean, nullable=False),
        Column("source", Text, nullable=False),
        Column("status", String(16), nullable=False),
        Column("total", Integer, nullable=False),
        Column("done", Integer, nullable=False),
        Column("failed", Integer, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("started_at", UTCDateTime),
        Column("finished_at", UTCDateTime),
        Column("error", Text),
        Column("worker", Text),
        Column("heartbeat_at", UTCDateTime),
        Column("folder", Text, nullable=False),
        CheckConstraint(
            "status IN ('queued', 'running', 'done', 'cancelled', 'failed')",
            name="ck_jobs_status",
        ),
    )
    Index("ix_jobs_public_id", jobs.c.public_id, unique=True)
    Index("ix_jobs_owner", jobs.c.owner, jobs.c.created_at)
    Index("ix_jobs_status", jobs.c.status)
    Table(
        "job_items",
        version_6,
        Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        Column("position", Integer, primary_key=True),
        Column("file_name", Text, nullable=False),
        Column("status", String(8), nullable=False),
        Column("error", Text),
        Column("prediction_id", Integer, ForeignKey("predictions.id", ondelete="SET NULL")),
        CheckConstraint("status IN ('pending', 'done', 'failed')", name="ck_job_items_status"),
    )
    version_6.create_all(conn, tables=[jobs, version_6.tables["job_items"]])


def _add_evaluations(conn: Connection) -> None:
    """Version 6 -> 7: evaluations, and an evaluation job's answers in its pictures' rows."""
    for column, kind in (("truth", "INTEGER"), ("answer", "TEXT"), ("thumbnail", _blob(conn))):
        conn.exec_driver_sql(f"ALTER TABLE job_items ADD COLUMN {column} {kind}")
    version_7 = MetaData()
    Table("jobs", version_7, Column("id", Integer, primary_key=True))
    found = Table(
        "evaluations",
        version_7,
        Column("id", Integer, primary_key=True),
        Column("public_id", String(PUBLIC_ID_LENGTH), nullable=False),
        Column("run_id", String(PUBLIC_ID_LENGTH), nullable=False),
        Column("owner", Text),
        Column("title", Text, nullable=False),
        Column("set_digest", String(64)),
        Column("model", Text, nullable=False),
        Column("model_title", Text, nullable=False),
        Column("status", String(16), nullable=False),
        Column("job_id", Integer, ForeignKey("jobs.id", ondelete="SET NULL")),
        Column("created_at", UTCDateTime, nullable=False),
        Column("finished_at", UTCDateTime),
        Column("photos", Integer),
        Column("accuracy", Float),
        Column("error", Text),
        Column("setup", Text, nullable=False),
        Column("report", Text),
        Column("answers", Text),
        CheckConstraint(
            "status IN ('running', 'done', 'cancelled', 'failed')", name="ck_evaluations_status"
        ),
    )
    Index("ix_evaluations_public_id", found.c.public_id, unique=True)
    Index("ix_evaluations_run", found.c.run_id)
    Index("ix_evaluations_owner_model", found.c.owner, found.c.model)
    Index("ix_evaluations_job", found.c.job_id)
    version_7.create_all(conn, tables=[found])


def _add_photos_table(conn: Connection) -> None:
    """Version 7 -> 8: the table of photos kept to teach from, as version 8 defined it."""
    version_8 = MetaData()
    Table("predictions", version_8, Column("id", Integer, primary_key=True))
    Table(
        "photos",
        version_8,
        Column(
            "prediction_id",
            Integer,
            ForeignKey("predictions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("image", LargeBinary, nullable=False),
    )
    version_8.tables["photos"].create(conn)


FEEDBACK_CHECK_BEFORE = "feedback IN ('correct', 'wrong')"  # versions 1 to 8
FEEDBACK_CHECK = "feedback IN ('correct', 'wrong', 'unusable')"


def _allow_unusable_feedback(conn: Connection) -> None:
    """Version 8 -> 9: feedback may also be 'unusable' (not a photo to judge or teach from).

    PostgreSQL replaces the CHECK constraint. SQLite cannot alter one, and rebuilding the
    table would delete its pictures along with it (ON DELETE CASCADE); the constraint is
    changed in the stored schema instead, as SQLite's documentation describes for a CHECK
    that every stored row still meets (https://sqlite.org/lang_altertable.html#otheralter).
    """
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql(
            "ALTER TABLE predictions DROP CONSTRAINT IF EXISTS ck_predictions_feedback"
        )
        conn.exec_driver_sql(
            "ALTER TABLE predictions ADD CONSTRAINT ck_predictions_feedback "
            f"CHECK ({FEEDBACK_CHECK})"
        )
        return
    table = "type = 'table' AND name = 'predictions'"
    sql = conn.exec_driver_sql(f"SELECT sql FROM sqlite_master WHERE {table}").scalar_one()
    if FEEDBACK_CHECK in sql:  # already allowed
        return
    if sql.count(FEEDBACK_CHECK_BEFORE) != 1:
        raise HistoryError(
            "The history's predictions table does not check its feedback as this app made "
            "it, so it cannot be upgraded. Set CLASSIFIER_DATABASE_URL to another database."
        )
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema = ON")
    try:
        conn.exec_driver_sql(
            f"UPDATE sqlite_master SET sql = ? WHERE {table}",
            (sql.replace(FEEDBACK_CHECK_BEFORE, FEEDBACK_CHECK),),
        )
        conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")  # read anew
    finally:
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def _index_photos(conn: Connection) -> None:
    """Version 9 -> 10: an index of each photo's answers by model, as version 10 defined it
    (`tables.PHOTO_INDEX`)."""
    version_10 = MetaData()
    table = Table(
        "predictions",
        version_10,
        Column("sha256", String(64), nullable=False),
        Column("model", Text, nullable=False),
    )
    Index("ix_predictions_photo", table.c.sha256, table.c.model).create(conn, checkfirst=True)


def _keep_id_high_water(conn: Connection) -> None:
    """Version 10 -> 11: the table of the highest prediction id given, as version 11 defined
    it (`tables.id_high_water`); on SQLite it starts at the highest id there now."""
    version_11 = MetaData()
    high_water = Table(
        "id_high_water",
        version_11,
        Column("name", String(64), primary_key=True),
        Column("value", Integer, nullable=False),
    )
    high_water.create(conn, checkfirst=True)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO id_high_water (name, value) "
            "SELECT 'predictions', coalesce(max(id), 0) FROM predictions"
        )


def _remember_whose_models(conn: Connection) -> None:
    """Version 11 -> 12: whose added models a job's sender could use (`jobs.models_of_anyone`);
    the jobs sent before say NULL, anyone's, as they were looked up."""
    if all(column["name"] != "models_of_anyone" for column in inspect(conn).get_columns("jobs")):
        conn.exec_driver_sql("ALTER TABLE jobs ADD COLUMN models_of_anyone BOOLEAN")


def _blob(conn: Connection) -> str:
    return "BYTEA" if conn.dialect.name == "postgresql" else "BLOB"


MIGRATIONS: tuple[Migration, ...] = (
    _add_models_tables,
    _add_overlays_table,
    _add_owners,
    _add_sources_and_tokens,
    _add_jobs,
    _add_evaluations,
    _add_photos_table,
    _allow_unusable_feedback,
    _index_photos,
    _keep_id_high_water,
    _remember_whose_models,
)


def create_or_upgrade(conn: Connection, migrations: Sequence[Migration]) -> None:
    """Create the tables in an empty database, or run the upgrade steps it has not had.

    The newest schema version is `1 + len(migrations)`. Call it inside a
    transaction that only one process holds at a time (`connecting.open_schema`).

    Raises:
        HistoryError: If the database holds a foreign predictions table or a newer schema.
    """
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


def check_version(conn: Connection, migrations: Sequence[Migration]) -> None:
    """Check, changing nothing, that the tables exist in the version this code reads.

    Raises:
        HistoryError: If there are no tables, or an older or newer schema (an
            upgrade would need to write).
    """
    newest = 1 + len(migrations)
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
