"""Whose rows a store acts on: owners, scopes, and the people who signed in.

An owner is a signed-in person, named by their OpenID Connect issuer and subject
(`owner_id`), which stay the same when they change their email or name. Rows saved
by nobody (anonymously, or before owners existed) have no owner.

A `Scope` says whose rows a store reads and changes and whom it names as the owner
of what it saves. `HistoryStore.scoped(scope)` applies it to every query: lists,
counts, summaries, exports, feedback, deletes and permalinks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, select, union, update
from sqlalchemy.exc import IntegrityError

from classifier.history.errors import HistoryError
from classifier.history.tables import models, people, predictions

MAX_OWNER_LENGTH = 1000  # an issuer URL and a subject; both are short in practice


def owner_id(issuer: str, subject: str) -> str:
    """Return the owner of what a signed-in person saves: issuer and subject, space between.

    A space cannot occur in an issuer URL, so two people never share an owner id.

    Raises:
        ValueError: a part is empty, or the whole is longer than MAX_OWNER_LENGTH.
    """
    issuer, subject = str(issuer).strip(), str(subject).strip()
    if not issuer or not subject:
        raise ValueError("Expected an issuer and a subject to name an owner. Received: a blank.")
    owner = f"{issuer} {subject}"
    if len(owner) > MAX_OWNER_LENGTH:
        raise ValueError(f"Expected an owner of at most {MAX_OWNER_LENGTH} characters.")
    return owner


@dataclass(frozen=True)
class Scope:
    """Whose rows a store reads and changes, and who owns what it saves.

    Args:
        owner: Stamped on every row the store saves; None saves rows that belong to nobody.
        everyone: True reads and changes every row, whoever owns it (a shared history,
            an admin, the command line's --all); False only the owner's own rows.
        unowned: Only the rows that belong to nobody (with `everyone` False and no owner):
            the models a server with history off still offers.
    """

    owner: str | None = None
    everyone: bool = True
    unowned: bool = False

    def __post_init__(self) -> None:
        if not self.everyone and (self.owner is None) != self.unowned:
            # A scope without an owner must say it means nobody's rows (those from before
            # owners, or saved anonymously), so an anonymous visitor never gets them by chance.
            raise ValueError(
                "Expected an owner, or unowned=True without one, for a scope that reads "
                "only some rows."
            )

    @classmethod
    def own(cls, owner: str) -> Scope:
        """The rows of one owner only, who owns what is saved."""
        return cls(owner, everyone=False)

    @classmethod
    def nobodys(cls) -> Scope:
        """Only the rows that belong to nobody; what is saved belongs to nobody too."""
        return cls(None, everyone=False, unowned=True)

    def condition(self, owner_column: ColumnElement) -> list[ColumnElement[bool]]:
        """Return the WHERE conditions that keep a query to this scope (none for everyone's)."""
        if self.everyone:
            return []
        if self.unowned:
            return [owner_column.is_(None)]
        return [owner_column == self.owner]


EVERYONE = Scope()


def is_admin(owner: str, verified_email: str | None, admins: tuple[str, ...]) -> bool:
    """Tell whether a list of admins (`CLASSIFIER_ADMINS`: owner ids, or emails) names this
    person: by owner id, or by an email their sign-in provider verified (never by one that
    was only typed)."""
    if owner in admins:
        return True
    emails = {entry.lower() for entry in admins if " " not in entry}
    return bool(verified_email and verified_email.lower() in emails)


@dataclass(frozen=True)
class Person:
    """Someone who signed in, as last seen."""

    owner: str
    email: str | None
    name: str | None
    last_seen: datetime


def remember(store, owner: str, email: str | None, name: str | None) -> None:
    """Record that a person signed in (their email and name, for `--owner EMAIL`).

    Raises:
        HistoryReadOnlyError: the store is read-only.
    """
    values = {"email": email or None, "name": name or None, "last_seen": datetime.now(UTC)}
    with store.begin() as conn:
        updated = conn.execute(update(people).where(people.c.owner == owner).values(**values))
        if updated.rowcount:
            return
        try:
            with conn.begin_nested():
                conn.execute(people.insert().values(owner=owner, **values))
        except IntegrityError:  # a second session of the same person, at the same moment
            conn.execute(update(people).where(people.c.owner == owner).values(**values))


def everyone_known(store) -> list[Person]:
    """Return every person who signed in, most recent first."""
    query = select(people).order_by(people.c.last_seen.desc(), people.c.owner)
    with store.connect() as conn:
        return [Person(**row) for row in conn.execute(query).mappings()]


def find_owner(store, who: str) -> str:
    """Return the owner named by an owner id ("issuer subject") or by the email of
    someone who signed in here.

    Raises:
        HistoryError: nobody who signed in here used that email, or several did.
    """
    who = who.strip()
    with store.connect() as conn:
        if " " in who:  # an owner id, as `history people` lists them: one that owns something
            known = union(
                select(people.c.owner).where(people.c.owner == who),
                select(predictions.c.owner).where(predictions.c.owner == who),
                select(models.c.owner).where(models.c.owner == who),
            )
            if conn.execute(known).first() is not None:
                return who
            raise HistoryError(
                f"Nobody with the owner id {who!r} signed in or saved anything here; "
                "`classifier history people` lists who did."
            )
        by_email = select(people.c.owner).where(func.lower(people.c.email) == who.lower())
        owners = conn.execute(by_email).scalars().all()
    if len(owners) == 1:
        return owners[0]
    if owners:
        listed = "; ".join(repr(owner) for owner in owners)
        raise HistoryError(f"Several people signed in as {who}; name one by owner id: {listed}")
    raise HistoryError(
        f"Nobody signed in here as {who!r}; `classifier history people` lists who did."
    )
