"""HistoryStore: add, find, rate, delete and export the saved predictions."""

from __future__ import annotations

import copy
import csv
import io
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from classifier.history.connecting import (
    cannot_write,
    check_schema,
    create_engine,
    lock_rows,
    open_schema,
    read_only_message,
    sqlite_file,
    unwritable,
)
from classifier.history.errors import HistoryError, HistoryReadOnlyError
from classifier.history.migrations import MIGRATIONS, Migration
from classifier.history.owners import EVERYONE, Scope
from classifier.history.records import (
    EXPORT_FIELDS,
    FEEDBACK_VALUES,
    MAX_LABEL_LENGTH,
    NO_FILTERS,
    SORTS,
    Filters,
    NewRecord,
    Record,
    Removed,
    from_row,
    to_export_row,
    to_row,
)
from classifier.history.tables import (
    is_public_id,
    job_items,
    new_public_id,
    overlays,
    photos,
    predictions,
    thumbnails,
)

# A CSV cell starting with one of these is a formula to a spreadsheet (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The pictures kept with a prediction, each in its own table, by the Record field that holds it.
PICTURES = ((thumbnails, "thumbnail"), (overlays, "overlay"), (photos, "photo"))
HIGH_WATER_VERSION = 11  # the schema version that keeps `tables.id_high_water`
# Not yet reviewed: unrated, or rated wrong with no correction (the Review page's queue).
NOT_REVIEWED = or_(
    predictions.c.feedback.is_(None),
    and_(predictions.c.feedback == "wrong", predictions.c.corrected_label.is_(None)),
)
# Cells the app writes itself, of letters, digits, "-" and "_" alone: no formula can be made
# of them, and a public id that begins with "-" must stay the id that links use.
AS_WRITTEN = frozenset({"public_id"})


