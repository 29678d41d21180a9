"""API tokens: made by a signed-in person, kept only as a digest, and acting as that person.

A token's secret (`cls_` and 43 random URL-safe characters, 256 bits) is shown once, when it
is made; the database keeps its sha256, which is what a request's token is looked up by.
A request carrying a token gets its owner's scope, exactly as that person's pages do.
Listing and revoking go through a store scoped to the person (`HistoryStore.scoped`), so
nobody sees or revokes another person's tokens.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from classifier.history.connecting import lock_rows
from classifier.history.errors import HistoryError
from classifier.history.tables import MAX_TOKEN_NAME_LENGTH, api_tokens

log = logging.getLogger(__name__)
PREFIX = "cls_"
MAX_TOKENS = 50  # per person: a list anyone can still read
# What a secret looks like; anything else is refused without a query.
_SECRET = re.compile(rf"{PREFIX}[A-Za-z0-9_-]{{43}}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
LAST_USE_EVERY_SECONDS = 60  # a token's "last used" is written at most this often


class TokenError(HistoryError):
    """A token that cannot be made (its name); the message says why in one sentence."""


@dataclass(frozen=True)
class Token:
    """An API token as its owner sees it listed (never its secret)."""

    id: int
    owner: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    verified_email: str | None


def digest(secret: str) -> str:
    """Return what the database keeps of a secret: its sha256, in hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """Return a token's name, trimmed.

    Raises:
        TokenError: it is blank, too long or holds control characters.
    """
    name = str(name).strip()
    if not name:
        raise TokenError("Give the token a name, such as the program that will use it.")
    if len(name) > MAX_TOKEN_NAME_LENGTH:
        raise TokenError(f"A token's name has at most {MAX_TOKEN_NAME_LENGTH} characters.")
    if _CONTROL.search(name):
        raise TokenError("A token's name cannot hold line breaks or other control characters.")
    return name


def create(store, name: str, verified_email: str | None = None) -> tuple[Token, str]:
    """Make a token for the store's owner; return it and its secret (shown once, never kept).

    Args:
        store: A store scoped to one signed-in person (`HistoryStore.scoped`).
        verified_email: The email their sign-in provider verified, if any (admins named
            by email in CLASSIFIER_ADMINS are admins through their tokens too).

    Raises:
        TokenError: the name is not usable or taken, the person has MAX_TOKENS already,
            or the store has no owner (tokens are for signed-in people).
        HistoryReadOnlyError: the store is read-only.
    """
    owner = store.scope.owner
    if owner is None:
        raise TokenError("Sign in to make API tokens: each token acts as the person who made it.")
    name = check_name(name)
    secret = PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = {
        "owner": owner,
        "name": name,
        "secret_sha256": digest(secret),
        "verified_email": verified_email or None,
        "created_at": now,
        "last_used_at": None,
    }
    with store.begin() as conn:
        lock_tokens(conn, owner)
        count = len(conn.execute(select(api_tokens.c.id).where(api_tokens.c.owner == owner)).all())
        if count >= MAX_TOKENS:
            raise TokenError(
                f"You have {MAX_TOKENS} tokens already; revoke one you no longer use first."
            )
        try:
            with conn.begin_nested():
                token_id = conn.execute(
                    api_tokens.insert().values(**row).returning(api_tokens.c.id)
                ).scalar_one()
        except IntegrityError:
            raise TokenError(
                f"You already have a token called “{name}”; pick another name."
            ) from None
    return Token(token_id, owner, name, now, None, row["verified_email"]), secret


def lock_tokens(conn, owner: str) -> None:
    """Lock a person's tokens until the transaction ends, so that two tokens made at once
    are counted one after the other (never past MAX_TOKENS)."""
    lock_rows(conn, api_tokens.c.name, api_tokens.c.owner == owner)


def list_tokens(store) -> list[Token]:
    """Return the tokens in the store's scope, newest first."""
    query = (
        select(api_tokens)
        .where(*store.scope.condition(api_tokens.c.owner))
        .order_by(api_tokens.c.created_at.desc(), api_tokens.c.id.desc())
    )
    with store.connect() as conn:
        return [_token(row) for row in conn.execute(query).mappings()]


def revoke(store, token_id: int) -> bool:
    """Delete a token in the store's scope; return whether there was one."""
    query = delete(api_tokens).where(
        api_tokens.c.id == token_id, *store.scope.condition(api_tokens.c.owner)
    )
    with store.begin() as conn:
        return conn.execute(query).rowcount == 1


_last_written: dict[str, float] = {}  # by digest: unique across databases too
_last_written_lock = threading.Lock()


def find(store, secret: str) -> Token | None:
    """Return the token a request carries, or None for an unknown, revoked or malformed one.

    Notes when it was used, at most once a minute per token and process, in a thread of its
    own (a read-only store notes nothing).
    """
    if not isinstance(secret, str) or not _SECRET.fullmatch(secret):
        return None
    key = digest(secret)
    query = select(api_tokens).where(api_tokens.c.secret_sha256 == key)
    with store.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    token = _token(row)
    now = time.monotonic()
    with _last_written_lock:
        due = now - _last_written.get(key, -LAST_USE_EVERY_SECONDS) >= LAST_USE_EVERY_SECONDS
        if due:
            _last_written[key] = now
    if due and not store.read_only:
        threading.Thread(target=_note_use, args=(store, token.id), daemon=True).start()
    return token


def _note_use(store, token_id: int) -> None:
    """Write when a token was last used: best effort, beside the request (a database busy
    with a write must not hold it up or fail it)."""
    try:
        with store.begin() as conn:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id)
                .values(last_used_at=datetime.now(UTC))
            )
    except Exception:
        log.warning("Noting when API token %d was last used failed", token_id, exc_info=True)


def _token(row) -> Token:
    return Token(
        id=row["id"],
        owner=row["owner"],
        name=row["name"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        verified_email=row["verified_email"],
    )
