"""HistoryStore: add, find, rate, delete and export the saved predictions."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from classifier.history.records import (
    EXPORT_FIELDS,
    FEEDBACK_VALUES,
    MAX_LABEL_LENGTH,
    NO_FILTERS,
    SORTS,
    Filters,
    NewRecord,
    Record,
    from_row,
    to_export_row,
    to_row,
)
from classifier.history.schema import (
    MIGRATIONS,
    Migration,
    create_engine,
    open_schema,
    predictions,
    thumbnails,
)


class HistoryStore:
    """The prediction history in one database, safe to share between threads.

    A Streamlit app opens one store and caches it (`st.cache_resource`):
    `HistoryStore(get_settings().database_url)`. It pools connections itself.
    The summary queries live in `classifier.history.stats`, which reads the
    store's `_engine` and builds its WHERE clauses with `_where`.

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
        self._engine = create_engine(url)
        try:
            open_schema(self._engine, self.migrations)
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
                    [to_row(record) for record in records],
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
        return None if row is None else from_row(row)

    def find(
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
            return [from_row(row) for row in conn.execute(query).mappings()]

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
        """Return the matching predictions as UTF-8 CSV with a header row, without thumbnails.

        `top_k` is a JSON list of {"label", "index", "probability"} objects in its cell.
        """
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
        records = self.find(filters, sort=sort, limit=None, with_thumbnails=False)
        return [to_export_row(record) for record in records]


def _select_records(with_thumbnails: bool) -> Select[Any]:
    if not with_thumbnails:
        return select(*predictions.c)
    return select(*predictions.c, thumbnails.c.image.label("thumbnail")).select_from(
        predictions.outerjoin(thumbnails)
    )


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