class HistoryStore:
    """The prediction history in one database, safe to share between threads.

    A Streamlit app opens one store and caches it (`st.cache_resource`):
    `HistoryStore(get_settings().database_url)`. It pools connections itself.
    The modules beside it (`stats`, `registry`, `owners`) run their own queries
    through its public parts only: `connect()` to read, `begin()` to write,
    `conditions(filters)` for the WHERE clause of a query on predictions, and
    `backend` where SQLite and PostgreSQL need different SQL.

    A store opened from a URL acts on every row. `store.scoped(scope)` returns the
    same store limited to one owner's rows (see `owners.Scope`): every read, count,
    summary, export, rating and delete then goes through `conditions` or `_mine`
    (`scope.condition` for the other tables), and everything it saves is that owner's.

    Args:
        url: A SQLAlchemy URL, `sqlite:///path/to/history.db` or
            `postgresql://user@host/db`. The tables are created (or upgraded)
            when the store is opened.
        read_only: Open the database without ever writing to it: nothing is
            created or upgraded, and adding, rating or deleting raises
            HistoryReadOnlyError. A SQLite file is opened with mode=ro, which works
            in a read-only folder too (see `open_readable`).

    Raises:
        HistoryURLError: If the URL cannot be parsed or names a database kind the
            store does not support (also a ValueError; the message never quotes the URL).
        HistoryReadOnlyError: If a SQLite file cannot be written (its folder is
            read-only), or with read_only, not even read.
        HistoryError: If the database was written by a newer version of the app.
    """

    migrations: tuple[Migration, ...] = MIGRATIONS
    #: Whose rows this store acts on; a store opened from a URL acts on everyone's.
    scope: Scope = EVERYONE

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.read_only = read_only
        #: The SQLite file, or None for PostgreSQL.
        self.sqlite_path: Path | None = sqlite_file(url)
        self._engine = create_engine(url, read_only=read_only)
        try:
            if read_only:
                check_schema(self._engine, self.migrations)
            else:
                open_schema(self._engine, self.migrations)
        except (SQLAlchemyError, sqlite3.Error, OSError) as error:
            self._engine.dispose()
            problem = self._explain_sqlite_failure(error)
            if problem is None:
                raise
            raise problem from None
        except BaseException:
            self._engine.dispose()
            raise
        if not read_only and self.sqlite_path is not None:
            # SQLite quietly opens a file it cannot write read-only, and only a first
            # write would fail: say now that nothing can be saved here.
            problem = unwritable(self.sqlite_path)
            if problem is not None:
                self._engine.dispose()
                raise HistoryReadOnlyError(read_only_message(problem, self.sqlite_path))

    @classmethod
    def open_readable(cls, url: str, *, prefer_read_only: bool = False) -> HistoryStore:
        """Open a store that can at least read, also where a SQLite file cannot be written.

        SQLite in WAL mode creates side files beside the database, and opening a
        store takes a write lock, so a history in a read-only folder cannot be
        opened the usual way. Such a file is opened read-only instead (`read_only`
        is then True). A missing file is created as usual; PostgreSQL opens as usual.

        Args:
            url: As for HistoryStore.
            prefer_read_only: Open an existing SQLite file read-only straight
                away, for callers that only read (an export).

        Raises:
            HistoryReadOnlyError: If the file cannot be opened even read-only.
            As HistoryStore otherwise.
        """
        path = sqlite_file(url)
        if path is None or not path.is_file():
            return cls(url)
        if prefer_read_only:
            try:
                return cls(url, read_only=True)
            except HistoryReadOnlyError:
                raise
            except HistoryError:  # no tables yet, or an upgrade due: only a writer does that
                return cls(url)
        try:
            return cls(url)
        except (HistoryReadOnlyError, SQLAlchemyError, sqlite3.Error, OSError) as error:
            if not cannot_write(error):
                raise
        return cls(url, read_only=True)

    def _explain_sqlite_failure(self, error: BaseException) -> HistoryError | None:
        """Turn a SQLite file that cannot be written (or read) into a sentence; None if not that."""
        path = self.sqlite_path
        if path is None or not cannot_write(error):
            return None
        problem = unwritable(path)
        if not self.read_only:
            if problem is None:
                return None
            return HistoryReadOnlyError(read_only_message(problem, path))
        if not path.is_file():
            return HistoryError(f"There is no history database at {path}.")
        reason = str(getattr(error, "orig", None) or error)
        if problem is None:
            return HistoryReadOnlyError(
                f"The history database {path} cannot be opened, even read-only ({reason})."
            )
        return HistoryReadOnlyError(read_only_message(problem, path, even_read_only=reason))

    def scoped(self, scope: Scope) -> HistoryStore:
        """Return this store limited to a scope; it shares the connection pool."""
        limited = copy.copy(self)
        limited.scope = scope
        return limited

    @property
    def schema_version(self) -> int:
        """Return the schema version this code writes: 1 plus one per upgrade step."""
        return 1 + len(self.migrations)

    @property
    def backend(self) -> str:
        """Return the kind of database: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    def connect(self) -> Connection:
        """Return a pooled connection to read with: `with store.connect() as conn: ...`.

        A query on it sees every row: keep it to the store's scope with
        `conditions(filters)` (predictions) or `scope.condition(column)` (other tables).
        """
        return self._engine.connect()

    def begin(self) -> AbstractContextManager[Connection]:
        """Start a transaction to write in: `with store.begin() as conn: ...`.

        It commits when the block ends, or rolls back if the block raises. As with
        `connect`, keep each statement to the store's scope.

        Raises:
            HistoryReadOnlyError: If the store is read-only (before connecting).
        """
        self._require_writable()
        return self._engine.begin()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def add(self, record: NewRecord) -> int:
        """Store one prediction (the scope's owner's) and return its id."""
        return self.add_many([record])[0]

    def add_many(self, records: Iterable[NewRecord]) -> list[int]:
        """Store predictions in one transaction and return their ids, in order."""
        records = list(records)
        if not records:
            return []
        with self.begin() as conn:
            return self.insert(conn, records)

    def insert(self, conn: Connection, records: list[NewRecord]) -> list[int]:
        """Store predictions (the scope's owner's) inside a transaction the caller holds,
        with their pictures; return their ids, in order."""
        if not records:
            return []
        rows = [
            {**to_row(record), "owner": self.scope.owner, "public_id": new_public_id()}
            for record in records
        ]
        if (new_ids := self._new_ids(conn, len(rows))) is not None:
            rows = [{**row, "id": new_id} for row, new_id in zip(rows, new_ids, strict=True)]
        ids = (
            conn.execute(
                insert(predictions).returning(predictions.c.id, sort_by_parameter_order=True),
                rows,
            )
            .scalars()
            .all()
        )
        for table, field in PICTURES:
            pictures = [
                {"prediction_id": record_id, "image": bytes(getattr(record, field))}
                for record_id, record in zip(ids, records, strict=True)
                if getattr(record, field) is not None
            ]
            if pictures:
                conn.execute(insert(table), pictures)
        return list(ids)

    def _new_ids(self, conn: Connection, count: int) -> list[int] | None:
        """Return `count` prediction ids never given before, on SQLite; None on PostgreSQL,
        whose sequence gives them itself.

        SQLite by itself gives the next row the highest id + 1, so a deleted newest
        prediction's id would come back, and a page still showing it would rate or delete
        the new one. The ids come from above `tables.id_high_water`, which this raises in
        the same statement (a write: it takes the lock, so two writers never get the same).
        """
        if conn.dialect.name != "sqlite" or self.schema_version < HIGH_WATER_VERSION:
            return None  # (an older schema, kept by tests of the upgrades)
        highest = "(SELECT coalesce(max(id), 0) FROM predictions)"
        top = conn.exec_driver_sql(
            f"INSERT INTO id_high_water (name, value) VALUES ('predictions', {highest} + ?) "
            f"ON CONFLICT (name) DO UPDATE SET value = max(value, {highest}) + ? RETURNING value",
            (count, count),
        ).scalar_one()
        return list(range(top - count + 1, top + 1))

    def public_ids(self, ids: Iterable[int]) -> dict[int, str]:
        """Return the public ids (the names in links) of rows in scope, by row id."""
        query = select(predictions.c.id, predictions.c.public_id).where(
            predictions.c.id.in_(list(ids)), *self._mine()
        )
        with self.connect() as conn:
            return {row.id: row.public_id for row in conn.execute(query)}

    def get(self, record_id: int) -> Record | None:
        """Return one prediction with its thumbnail, or None if there is no such id in scope."""
        query = _select_records(with_thumbnails=True).where(
            predictions.c.id == record_id, *self._mine()
        )
        with self.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else from_row(row)

    def get_public(self, public_id: str) -> Record | None:
        """Return the prediction a link names (`?prediction=...`), or None.

        An unknown id, another owner's and one that is not an id at all give the same
        None, so a link cannot tell whether a prediction exists.
        """
        if not is_public_id(public_id):
            return None
        query = _select_records(with_thumbnails=True).where(
            predictions.c.public_id == public_id, *self._mine()
        )
        with self.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else from_row(row)

    def photo(self, record_id: int) -> bytes | None:
        """Return the photo kept to teach from with a prediction in scope (a JPEG,
        `images.reduced_copy`), or None if none was kept or there is no such id in scope."""
        return self.photos([record_id]).get(record_id)

    def photos(self, ids: Iterable[int]) -> dict[int, bytes]:
        """Return the photos kept to teach from with these predictions in scope, by row id
        (those without one are left out)."""
        query = (
            select(photos.c.prediction_id, photos.c.image)
            .join(predictions, predictions.c.id == photos.c.prediction_id)
            .where(photos.c.prediction_id.in_(list(ids)), *self._mine())
        )
        with self.connect() as conn:
            return {row.prediction_id: bytes(row.image) for row in conn.execute(query)}

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
            .where(*self.conditions(filters))
            .order_by(*order_by)
            .limit(limit)
            .offset(offset)
        )
        query = _select_records(with_thumbnails).where(predictions.c.id.in_(page_ids))
        query = query.order_by(*order_by)
        with self.connect() as conn:
            return [from_row(row) for row in conn.execute(query).mappings()]

    def count(self, filters: Filters = NO_FILTERS) -> int:
        """Return how many predictions match the filters."""
        query = select(func.count()).select_from(predictions).where(*self.conditions(filters))
        with self.connect() as conn:
            return conn.execute(query).scalar_one()

    def models_used(self) -> list[str]:
        """Return the models that made the predictions in scope, by name (also one that has
        since been removed)."""
        query = (
            select(predictions.c.model)
            .where(*self._mine())
            .distinct()
            .order_by(predictions.c.model)
        )
        with self.connect() as conn:
            return list(conn.execute(query).scalars())

    def set_feedback(
        self,
        record_id: int,
        feedback: str | None,
        corrected_label: str | None = None,
        *,
        only_unreviewed: bool = False,
    ) -> bool:
        """Record whether a prediction was right; return False if the id does not exist
        (or, with `only_unreviewed`, if it was reviewed meanwhile).

        Args:
            record_id: The prediction to rate.
            feedback: "correct", "wrong", "unusable" (not a photo to judge or teach from),
                or None to remove a rating.
            corrected_label: The right label, only with "wrong"; blank means none.
            only_unreviewed: Only if it is still `NOT_REVIEWED` (the Review page's actions:
                two people reviewing at once never write over each other).
        """
        if feedback is not None and feedback not in FEEDBACK_VALUES:
            raise ValueError(
                f"Expected feedback 'correct', 'wrong', 'unusable' or None. Received: {feedback!r}"
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
            .where(predictions.c.id == record_id, *self._mine())
            .where(*([NOT_REVIEWED] if only_unreviewed else []))
            .values(feedback=feedback, corrected_label=corrected_label)
        )
        with self.begin() as conn:
            return conn.execute(query).rowcount == 1

    def delete(self, ids: Iterable[int]) -> int:
        """Delete the predictions with these ids in scope (and their pictures); return how many."""
        ids = list(ids)
        if not ids:
            return 0
        query = delete(predictions).where(predictions.c.id.in_(ids), *self._mine())
        with self.begin() as conn:
            return conn.execute(query).rowcount

    def remove(self, ids: Iterable[int]) -> Removed:
        """Delete the predictions with these ids in scope, and return them whole (pictures,
        feedback, their places in batch jobs), so that `restore` can put them back."""
        ids = list(ids)
        if not ids:
            return Removed((), ())
        chosen = predictions.c.id.in_(ids)
        read = _select_records(with_thumbnails=True, with_photos=True).where(chosen, *self._mine())
        links = select(job_items.c.job_id, job_items.c.position, job_items.c.prediction_id).where(
            job_items.c.prediction_id.in_(ids)
        )
        with self.begin() as conn:
            # Locked first, then read: feedback given meanwhile is in what an undo brings back.
            lock_rows(conn, predictions.c.feedback, chosen, *self._mine())
            records = tuple(from_row(row) for row in conn.execute(read).mappings())
            kept = [record.id for record in records]
            places = tuple(
                (row.job_id, row.position, row.prediction_id)
                for row in conn.execute(links)
                if row.prediction_id in kept
            )
            conn.execute(delete(predictions).where(predictions.c.id.in_(kept)))
        return Removed(records, places)

    def restore(self, removed: Removed) -> int:
        """Put back what `remove` deleted, as it was: ids, public ids (so links open again),
        owners, feedback, pictures and places in batch jobs; return how many came back.

        A prediction already back (its public id is taken) is left as it is, so restoring
        twice restores once. One whose id another prediction holds (in a SQLite history
        from before schema version 11, which could give a deleted highest id again) comes
        back under a new id, with its public id.
        """
        if not removed.records:
            return 0
        public_ids = [record.public_id for record in removed.records]
        with self.begin() as conn:
            back = set(
                conn.execute(
                    select(predictions.c.public_id).where(predictions.c.public_id.in_(public_ids))
                ).scalars()
            )
            missing = [record for record in removed.records if record.public_id not in back]
            taken = set(
                conn.execute(
                    select(predictions.c.id).where(
                        predictions.c.id.in_([record.id for record in missing])
                    )
                ).scalars()
            )
            new_ids = {}
            # Those that keep their ids first. (Only for a SQLite history from before schema
            # version 11, which gave the others the highest id + 1: that must not be one
            # still to be put back. Now new ids are above every id ever given.)
            for record in sorted(missing, key=lambda record: record.id in taken):
                row = {
                    **to_row(record),
                    "owner": record.owner,
                    "public_id": record.public_id,
                    "feedback": record.feedback,
                    "corrected_label": record.corrected_label,
                }
                if record.id not in taken:
                    row["id"] = record.id
                elif (given := self._new_ids(conn, 1)) is not None:
                    row["id"] = given[0]
                new_ids[record.id] = conn.execute(
                    insert(predictions).returning(predictions.c.id), row
                ).scalar_one()
            for table, field in PICTURES:
                pictures = [
                    {"prediction_id": new_ids[record.id], "image": bytes(getattr(record, field))}
                    for record in missing
                    if getattr(record, field) is not None
                ]
                if pictures:
                    conn.execute(insert(table), pictures)
            for job_id, position, old_id in removed.job_places:
                if old_id in new_ids:
                    conn.execute(
                        update(job_items)
                        .where(job_items.c.job_id == job_id, job_items.c.position == position)
                        .values(prediction_id=new_ids[old_id])
                    )
        return len(missing)

    def clear(self) -> int:
        """Delete every prediction in scope; return how many there were."""
        with self.begin() as conn:
            return conn.execute(delete(predictions).where(*self._mine())).rowcount

    def export_csv(
        self,
        filters: Filters = NO_FILTERS,
        sort: str = "newest",
        model_title: Callable[[str], str] | None = None,
        link: Callable[[str], str] | None = None,
    ) -> bytes:
        """Return the matching predictions as UTF-8 CSV with a header row, without thumbnails.

        `top_k` is a JSON list of {"label", "index", "probability"} objects in its cell;
        `top1_label` and `top1_probability` beside it are plain columns a spreadsheet
        can sort; `has_photo` (True or False) says whether a photo to teach from was kept
        with the row. Given `model_title`, a `model_title` column follows `model`; given
        `link` (a public id to the address that opens it), a `link` column follows
        `public_id`. A text
        cell that a spreadsheet would run as a formula (one starting with =, +, -, @,
        a tab or a carriage return, such as a file named `=HYPERLINK(...)`) gets a
        leading single quote, as OWASP advises; numbers are written as they are.
        """
        header = list(EXPORT_FIELDS)
        if model_title is not None:
            header.insert(header.index("model") + 1, "model_title")
        if link is not None:
            header.insert(header.index("public_id") + 1, "link")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for row in self._export_rows(filters, sort, link):
            row["top_k"] = json.dumps(row["top_k"], ensure_ascii=False)
            if model_title is not None:
                row["model_title"] = model_title(row["model"])
            writer.writerow(
                row[name] if name in AS_WRITTEN else _inert(row[name]) for name in header
            )
        return buffer.getvalue().encode("utf-8")

    def export_json(
        self,
        filters: Filters = NO_FILTERS,
        sort: str = "newest",
        link: Callable[[str], str] | None = None,
    ) -> bytes:
        """Return the matching predictions as a UTF-8 JSON list of objects, without thumbnails
        (`has_photo` true where a photo to teach from was kept); given `link` (as for
        `export_csv`), each with its `link` after its `public_id`."""
        rows = self._export_rows(filters, sort, link)
        return json.dumps(rows, ensure_ascii=False, indent=2).encode("utf-8")

    def conditions(self, filters: Filters) -> list[ColumnElement[bool]]:
        """Return the WHERE conditions on `tables.predictions` for these filters, in scope.

        Every list, count, summary and export goes through here, so none of them
        reads beyond the store's scope: `select(...).where(*store.conditions(filters))`.
        """
        columns = predictions.c
        conditions = self._mine()
        label = filters.label  # already cleaned and bounded by Filters
        if label:
            conditions.append(
                or_(
                    self._contains(columns.top1_label, label),
                    self._contains(columns.corrected_label, label),
                )
            )
        if filters.models:  # (no model's name holds a control character: PostgreSQL
            # refuses a NUL in a query, and such a name matches nothing anyway)
            named = [name for name in filters.models if name.isprintable()]
            conditions.append(columns.model.in_(named))
        if filters.min_confidence is not None:
            conditions.append(columns.top1_probability >= filters.min_confidence)
        if filters.max_confidence is not None:
            conditions.append(columns.top1_probability <= filters.max_confidence)
        if filters.start is not None:
            conditions.append(columns.created_at >= filters.start)
        if filters.end is not None:
            conditions.append(columns.created_at < filters.end)
        if filters.job is not None:
            conditions.append(columns.job_id == filters.job)
        if filters.feedback == "unrated":
            conditions.append(columns.feedback.is_(None))
        elif filters.feedback != "any":
            conditions.append(columns.feedback == filters.feedback)
        return conditions

    def _mine(self) -> list[ColumnElement[bool]]:
        """Return the condition that keeps a query to the scope's rows (none for everyone's)."""
        return self.scope.condition(predictions.c.owner)

    def _contains(self, column: ColumnElement[str], text: str) -> ColumnElement[bool]:
        """Match a case-insensitive substring; a "%" or "_" in it matches only itself."""
        if self.backend != "sqlite":
            return column.icontains(text, autoescape=True)  # PostgreSQL knows every letter's case
        if text.isascii():
            # SQLite's LIKE already ignores ASCII case; a function would double the scan time.
            return column.contains(text, autoescape=True)
        # LIKE ignores the case of ASCII letters only: compare caseless forms (É, é; ß, SS).
        folded = func.casefold(column, type_=Text)  # registered on each connection (connecting)
        return folded.contains(text.casefold(), autoescape=True)

    def _require_writable(self) -> None:
        """Refuse to write in a read-only store (see `begin`)."""
        if self.read_only:
            where = f" ({self.sqlite_path})" if self.sqlite_path is not None else ""
            raise HistoryReadOnlyError(
                f"The history database{where} is open read-only: nothing can be saved, "
                "changed or deleted."
            )

    def _export_rows(
        self, filters: Filters, sort: str, link: Callable[[str], str] | None = None
    ) -> list[dict[str, Any]]:
        records = self.find(filters, sort=sort, limit=None, with_thumbnails=False)
        rows = [to_export_row(record) for record in records]
        if link is None:
            return rows
        return [_with_link(row, link) for row in rows]


def safe_csv(rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> bytes:
    """Return rows as UTF-8 CSV with a header, each text cell a spreadsheet would run as a
    formula made inert (as `HistoryStore.export_csv` does)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _inert(value) for key, value in row.items()})
    return out.getvalue().encode()


