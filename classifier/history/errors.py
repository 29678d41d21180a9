"""What can go wrong with the history database, said without giving away its password.

A database URL may hold a password. Written with an unencoded "@" in the password,
a URL does not parse the way its author meant: pieces of the password turn up as
the host, the port or the database name, and from there in error messages. So:

- `parse_url` refuses every URL that cannot be parsed unambiguously (and its
  message never quotes the URL);
- `public_message` turns any exception into one sentence for a visitor or the
  command line: no URL, no SQL, no query parameters;
- `log_message` gives the details for the server log, with the URL's password
  masked, and no URL at all when the URL cannot be parsed.
"""

from __future__ import annotations

import errno
import re
import sqlite3
from urllib.parse import quote

import sqlalchemy.exc
from sqlalchemy.engine import URL, make_url

SETTINGS = "CLASSIFIER_DATABASE_URL or [connections.history] url in the secrets"
MALFORMED_URL = f"The history database URL is malformed; check {SETTINGS}."
URL_FORM = (
    "Special characters in its password must be percent-encoded (@ as %40, : as %3A, / as %2F)."
)
UNSUPPORTED_URL = f"{MALFORMED_URL} Expected a sqlite:/// or postgresql:// URL."

# Errors of the connection itself (refused, timed out, dropped), rather than of a query.
_CONNECTION_ERRORS = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,
)
_DATABASE_ERRORS = (sqlalchemy.exc.SQLAlchemyError, sqlite3.Error)
# What a visitor or the command line is told when the database's disk is full, or another
# program holds its lock: neither means the database cannot be reached.
DISK_FULL = (
    "The disk holding the history database is full; nothing can be saved to the history "
    "until space is freed."
)
DATABASE_BUSY = "The history database is busy (locked by another program); try again."
# SQLSTATEs (PostgreSQL): disk_full, and lock_not_available (a lock_timeout ran out).
_FULL_SQLSTATES = frozenset({"53100"})
_BUSY_SQLSTATES = frozenset({"55P03"})
# For drivers that give no code: the first line of their message, lower-cased.
_FULL_WORDS = (
    "database or disk is full",
    "disk full",
    "no space left on device",
    "could not extend file",
)
_BUSY_WORDS = ("database is locked", "database table is locked")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_PASSWORD_KEYS = frozenset({"password", "pass", "passwd", "sslpassword"})


class HistoryError(Exception):
    """The history database cannot be used; the message says why and is safe to show anyone."""


class HistoryURLError(HistoryError, ValueError):
    """The history database URL cannot be parsed, or names a database the store cannot use."""


class HistoryReadOnlyError(HistoryError):
    """The history database cannot be written: a read-only folder or file, or a read-only store."""


def parse_url(url: str) -> URL:
    """Parse a history database URL, refusing one whose parts may hold pieces of its password.

    A URL may hold one "@" only, the one before the host: any other one must be
    percent-encoded (%40). With an unencoded "@" in the password, SQLAlchemy
    ends the password at that "@" and reads the rest as host, port or database.

    Raises:
        HistoryURLError: If the URL cannot be parsed that way. The message never
            quotes the URL.
    """
    if not isinstance(url, str) or url.count("@") > 1:
        raise HistoryURLError(f"{MALFORMED_URL} {URL_FORM}")
    try:
        return make_url(url)  # also reads the port as a number
    except (sqlalchemy.exc.ArgumentError, ValueError, TypeError):
        # The message of a bad port quotes it: "invalid literal for int(): 'w0rd@host'".
        raise HistoryURLError(f"{MALFORMED_URL} {URL_FORM}") from None


def masked_url(url: str) -> str | None:
    """Return the URL with its password (also one given as a query parameter) as "***".

    Returns:
        The masked URL, or None for a URL that `parse_url` refuses: such a URL is
        never shown or logged at all, since any part of it may be password.
    """
    try:
        parsed = parse_url(url)
    except HistoryURLError:
        return None
    hidden = "PASSWORDHIDDEN"  # letters only: rendered as they are, then replaced
    query = {
        key: hidden if key.lower() in _PASSWORD_KEYS else value
        for key, value in parsed.query.items()
    }
    rendered = parsed.set(query=query).render_as_string(hide_password=True)
    return rendered.replace(hidden, "***")


