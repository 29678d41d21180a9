"""Owners in the store: a scoped store never reads or touches another owner's rows.

Every test runs on SQLite and on the real PostgreSQL (the `database_url` fixture).
Alice and Bob each save predictions and models; rows from before owners belong to
nobody. Each query path is checked from each side: list, count, summaries, exports,
feedback, delete, clear, permalinks, and the models' list, lookup, file, replace and remove.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from classifier.history import Filters, HistoryError, HistoryStore, owners, registry, stats
from classifier.history.owners import EVERYONE, Scope
from tests.conftest import with_psycopg
from tests.helpers import RECORD_TIME, make_record, ranked

ALICE = owners.owner_id("http://127.0.0.1:9/", "alice-subject")
BOB = owners.owner_id("http://127.0.0.1:9/", "bob-subject")


@pytest.fixture
def database(database_url: str) -> Iterator[HistoryStore]:
    """The whole database: Alice's, Bob's and nobody's rows and models."""
    store = HistoryStore(database_url)
    nobody = store  # a store opened from a URL saves rows that belong to nobody
    alice, bob = store.scoped(Scope.own(ALICE)), store.scoped(Scope.own(BOB))
    for who, label, count in ((alice, "tabby cat", 3), (bob, "tiger cat", 2), (nobody, "lynx", 1)):
        for i in range(count):
            who.add(
                make_record(
                    file_name=f"{label} {i}.jpg",
                    top_k=ranked(label, 0.5 + i / 10),
                    created_at=RECORD_TIME + timedelta(hours=i),
                    thumbnail=b"picture",
                    overlay=b"overlay",
                )
            )
    for who, name in ((alice, "Alice's birds"), (bob, "Bob's cars"), (nobody, "Old model")):
        registry.add_model(who, name, "Teachable Machine zip", "ab" * 32, {"kind": "added"}, b"x")
    yield store
    store.dispose()


def scoped(store: HistoryStore, owner: str) -> HistoryStore:
    return store.scoped(Scope.own(owner))


def labels(store: HistoryStore) -> set[str]:
    return {record.top1_label for record in store.find(limit=None)}


def test_each_owner_lists_counts_and_pages_only_their_own(database: HistoryStore) -> None:
    alice, bob = scoped(database, ALICE), scoped(database, BOB)

    assert labels(alice) == {"tabby cat"}
    assert labels(bob) == {"tiger cat"}
    assert labels(database) == {"tabby cat", "tiger cat", "lynx"}
    assert (alice.count(), bob.count(), database.count()) == (3, 2, 6)
    assert alice.count(Filters(label="tiger")) == 0
    assert [r.top1_label for r in alice.find(limit=2, offset=2)] == ["tabby cat"]
    assert {r.owner for r in alice.find(limit=None)} == {ALICE}
    assert {r.owner for r in database.find(Filters(label="lynx"))} == {None}


def test_summaries_count_only_the_owners_rows(database: HistoryStore) -> None:
    alice = scoped(database, ALICE)
    bob_id = scoped(database, BOB).find(limit=1)[0].id
    assert database.set_feedback(bob_id, "wrong", "jaguar")

    assert stats.count_by_label(alice)["label"].tolist() == ["tabby cat"]
    assert stats.count_by_day(alice)["count"].sum() == 3
    assert stats.count_by_hour(alice)["count"].sum() == 3
    assert stats.count_by_confidence(alice)["count"].sum() == 3
    assert stats.count_feedback_by_model(alice).empty
    assert stats.count_feedback_by_model(scoped(database, BOB))["rated"].tolist() == [1]


def test_exports_hold_only_the_owners_rows(database: HistoryStore) -> None:
    alice = scoped(database, ALICE)

    rows = json.loads(alice.export_json())
    csv_lines = alice.export_csv().decode().strip().splitlines()

    assert {row["top1_label"] for row in rows} == {"tabby cat"}
    assert len(rows) == 3
    assert len(csv_lines) == 1 + 3
    assert not any("tiger" in line or "lynx" in line for line in csv_lines)


def test_nobody_can_read_rate_or_delete_another_owners_row_by_its_id(
    database: HistoryStore,
) -> None:
    alice, bob = scoped(database, ALICE), scoped(database, BOB)
    bobs = bob.find(limit=None)
    bob_ids = [record.id for record in bobs]

    assert [alice.get(i) for i in bob_ids] == [None, None]
    assert not alice.set_feedback(bob_ids[0], "wrong", "not a cat")
    assert alice.delete(bob_ids) == 0
    assert bob.find(limit=None) == bobs  # untouched: no rating, nothing deleted
    assert bob.get(bob_ids[0]) == bobs[0]


