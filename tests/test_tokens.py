"""API tokens in the store: made for one person, kept as a digest, found, listed, revoked.

On SQLite and (when configured) PostgreSQL, like every store test.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from classifier.history import HistoryStore, owners, tokens

ALICE, BOB = "https://issuer.test alice", "https://issuer.test bob"


def mine(store: HistoryStore, owner: str) -> HistoryStore:
    return store.scoped(owners.Scope.own(owner))


def test_a_token_is_found_by_its_secret_and_kept_only_as_a_digest(store):
    made, secret = tokens.create(mine(store, ALICE), "  nightly import  ", "alice@example.com")

    assert secret.startswith("cls_") and len(secret) == 47
    assert made.name == "nightly import"
    found = tokens.find(store, secret)
    assert (found.id, found.owner, found.verified_email) == (made.id, ALICE, "alice@example.com")
    assert found.last_used_at is None  # noted after this lookup, for the next one
    with store.connect() as conn:
        kept = conn.execute(sa.text("SELECT * FROM api_tokens")).mappings().one()
    assert secret not in str(dict(kept))
    assert kept["secret_sha256"] == tokens.digest(secret)
    for _ in range(100):  # noted beside the request, a moment later
        if tokens.list_tokens(mine(store, ALICE))[0].last_used_at is not None:
            break
        time.sleep(0.05)
    assert tokens.list_tokens(mine(store, ALICE))[0].last_used_at is not None


@pytest.mark.parametrize(
    "secret", ["", "cls_", "cls_" + "x" * 42, "CLS_" + "x" * 43, "cls_" + "x" * 43 + "\n", None]
)
def test_anything_but_a_made_secret_finds_nothing(store, secret):
    tokens.create(mine(store, ALICE), "real")
    assert tokens.find(store, secret) is None


def test_each_person_lists_and_revokes_only_their_own(store):
    alices, _ = tokens.create(mine(store, ALICE), "a")
    bobs, bob_secret = tokens.create(mine(store, BOB), "b")

    assert [t.name for t in tokens.list_tokens(mine(store, ALICE))] == ["a"]
    assert not tokens.revoke(mine(store, ALICE), bobs.id)  # not hers: as if unknown
    assert tokens.find(store, bob_secret) is not None
    assert tokens.revoke(mine(store, BOB), bobs.id)
    assert tokens.find(store, bob_secret) is None
    assert [t.id for t in tokens.list_tokens(store)] == [alices.id]  # everyone's: one left


def test_names_are_checked_and_unique_per_person(store):
    tokens.create(mine(store, ALICE), "same")
    tokens.create(mine(store, BOB), "same")  # another person may use the name

    with pytest.raises(tokens.TokenError, match="You already have a token called “same”"):
        tokens.create(mine(store, ALICE), "same")
    for name, sentence in (
        ("", "Give the token a name"),
        ("x" * 61, "at most 60 characters"),
        ("a\nb", "line breaks"),
    ):
        with pytest.raises(tokens.TokenError, match=sentence):
            tokens.create(mine(store, ALICE), name)
    with pytest.raises(tokens.TokenError, match="Sign in to make API tokens"):
        tokens.create(store, "nobody's")


def test_a_person_has_at_most_so_many_tokens(store, monkeypatch):
    monkeypatch.setattr(tokens, "MAX_TOKENS", 3)
    for number in range(3):
        tokens.create(mine(store, ALICE), f"t{number}")
    with pytest.raises(tokens.TokenError, match="You have 3 tokens already"):
        tokens.create(mine(store, ALICE), "one more")


def test_two_tokens_made_at_once_never_pass_the_limit(store, monkeypatch):
    """Two tabs (or the API and a tab) making a token at the same moment: the second is
    counted once the first is in (it used to count before, and both were kept)."""
    import threading

    monkeypatch.setattr(tokens, "MAX_TOKENS", 3)
    alice = mine(store, ALICE)
    for number in range(2):
        tokens.create(alice, f"t{number}")
    refused = []

    def make_another() -> None:
        try:
            tokens.create(alice, "the second at once")
        except tokens.TokenError as exc:
            refused.append(str(exc))

    with store.begin() as conn:  # the first, made as `create` makes it, not yet committed
        tokens.lock_tokens(conn, ALICE)
        row = {"owner": ALICE, "name": "the first at once", "secret_sha256": "0" * 64}
        conn.execute(
            tokens.api_tokens.insert().values(**row, created_at=tokens.datetime.now(tokens.UTC))
        )
        second = threading.Thread(target=make_another)
        second.start()
        second.join(0.5)  # the second has counted the tokens, or waits to
    second.join(60)
    names = [token.name for token in tokens.list_tokens(alice)]
    assert sorted(names) == ["t0", "t1", "the first at once"]
    assert refused == ["You have 3 tokens already; revoke one you no longer use first."]


def test_admins_are_named_by_owner_id_or_by_a_verified_email():
    admins = ("carol@example.com", BOB)
    assert owners.is_admin(BOB, None, admins)
    assert owners.is_admin(ALICE, "Carol@Example.com", admins)
    assert not owners.is_admin(ALICE, None, admins)
    assert not owners.is_admin(ALICE, "alice@example.com", admins)
