"""The models people added, kept in the same database as the history.

A row says what the model is (`details`: class names, input, preprocessing), the
file's digest and size; the file itself is in `model_files`, read only when a
server first needs it. Adding writes both in one transaction, so there is never a
row without its file.

Each model has an owner like a prediction (`owners`): a store scoped to one owner
lists, finds, replaces and removes only that owner's models, and adds models as
theirs. Names are unique across owners, since the history names models by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from classifier.errors import ModelChanged, ModelNameTaken
from classifier.history.store import HistoryStore
from classifier.history.tables import model_files, models


@dataclass(frozen=True)
class ModelEntry:
    """One added model as the database keeps it."""

    name: str
    created_at: datetime
    source: str  # what the person added, e.g. "Teachable Machine zip (keras_model.h5)"
    sha256: str  # of the LiteRT file
    size: int
    details: dict[str, Any]
    owner: str | None = None  # who added or taught it; None: nobody


_COLUMNS = (
    models.c.name,
    models.c.created_at,
    models.c.source,
    models.c.sha256,
    models.c.size,
    models.c.details,
    models.c.owner,
)


def _entry(row: Any) -> ModelEntry:
    return ModelEntry(
        row.name, row.created_at, row.source, row.sha256, row.size, dict(row.details), row.owner
    )


def _mine(store: HistoryStore) -> list[ColumnElement[bool]]:
    """Keep a query to the store's scope (see `HistoryStore.scoped`)."""
    return store.scope.condition(models.c.owner)


def add_model(
    store: HistoryStore,
    name: str,
    source: str,
    sha256: str,
    details: dict[str, Any],
    data: bytes,
    *,
    replacing: ModelEntry | None = None,
) -> ModelEntry:
    """Keep a model and its file, both or neither, as the store's scope's owner's (a model
    replaced stays its owner's).

    Args:
        replacing: the model of that name in the store's scope, as read, replaced by this
            one (a taught model retrained) in the same transaction.

    Raises:
        ModelNameTaken: another model has this name (and none is being replaced).
        ModelChanged: `replacing` was replaced or removed since it was read (two saves at
            once: the second never writes over the first, nor brings back a removed one).
        HistoryReadOnlyError: the store was opened read-only.
    """
    # A model retrained stays its owner's (retrained by an admin, or from the command line).
    owner = store.scope.owner if replacing is None else replacing.owner
    entry = ModelEntry(name, datetime.now(UTC), source, sha256, len(data), details, owner)
    try:
        with store.begin() as conn:
            if replacing is not None:
                replaced = delete(models).where(
                    models.c.name == name, models.c.sha256 == replacing.sha256, *_mine(store)
                )
                if not conn.execute(replaced).rowcount:
                    raise ModelChanged.about(name)
                conn.execute(delete(model_files).where(model_files.c.name == name))
            conn.execute(
                insert(models).values(
                    name=name,
                    created_at=entry.created_at,
                    source=source,
                    sha256=sha256,
                    size=len(data),
                    details=details,
                    owner=owner,
                )
            )
            conn.execute(insert(model_files).values(name=name, data=data))
    except IntegrityError:
        raise ModelNameTaken(
            f"A model called “{name}” exists already; pick another name."
        ) from None
    return entry


def list_models(store: HistoryStore) -> list[ModelEntry]:
    """Return every added model in the store's scope, oldest first."""
    query = select(*_COLUMNS).where(*_mine(store)).order_by(models.c.created_at, models.c.name)
    with store.connect() as conn:
        rows = conn.execute(query)
        return [_entry(row) for row in rows]


def get_model(store: HistoryStore, name: str) -> ModelEntry | None:
    """Return one added model in the store's scope by name, or None."""
    query = select(*_COLUMNS).where(models.c.name == name, *_mine(store))
    with store.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _entry(row)


def model_data(store: HistoryStore, name: str) -> bytes | None:
    """Return an added model's LiteRT file (in the store's scope), or None if it is gone."""
    query = (
        select(model_files.c.data)
        .join(models, models.c.name == model_files.c.name)
        .where(model_files.c.name == name, *_mine(store))
    )
    with store.connect() as conn:
        return conn.execute(query).scalar_one_or_none()


def remove_model(store: HistoryStore, name: str) -> bool:
    """Forget an added model in the store's scope and its file; return whether there was one.

    Predictions it made stay in the history, under its name.
    """
    with store.begin() as conn:
        if not conn.execute(delete(models).where(models.c.name == name, *_mine(store))).rowcount:
            return False
        conn.execute(delete(model_files).where(model_files.c.name == name))
        return True
