"""Tests for the history's tables and their versions: creating, upgrading, refusing.

A hand-written version-1 database is upgraded by every step in
`classifier.history.migrations` and must then match a database created from
`classifier.history.tables`; a new step runs once, a failing one changes nothing,
and a newer or foreign database is refused. On SQLite and (when configured)
PostgreSQL: see test_history_store.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from classifier.history import Filters, HistoryError, HistoryStore, Record
from classifier.labels import TopClass
from tests.helpers import HOSTILE_NAME, T0, make_record, seed

# --- Backends ---------------------------------------------------------------------------


# --- Schema versions --------------------------------------------------------------------

CURRENT_VERSION = 1 + len(HistoryStore.migrations)

# Version 1 exactly as released, written out by hand: if the tables in
# classifier/history/tables.py change without a migration, opening this fails.
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
        source=None,  # saved before sources were kept
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
    assert store.get(new_id).source == "app"
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
        tables = ("evaluations", "job_items", "jobs", "overlays", "photos", "thumbnails")
        tables += ("predictions", "id_high_water")
        tables += ("schema_version", "model_files", "models", "people", "api_tokens")
        for table in tables:
            conn.exec_driver_sql(f"DROP TABLE {table}")
    create_version_1_database(raw)

    open_store()

    assert describe_schema(raw) == new
    assert set(new) == set(tables)


def rolled_back(
    open_store: Callable[..., HistoryStore], raw: sa.Engine, version: int, undo: str
) -> tuple[dict[str, int], list, dict]:
    """Make a new database with rows, then turn it into an older `version` by one statement
    (`undo`); return its rows' ids, the rows, and the new database's schema."""
    first = open_store()
    ids = seed(first)
    before = [first.get(i) for i in ids.values()]
    first.dispose()
    new = describe_schema(raw)
    with raw.begin() as conn:
        conn.exec_driver_sql(undo)
        conn.exec_driver_sql(f"UPDATE schema_version SET version = {version}")
    return ids, before, new


def test_a_version_7_database_gets_the_photos_table_and_keeps_its_rows(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    # Version 7: as now, without the photos table.
    ids, before, new = rolled_back(open_store, raw, 7, "DROP TABLE photos")

    store = open_store()

    assert stored_version(raw) == CURRENT_VERSION
    assert describe_schema(raw) == new
    assert [store.get(i) for i in ids.values()] == before  # thumbnails and feedback too
    assert not any(record.has_photo for record in before)
    kept = store.add(make_record(thumbnail=b"T", photo=b"\xff\xd8 photo"))
    assert (store.get(kept).has_photo, store.photo(kept)) == (True, b"\xff\xd8 photo")
    store.delete([kept])
    with raw.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM photos").scalar_one() == 0


def test_a_version_8_database_takes_unusable_feedback_and_keeps_its_rows_and_pictures(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    class StoreV8(HistoryStore):
        migrations = HistoryStore.migrations[:7]

    create_version_1_database(raw)
    older = open_store(StoreV8)
    ids = seed(older)  # with thumbnails, feedback and corrections
    before = [older.get(i) for i in ids.values()]
    with pytest.raises(sa.exc.IntegrityError):  # version 8 checks for right or wrong only
        older.set_feedback(ids["c.jpg"], "unusable")
    older.dispose()

    store = open_store()

    assert stored_version(raw) == CURRENT_VERSION
    assert [store.get(i) for i in ids.values()] == before  # thumbnails and feedback too
    assert store.set_feedback(ids["c.jpg"], "unusable")
    assert store.get(ids["c.jpg"]).feedback == "unusable"
    assert [r.file_name for r in store.find(Filters(feedback="unusable"))] == ["c.jpg"]
    with raw.begin() as conn, pytest.raises(sa.exc.IntegrityError):  # still checked
        conn.exec_driver_sql("UPDATE predictions SET feedback = 'maybe'")
    if raw.dialect.name == "sqlite":  # its schema was changed in place: still sound
        with raw.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"


def test_a_version_9_database_gets_the_photo_index_and_keeps_its_rows(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    # Version 9: as now, without the index.
    ids, before, new = rolled_back(open_store, raw, 9, "DROP INDEX ix_predictions_photo")
    assert describe_schema(raw) != new

    store = open_store()

    assert stored_version(raw) == CURRENT_VERSION
    assert describe_schema(raw) == new
    assert [store.get(i) for i in ids.values()] == before


def test_a_version_10_database_never_gives_a_deleted_newest_id_again(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    # Version 10: as now, without the table of the highest id given.
    ids, before, new = rolled_back(open_store, raw, 10, "DROP TABLE id_high_water")
    newest = max(ids.values())

    store = open_store()
    assert store.delete([newest]) == 1  # the newest, deleted right after the upgrade
    added = store.add(make_record(file_name="new.jpg"))

    assert stored_version(raw) == CURRENT_VERSION
    assert describe_schema(raw) == new
    assert added > newest
    assert [store.get(i) for i in ids.values() if i != newest] == [
        record for record in before if record.id != newest
    ]


def test_a_version_11_databases_waiting_job_still_finds_anyones_model(
    open_store: Callable[..., HistoryStore], raw: sa.Engine
) -> None:
    """A job sent before version 12 never said whose models its sender could use: it is
    looked up among anyone's, as it was when it was sent."""
    from classifier.history.owners import Scope
    from classifier.history.tables import jobs as jobs_table
    from classifier.jobs import queue

    ids, before, new = rolled_back(
        open_store, raw, 11, "ALTER TABLE jobs DROP COLUMN models_of_anyone"
    )
    public_id = queue.new_public_id_for_job()
    sent = {"public_id": public_id, "owner": "ann", "title": "photos.zip", "top_k": 3}
    sent |= {"model": "Birds", "thumbnails": False, "source": "api", "status": "queued"}
    sent |= {"total": 1, "done": 0, "failed": 0, "created_at": T0, "folder": "jobs/waiting"}
    with raw.begin() as conn:  # (the columns of version 11 only)
        conn.execute(sa.insert(jobs_table).values(**sent))

    store = open_store()
    waiting = queue.get(store, public_id)
    assert stored_version(raw) == CURRENT_VERSION == 12
    assert describe_schema(raw) == new
    assert (waiting.models_of_anyone, waiting.model_scope) == (None, Scope("ann", everyone=True))
    assert [store.get(i) for i in ids.values()] == before


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