def _with_link(row: dict[str, Any], link: Callable[[str], str]) -> dict[str, Any]:
    """Return an export row with its `link` right after its `public_id`."""
    linked: dict[str, Any] = {}
    for name, value in row.items():
        linked[name] = value
        if name == "public_id":
            linked["link"] = link(value) if value else None
    return linked


def _inert(value: Any) -> Any:
    """Return a CSV cell that no spreadsheet runs as a formula (text only: -2.5 is a number)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


def _select_records(with_thumbnails: bool, with_photos: bool = False) -> Select[Any]:
    """Select whole records: their columns and whether a photo was kept (`has_photo`); with
    thumbnails, their small pictures too; with photos (to put them back), the photos."""
    kept = exists().where(photos.c.prediction_id == predictions.c.id).correlate(predictions)
    has_photo = kept.label("has_photo")
    if not with_thumbnails:
        return select(*predictions.c, has_photo)
    joined = predictions.outerjoin(thumbnails).outerjoin(overlays)
    pictures = [thumbnails.c.image.label("thumbnail"), overlays.c.image.label("overlay")]
    if with_photos:
        joined = joined.outerjoin(photos)
        pictures.append(photos.c.image.label("photo"))
    return select(*predictions.c, has_photo, *pictures).select_from(joined)


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