def public_message(exc: BaseException, *, url: str | None = None, detail: bool = False) -> str:
    """Say in one sentence why the history database cannot be used, safe to show anyone.

    The sentence never holds the database URL, SQL, query parameters or a password.

    Args:
        exc: What went wrong.
        url: The database URL: any password in it is masked from the detail.
        detail: False (for a visitor): the kind of error only, and a pointer to the
            server log. True (for the command line, whose user runs the app): also
            the first line of the driver's message, the URL's password masked.
    """
    if isinstance(exc, HistoryError):
        return _one_line(str(exc))  # written to be shown
    known = _known_problem(exc)
    if known is not None:
        return known
    kind = type(exc).__name__
    if detail:
        reason = _driver_message(exc, url)
        kind = f"{kind}: {reason}" if reason else kind
        ending = ""
    else:
        ending = "; the server log has the details"
    if isinstance(exc, _CONNECTION_ERRORS):
        return f"The history database cannot be reached ({kind}){ending}."
    if isinstance(exc, _DATABASE_ERRORS):
        return f"The history database could not answer ({kind}){ending}."
    return f"The history database cannot be used ({kind}){ending}."


def log_message(exc: BaseException, url: str | None) -> str:
    """Describe an error of the history database for the server log, the password masked.

    Holds the masked URL (none if it cannot be parsed), the kind of error and its
    full message (for SQL errors, the statement and its parameters).
    """
    where = masked_url(url) if url is not None else None
    if where is None:
        where = "(URL not shown: it cannot be parsed)" if url is not None else "(no URL)"
    return _mask(f"History database {where}: {type(exc).__name__}: {exc}", url)


def _known_problem(exc: BaseException) -> str | None:
    """Return the sentence for a full disk or a locked database, or None for anything else.

    Looks at the error, the driver's error it wraps, and what it was raised from: codes
    first (errno, SQLite's result code, PostgreSQL's SQLSTATE), then, for a driver's error
    without a code, the first line of its message (never SQLAlchemy's own text, which holds
    the statement and its parameters).
    """
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    from_driver = isinstance(exc, sqlite3.Error | OSError)
    while cause is not None and len(seen) < 8 and not any(cause is s for s in seen):
        seen.append(cause)
        full, busy = _codes(cause)
        if full is None and from_driver:
            text = next(iter(str(cause).lower().splitlines()), "")
            full = any(words in text for words in _FULL_WORDS)
            busy = any(words in text for words in _BUSY_WORDS)
        if full:
            return DISK_FULL
        if busy:
            return DATABASE_BUSY
        orig = getattr(cause, "orig", None)
        if isinstance(cause, sqlalchemy.exc.StatementError) and isinstance(orig, BaseException):
            cause, from_driver = orig, True
        else:
            cause = cause.__cause__
            from_driver = isinstance(cause, sqlite3.Error | OSError)
    return None


def _codes(exc: BaseException) -> tuple[bool | None, bool | None]:
    """Tell from an error's code whether it means a full disk, and a lock; None: no code."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno == errno.ENOSPC, False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error) and isinstance(code, int):
        primary = code & 0xFF  # the extended code's primary result code
        busy = primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
        return primary == sqlite3.SQLITE_FULL, busy
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)  # psycopg 3, 2
    if isinstance(state, str) and state:
        return state in _FULL_SQLSTATES, state in _BUSY_SQLSTATES
    return None, None


def _driver_message(exc: BaseException, url: str | None) -> str:
    """Return the first line of the driver's own message, without SQL, password masked."""
    if isinstance(exc, sqlalchemy.exc.StatementError):
        # Its str() adds the statement and its parameters; the driver's error has neither.
        exc = exc.orig if isinstance(exc.orig, BaseException) else None
        if exc is None:
            return ""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return ""
    text = _mask(lines[0], url)
    return text if len(text) <= 300 else text[:299] + "…"


def _mask(text: str, url: str | None) -> str:
    """Replace every password of the URL that appears in the text with "***"."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def _secrets(url: str | None) -> list[str]:
    """Return the URL's passwords as they may appear in a message: decoded and encoded."""
    if url is None:
        return []
    try:
        parsed = parse_url(url)
    except HistoryURLError:
        return []
    passwords = [parsed.password or ""]
    for key, value in parsed.query.items():
        if key.lower() in _PASSWORD_KEYS:
            passwords += [value] if isinstance(value, str) else list(value)
    found = {form for p in passwords if p for form in (p, quote(p, safe=""))}
    return sorted(found, key=len, reverse=True)  # longest first: no half-masked secret


def _one_line(text: str) -> str:
    return _CONTROL_CHARACTERS.sub(" ", text).strip()
