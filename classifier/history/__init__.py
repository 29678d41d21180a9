"""The prediction history: every successful classification, kept in SQLite or PostgreSQL.

`HistoryStore(url)` adds, finds, rates, deletes and exports saved predictions
(`records` defines what they hold). `tables` defines the tables, `migrations`
upgrades those of older releases, and `connecting` makes the engine for a URL
and opens (creates or upgrades) the tables. `registry` keeps the models people
added and `owners` whose rows a store acts on; both query through the store.
`errors` says what went wrong without giving away the database password. The
summary counts for the charts are in `stats`, and what changed over time (with a
chi-square test) in `drift`: the only parts that import pandas (and scipy), loaded on
first use of `history.stats` or `history.drift`. `shared_store(url)` is the process's one
store for a database (one connection pool for the pages, the models people keep and
the command line).
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from classifier.history.errors import (
    HistoryError,
    HistoryReadOnlyError,
    HistoryURLError,
    log_message,
    masked_url,
    public_message,
)
from classifier.history.records import (
    FEEDBACK_FILTERS,
    FEEDBACK_VALUES,
    MAX_LABEL_LENGTH,
    NO_FILTERS,
    SORTS,
    Filters,
    NewRecord,
    Record,
    Removed,
)
from classifier.history.store import HistoryStore

if TYPE_CHECKING:
    from classifier.history import drift, stats

__all__ = [
    "FEEDBACK_FILTERS",
    "FEEDBACK_VALUES",
    "MAX_LABEL_LENGTH",
    "NO_FILTERS",
    "SORTS",
    "Filters",
    "HistoryError",
    "HistoryReadOnlyError",
    "HistoryStore",
    "HistoryURLError",
    "NewRecord",
    "Record",
    "Removed",
    "drift",
    "log_message",
    "masked_url",
    "public_message",
    "shared_store",
    "stats",
]

_shared: dict[str, HistoryStore] = {}
_shared_lock = threading.Lock()


def shared_store(url: str) -> HistoryStore:
    """Return this process's one store for a database, opened on first use (readable also
    where a SQLite file cannot be written: `HistoryStore.open_readable`).

    Raises:
        HistoryError: it cannot be opened (tried again on the next call).
    """
    with _shared_lock:
        if url not in _shared:
            _shared[url] = HistoryStore.open_readable(url)
        return _shared[url]


def close_shared_stores() -> None:
    """Close the stores `shared_store` opened (tests that switch databases)."""
    with _shared_lock:
        for opened in _shared.values():
            opened.dispose()
        _shared.clear()


def __getattr__(name: str) -> Any:
    if name in ("stats", "drift"):  # imported on first use, so that pandas (scipy) is too
        return importlib.import_module(f"classifier.history.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