def test_clear_deletes_only_the_owners_rows(database: HistoryStore) -> None:
    alice = scoped(database, ALICE)

    assert alice.clear() == 3

    assert alice.count() == 0
    assert scoped(database, BOB).count() == 2
    assert database.count() == 3  # Bob's two and nobody's one


def test_a_permalink_opens_only_for_its_owner_and_looks_the_same_otherwise(
    database: HistoryStore,
) -> None:
    alice, bob = scoped(database, ALICE), scoped(database, BOB)
    mine = alice.find(limit=1)[0]
    nobodys = database.find(Filters(label="lynx"))[0]

    assert alice.get_public(mine.public_id) == mine
    assert alice.get_public(mine.public_id).thumbnail == b"picture"
    assert bob.get_public(mine.public_id) is None  # another owner's
    assert bob.get_public(nobodys.public_id) is None  # nobody's, in a private history
    assert database.get_public(mine.public_id) == mine  # shared, or an admin
    for probe in ("A" * 22, str(mine.id), "", "x" * 5000, "' OR 1=1 --", mine.public_id + "="):
        assert alice.get_public(probe) is None


def test_public_ids_are_random_and_unique_not_counters(database: HistoryStore) -> None:
    public_ids = [record.public_id for record in database.find(limit=None)]

    assert len(set(public_ids)) == len(public_ids) == 6
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", public_id) for public_id in public_ids)


def test_what_a_scoped_store_saves_is_its_owners(database: HistoryStore) -> None:
    alice = scoped(database, ALICE)

    new_id = alice.add(make_record(file_name="new.jpg"))

    assert alice.get(new_id).owner == ALICE
    assert scoped(database, BOB).get(new_id) is None
    shared_but_signed_in = database.scoped(Scope(BOB, everyone=True))
    assert shared_but_signed_in.get(shared_but_signed_in.add(make_record())).owner == BOB
    assert shared_but_signed_in.count() == 8  # a shared history shows everyone's rows


def test_a_scope_that_reads_only_its_own_rows_needs_an_owner() -> None:
    with pytest.raises(ValueError, match="Expected an owner"):
        Scope(None, everyone=False)
    assert Scope(None, everyone=True) == EVERYONE
    with pytest.raises(ValueError, match="issuer and a subject"):
        owners.owner_id("https://issuer.example", " ")


def test_models_are_listed_found_read_and_removed_only_by_their_owner(
    database: HistoryStore,
) -> None:
    alice, bob = scoped(database, ALICE), scoped(database, BOB)

    assert [m.name for m in registry.list_models(alice)] == ["Alice's birds"]
    assert [m.owner for m in registry.list_models(alice)] == [ALICE]
    assert {m.name for m in registry.list_models(database)} == {
        "Alice's birds",
        "Bob's cars",
        "Old model",
    }
    assert registry.get_model(alice, "Bob's cars") is None
    assert registry.get_model(alice, "Old model") is None
    assert registry.model_data(alice, "Bob's cars") is None
    assert registry.model_data(bob, "Bob's cars") == b"x"
    assert not registry.remove_model(alice, "Bob's cars")
    assert registry.get_model(bob, "Bob's cars") is not None


def test_a_model_cannot_be_replaced_through_another_owners_name(database: HistoryStore) -> None:
    alice, bob = scoped(database, ALICE), scoped(database, BOB)

    with pytest.raises(registry.ModelNameTaken):
        registry.add_model(alice, "Bob's cars", "taught", "cd" * 32, {"kind": "taught"}, b"y")
    bobs = registry.get_model(bob, "Bob's cars")
    with pytest.raises(registry.ModelChanged):  # not Alice's to replace: nothing is
        registry.add_model(alice, "Bob's cars", "taught", "cd" * 32, {"kind": "taught"}, b"y",
                           replacing=bobs)  # fmt: skip

    assert registry.model_data(bob, "Bob's cars") == b"x"
    hers = registry.get_model(alice, "Alice's birds")
    kept = registry.add_model(alice, "Alice's birds", "taught", "cd" * 32, {}, b"y", replacing=hers)
    assert (kept.owner, registry.model_data(alice, "Alice's birds")) == (ALICE, b"y")


def test_a_model_retrained_by_an_admin_or_the_command_line_stays_its_owners(
    database: HistoryStore,
) -> None:
    """An admin sees everyone's models and may retrain Bob's; it stays Bob's (in his picker,
    for his jobs), as does one retrained from the command line (everyone's, nobody's own)."""
    admin, bob = database.scoped(Scope("carol", everyone=True)), scoped(database, BOB)

    bobs = registry.get_model(admin, "Bob's cars")
    kept = registry.add_model(admin, "Bob's cars", "taught", "cd" * 32, {}, b"y", replacing=bobs)
    assert (kept.owner, registry.model_data(bob, "Bob's cars")) == (BOB, b"y")
    again = registry.add_model(database, "Bob's cars", "taught", "ef" * 32, {}, b"z",
                               replacing=kept)  # fmt: skip
    assert again.owner == BOB
    assert [m.name for m in registry.list_models(bob)] == ["Bob's cars"]


