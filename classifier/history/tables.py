"""The history's tables, as SQLAlchemy Table objects in their newest version.

`predictions` holds one row per saved classification, `thumbnails` and `overlays`
its small pictures, `photos` the larger copies kept to teach from, `models` and
`model_files` the models people added, `people` those who signed in, `api_tokens` the
tokens programs call the API with, `id_high_water` the highest prediction id SQLite has
given, and `schema_version` the version number that
`migrations` upgrades. Nothing here connects to a database: `connecting` makes the
engine and creates these tables. Change a table only together with a new step in
`migrations.MIGRATIONS`, which brings older databases to the same tables.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
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
)

MAX_MODEL_NAME_LENGTH = 60
PUBLIC_ID_LENGTH = 32  # room for `secrets.token_urlsafe(16)` (22 characters)


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


# The schema, in its newest version. Change it only with a new step in `migrations.MIGRATIONS`.
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
    # Schema version 5. Where it was classified: "app" (a page), "api" or "cli"; NULL for
    # rows saved before sources were kept (all from the app or the command line).
    Column("source", Text),
    # Schema version 6. The batch job that classified it (`jobs.id`), or NULL.
    Column("job_id", Integer),
    # 'unusable' since schema version 9 (`migrations._allow_unusable_feedback`).
    CheckConstraint("feedback IN ('correct', 'wrong', 'unusable')", name="ck_predictions_feedback"),
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
Index("ix_predictions_job", predictions.c.job_id)
# Each photo's answers by model: the Review queue looks for photos that two models answered
# differently (BENCHMARKS.md, "Review queue, whole history").
PHOTO_INDEX = Index("ix_predictions_photo", predictions.c.sha256, predictions.c.model)

# Schema version 11. The highest prediction id ever given, for SQLite: by itself it gives a
# deleted newest prediction's id to the next new one, and a page still showing the deleted
# prediction would then rate or delete the new one. The store takes new ids above it
# (`HistoryStore.insert`). PostgreSQL's sequence never gives an id twice; the table stays
# empty there. One row per table, by name ("predictions").
id_high_water = Table(
    "id_high_water",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
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

# A reduced copy of a saved photo, large enough to teach a model from (schema version 8):
# kept beside the thumbnail when the person asked for it (`images.reduced_copy`). In its
# own table like the thumbnails, and like them the row's owner's.
photos = Table(
    "photos",
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

# API tokens (schema version 5): each belongs to a signed-in person and is kept only as the
# sha256 of its secret; a request carrying it acts as that person.
MAX_TOKEN_NAME_LENGTH = 60
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", Text, nullable=False),
    Column("name", String(MAX_TOKEN_NAME_LENGTH), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    # The email the sign-in provider verified when it was made: an admin named by email
    # (CLASSIFIER_ADMINS) is one through their tokens too. NULL: none verified.
    Column("verified_email", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
)
Index("ix_api_tokens_secret", api_tokens.c.secret_sha256, unique=True)
Index("ix_api_tokens_owner_name", api_tokens.c.owner, api_tokens.c.name, unique=True)

# Batch jobs (schema version 6): a model and a set of pictures, run in the background by a
# server (`classifier.jobs`). Each picture is a row of `job_items`; each answer is an
# ordinary prediction row (with `job_id`), saved in the same transaction that marks its
# item done, so a job resumed after a crash classifies no picture twice and loses none.
JOB_STATUSES = ("queued", "running", "done", "cancelled", "failed")
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(PUBLIC_ID_LENGTH), nullable=False),
    Column("owner", Text),  # as predictions.owner
    Column("title", Text, nullable=False),  # what the person gave: a folder's or zip's name
    Column("model", Text, nullable=False),
    Column("top_k", Integer, nullable=False),
    Column("thumbnails", Boolean, nullable=False),  # keep a thumbnail with each answer
    Column("source", Text, nullable=False),  # "app", "api" or "cli"
    Column("status", String(16), nullable=False),
    Column("total", Integer, nullable=False),
    Column("done", Integer, nullable=False),  # pictures classified
    Column("failed", Integer, nullable=False),  # pictures that could not be
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("error", Text),  # why the whole job stopped (status "failed")
    # Which server process runs it ("host pid"), and when it last said so: a job whose
    # process is gone is taken over (after a restart at once, elsewhere once it is stale).
    Column("worker", Text),
    Column("heartbeat_at", UTCDateTime),
    Column("folder", Text, nullable=False),  # its pictures, under that server's data folder
    # Schema version 12: whose added models its sender could use, so the runner looks the
    # model up as they would: True anyone's (a shared history, an admin, the command line),
    # False the job owner's only (nobody's if it has none). NULL, sent before: anyone's.
    Column("models_of_anyone", Boolean),
    CheckConstraint(
        "status IN ('queued', 'running', 'done', 'cancelled', 'failed')",
        name="ck_jobs_status",
    ),
)
Index("ix_jobs_public_id", jobs.c.public_id, unique=True)
Index("ix_jobs_owner", jobs.c.owner, jobs.c.created_at)
Index("ix_jobs_status", jobs.c.status)

job_items = Table(
    "job_items",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("file_name", Text, nullable=False),
    Column("status", String(8), nullable=False),  # "pending", "done" or "failed"
    Column("error", Text),  # why it could not be classified
    Column("prediction_id", Integer, ForeignKey("predictions.id", ondelete="SET NULL")),
    # Schema version 7: a job of an evaluation keeps each answer here, not in the history.
    Column("truth", Integer),  # the model's class index of the picture's label
    Column("answer", Text),  # JSON: evaluation.metrics.Answer.as_dict()
    Column("thumbnail", LargeBinary),  # when the job keeps thumbnails
    CheckConstraint("status IN ('pending', 'done', 'failed')", name="ck_job_items_status"),
)

# Evaluations (schema version 7): one model's numbers on one labelled set
# (`classifier.evaluation`). Models evaluated together share a `run_id`; one run from the
# app or the API has a job per model (`job_id`), whose answers become `report` and
# `answers` when it ends; one from the command line is kept whole at once.
EVALUATION_STATUSES = ("running", "done", "cancelled", "failed")
evaluations = Table(
    "evaluations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(PUBLIC_ID_LENGTH), nullable=False),
    Column("run_id", String(PUBLIC_ID_LENGTH), nullable=False),
    Column("owner", Text),  # as predictions.owner
    Column("title", Text, nullable=False),  # the set's name
    Column("set_digest", String(64)),  # of its pictures and labels, once all were read
    Column("model", Text, nullable=False),
    Column("model_title", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="SET NULL")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("photos", Integer),  # pictures read and labelled with one of the model's classes
    Column("accuracy", Float),  # top-1, a fraction of `photos`
    Column("error", Text),
    Column("setup", Text, nullable=False),  # JSON: its classes, what was left out
    Column("report", Text),  # JSON: evaluation.metrics.report()
    Column("answers", Text),  # JSON: each picture's answer, and the unreadable ones
    CheckConstraint(
        "status IN ('running', 'done', 'cancelled', 'failed')", name="ck_evaluations_status"
    ),
)
Index("ix_evaluations_public_id", evaluations.c.public_id, unique=True)
Index("ix_evaluations_run", evaluations.c.run_id)
Index("ix_evaluations_owner_model", evaluations.c.owner, evaluations.c.model)
Index("ix_evaluations_job", evaluations.c.job_id)

schema_version_table = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)


# What a public id looks like (`secrets.token_urlsafe`); anything else is not looked up.
PUBLIC_ID_PATTERN = r"[A-Za-z0-9_-]{16,32}"
_PUBLIC_ID = re.compile(PUBLIC_ID_PATTERN)


def is_public_id(text: object) -> bool:
    """Tell whether a text has a public id's shape (an address, a link or a request may
    hold anything: PostgreSQL refuses a NUL character, for one)."""
    return isinstance(text, str) and _PUBLIC_ID.fullmatch(text) is not None


def new_public_id() -> str:
    """Return a prediction's public id: 128 random bits, URL-safe (22 characters), never
    starting with "-" (which a spreadsheet or a command line could take for something else)."""
    while (public_id := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return public_id
