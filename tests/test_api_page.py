"""The API page: examples for this deployment, and making, listing and revoking API tokens.

Driven with AppTest (`at.user` stands in for sign-in, as in test_private.py); the tokens it
makes are then looked up the way a request's token is.
"""

from __future__ import annotations

import pytest

from classifier.history import tokens
from tests.test_private import ALICE, BOB, owner_of, texts
from tests.test_private import open_app as open_private_app
from ui.columns import plain


def open_api_page(**options):
    return open_private_app(page="pages/api.py", **options)


@pytest.fixture
def store(tmp_path, monkeypatch):
    from classifier import history

    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path / "data"))
    store = history.HistoryStore(url)
    yield store
    store.dispose()
    history.close_shared_stores()


def make(at, name: str):
    at.text_input(key="token_name").input(name)
    at.button[[b.label for b in at.button].index("Make a token")].click().run()
    return at


def test_a_signed_in_person_makes_a_token_shown_once_that_acts_as_them(store):
    at = make(open_api_page(signed_in=ALICE), "nightly import")

    assert not at.exception
    (secret,) = [code.value for code in at.code if code.value.startswith("cls_")]
    assert "shown only this once" in texts(at) + " ".join(s.value for s in at.success)
    token = tokens.find(store, secret)
    assert (token.owner, token.name) == (owner_of(ALICE), "nightly import")
    assert token.verified_email == "alice@example.com"
    with store.connect() as conn:  # only its digest is kept
        assert secret not in str(conn.exec_driver_sql("SELECT * FROM api_tokens").all())

    at.run()  # any later run: the secret is gone from the page for good
    assert not [code.value for code in at.code if code.value.startswith("cls_")]
    assert "nightly import" in [text.value for text in at.text]  # listed, as plain text


def test_a_token_is_revoked_from_the_list_and_stops_working(store):
    at = make(open_api_page(signed_in=ALICE), "soon gone")
    (secret,) = [code.value for code in at.code if code.value.startswith("cls_")]

    revoke = next(b for b in at.button if b.label == "Revoke")
    revoke.click().run()

    assert tokens.find(store, secret) is None
    assert "You have no tokens yet." in texts(at)


def test_each_person_lists_only_their_own_tokens(store):
    make(open_api_page(signed_in=ALICE), "alices")
    at = make(open_api_page(signed_in=BOB), "bobs")

    listed = [text.value for text in at.text]
    assert "bobs" in listed
    assert "alices" not in listed


def test_a_name_taken_or_blank_is_one_sentence_with_the_name_as_typed(store):
    name = "![x](https://example.com/p.png) :red[**hi**]"
    at = make(open_api_page(signed_in=ALICE), name)
    at = make(at, name)
    (error,) = [e.value for e in at.error]
    assert error == plain(f"You already have a token called “{name}”; pick another name.")
    assert "![x](" not in error  # escaped: shown as typed, not as Markdown
    at = make(at, "   ")
    assert [e.value for e in at.error] == [
        "Give the token a name, such as the program that will use it."]  # fmt: skip


def test_signed_out_the_page_says_to_sign_in_and_shows_the_examples(store):
    at = open_api_page()

    assert "Sign in to make an API token: programs need one here." in texts(at)
    assert not [b for b in at.button if b.label == "Make a token"]
    curl = at.code[0].value
    assert curl.startswith("curl ") and "/api/v1/predict" in curl
    assert "Authorization: Bearer $CLASSIFIER_TOKEN" in curl


def test_a_shared_history_needs_no_token(store):
    at = open_api_page(auth=False)

    assert "programs need no token" in texts(at)
    assert "Authorization" not in at.code[0].value
    assert not [b for b in at.button if b.label == "Make a token"]


def test_with_the_api_off_the_page_says_so(store, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_API", "off")
    at = open_api_page(auth=False)

    assert [i.value for i in at.info] == [
        "The API is turned off on this server (CLASSIFIER_API=off)."
    ]
    assert not at.code
