"""The models people added, kept in the same database as the history.

A row says what the model is (`details`: class names, input, preprocessing), the
file's digest and size; the file itself is in `model_files`, read only when a
server first needs it. Adding writes both in one transaction, so there is never a
row without its file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from classifier.history.errors import HistoryError
from classifier.history.schema import model_files, models
from classifier.history.store import HistoryStore


class ModelNameTaken(HistoryError):
    """Another added model already has this name."""


@dataclass(frozen=True)
class ModelEntry:
    """One added model as the database keeps it."""

    name: str
    created_at: datetime
    source: str  # what the person added, e.g. "Teachable Machine zip (keras_model.h5)"
    sha256: str  # of the LiteRT file
    size: int
    details: dict[str, Any]


_COLUMNS = (
    models.c.name,
    models.c.created_at,
    models.c.source,
    models.c.sha256,
    models.c.size,
    models.c.details,
)


def _entry(row: Any) -> ModelEntry:
    return ModelEntry(row.name, row.created_at, row.source, row.sha256, row.size, dict(row.details))


def add_model(
    store: HistoryStore,
    name: str,
    source: str,
    sha256: str,
    details: dict[str, Any],
    data: bytes,
    *,
    replace: bool = False,
) -> ModelEntry:
    """Keep a model and its file, both or neither.

    Args:
        replace: a model of that name is replaced (a taught model retrained), in the
            same transaction.

    Raises:
        ModelNameTaken: a model of that name exists (and `replace` is false).
        HistoryReadOnlyError: the store was opened read-only.
    """
    store._require_writable()
    entry = ModelEntry(name, datetime.now(UTC), source, sha256, len(data), details)
    try:
        with store._engine.begin() as conn:
            if replace:
                conn.execute(delete(model_files).where(model_files.c.name == name))
                conn.execute(delete(models).where(models.c.name == name))
            conn.execute(
                insert(models).values(
                    name=name,
                    created_at=entry.created_at,
                    source=source,
                    sha256=sha256,
                    size=len(data),
                    details=details,
                )
            )
            conn.execute(insert(model_files).values(name=name, data=data))
    except IntegrityError:
        raise ModelNameTaken(
            f"A model called “{name}” exists already; pick another name."
        ) from None
    return entry


def list_models(store: HistoryStore) -> list[ModelEntry]:
    """Return every added model, oldest first."""
    with store._engine.connect() as conn:
        rows = conn.execute(select(*_COLUMNS).order_by(models.c.created_at, models.c.name))
        return [_entry(row) for row in rows]


def get_model(store: HistoryStore, name: str) -> ModelEntry | None:
    """Return one added model by name, or None."""
    with store._engine.connect() as conn:
        row = conn.execute(select(*_COLUMNS).where(models.c.name == name)).first()
    return None if row is None else _entry(row)


def model_data(store: HistoryStore, name: str) -> bytes | None:
    """Return an added model's LiteRT file, or None if the model is gone."""
    with store._engine.connect() as conn:
        return conn.execute(
            select(model_files.c.data).where(model_files.c.name == name)
        ).scalar_one_or_none()


def remove_model(store: HistoryStore, name: str) -> bool:
    """Forget an added model and its file; return whether there was one.

    Predictions it made stay in the history, under its name.
    """
    store._require_writable()
    with store._engine.begin() as conn:
        conn.execute(delete(model_files).where(model_files.c.name == name))
        return conn.execute(delete(models).where(models.c.name == name)).rowcount > 0