def test_a_scope_of_nobodys_rows_reads_only_those(database: HistoryStore) -> None:
    nobody = database.scoped(Scope.nobodys())

    assert labels(nobody) == {"lynx"}
    assert [m.name for m in registry.list_models(nobody)] == ["Old model"]
    assert nobody.get(nobody.add(make_record())).owner is None


def test_people_who_signed_in_are_named_by_email_on_the_command_line(
    database: HistoryStore,
) -> None:
    owners.remember(database, ALICE, "alice@example.com", "Alice")
    owners.remember(database, ALICE, "alice@example.com", "Alice A.")  # seen again
    owners.remember(database, BOB, "bob@example.com", None)

    assert owners.find_owner(database, "alice@example.com") == ALICE
    assert owners.find_owner(database, "Alice@Example.COM") == ALICE
    assert owners.find_owner(database, BOB) == BOB
    with pytest.raises(HistoryError, match="Nobody with the owner id"):
        owners.find_owner(database, "http://127.0.0.1:9/ alice-subjekt")  # a typo
    assert [(p.owner, p.name) for p in owners.everyone_known(database)] == [
        (BOB, None),
        (ALICE, "Alice A."),
    ]
    with pytest.raises(HistoryError, match=r"Nobody signed in here as 'carol@example\.com'"):
        owners.find_owner(database, "carol@example.com")
    owners.remember(database, BOB, "alice@example.com", None)  # two accounts, one email
    with pytest.raises(HistoryError, match=r"Several people signed in as alice@example\.com"):
        owners.find_owner(database, "alice@example.com")


# --- The upgrade from schema version 3 (the last one without owners) ------------------------


@pytest.fixture
def raw(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(with_psycopg(make_url(database_url)))
    yield engine
    engine.dispose()


def test_a_version_3_database_is_upgraded_with_its_rows_belonging_to_nobody(
    database_url: str, raw: sa.Engine
) -> None:
    from classifier.history.connecting import create_engine, open_schema
    from tests.test_history_tables_and_migrations import create_version_1_database, describe_schema

    fresh = HistoryStore(database_url)
    new_schema = describe_schema(raw)
    fresh.dispose()
    with raw.begin() as conn:
        for table in ("evaluations", "job_items", "jobs", "photos", "overlays", "thumbnails",
                      "model_files", "models", "people", "predictions",
                      "schema_version"):  # fmt: skip
            conn.exec_driver_sql(f"DROP TABLE {table}")

    # Version 1 upgraded by the released steps up to version 3, as today's servers have it.
    old_ids = create_version_1_database(raw)
    engine = create_engine(database_url)
    open_schema(engine, HistoryStore.migrations[:2])
    engine.dispose()
    with raw.begin() as conn:
        assert conn.exec_driver_sql("SELECT version FROM schema_version").scalar_one() == 3
        columns = {c["name"] for c in sa.inspect(conn).get_columns("predictions")}
        assert "owner" not in columns
        conn.exec_driver_sql(
            "INSERT INTO models (name, created_at, source, sha256, size, details)"
            " VALUES ('Old birds', '2024-03-01 12:00:00+00', 'zip', 'ab', 1, '{}')"
        )
        conn.exec_driver_sql("INSERT INTO model_files (name, data) VALUES ('Old birds', 'x')")
        conn.execute(
            sa.text("INSERT INTO overlays (prediction_id, image) VALUES (:id, :image)"),
            {"id": old_ids[0], "image": b"overlay"},
        )

    store = HistoryStore(database_url)
    try:
        kept = store.find(limit=None)
        assert sorted(record.id for record in kept) == old_ids
        assert {record.owner for record in kept} == {None}
        assert len({record.public_id for record in kept}) == 2
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", r.public_id) for r in kept)
        assert store.get(old_ids[0]).overlay == b"overlay"
        assert [m.owner for m in registry.list_models(store)] == [None]
        assert scoped(store, ALICE).count() == 0  # nobody's rows: shared mode and admins only
        assert registry.list_models(scoped(store, ALICE)) == []
        assert store.get_public(kept[0].public_id) == kept[0]
        assert describe_schema(raw) == new_schema
        with raw.connect() as conn:
            version = conn.exec_driver_sql("SELECT version FROM schema_version").scalar_one()
        assert version == store.schema_version
    finally:
        store.dispose()
