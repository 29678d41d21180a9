"""The prediction history: every successful classification, kept in SQLite or PostgreSQL.

`HistoryStore(url)` adds, finds, rates, deletes and exports saved predictions
(`records` defines what they hold, `schema` the tables and their upgrades).
`errors` says what went wrong without giving away the database password, and
`files` writes exports all at once. The summary counts for the charts are in
`stats`, the only part that imports pandas; it is loaded on first use of
`history.stats`.
"""

from __future__ import annotations

import importlib
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
)
from classifier.history.store import HistoryStore

if TYPE_CHECKING:
    from classifier.history import stats

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
    "log_message",
    "masked_url",
    "public_message",
    "stats",
]


def __getattr__(name: str) -> Any:
    if name == "stats":  # imported on first use, so that pandas is too
        return importlib.import_module("classifier.history.stats")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
