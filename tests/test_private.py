"""Private, shared and off histories in the app, driven with AppTest.

AppTest stands in for sign-in here (`at.user` is what `st.user` returns, `at.secrets`
configures `[auth]`); tests/test_browser.py signs in for real against a local OpenID
Connect issuer.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from classifier import models
from classifier.history import HistoryStore, owners, registry
from classifier.history.owners import Scope
from classifier.models import own
from tests.conftest import ROOT
from tests.helpers import app_test
from tests.test_history_page import chart_frame, record
from ui.uploads import EXAMPLES

APP = str(ROOT / "streamlit_app.py")
ISSUER = "http://127.0.0.1:9/"
ALICE = {"email": "alice@example.com", "name": "Alice", "sub": "alice-1"}
BOB = {"email": "bob@example.com", "name": "Bob", "sub": "bob-2"}
AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "a-long-random-cookie-secret-for-the-tests",
    "client_id": "dashboard",
    "client_secret": "dashboard-secret",
    "server_metadata_url": f"{ISSUER}.well-known/openid-configuration",
}


def owner_of(person: dict) -> str:
    return owners.owner_id(ISSUER, person["sub"])


@pytest.fixture
def store(tmp_path, monkeypatch, lite0) -> HistoryStore:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path / "data"))
    st.cache_data.clear()
    store = HistoryStore(url)
    yield store
    store.dispose()

    own.close_stores()


@pytest.fixture
def two_people(store) -> dict[str, list[str]]:
    """Alice's, Bob's and nobody's saved predictions; return their public ids by whose."""
    now = datetime.now(UTC)
    ids = {}
    for who, label in ((ALICE, "tabby"), (BOB, "espresso"), (None, "tench")):
        scoped = store if who is None else store.scoped(Scope.own(owner_of(who)))
        rows = scoped.add_many(
            [record(label, 0.9 - i / 10, created_at=now - timedelta(hours=i)) for i in range(2)]
        )
        ids[label] = [scoped.get(row).public_id for row in rows]
    return ids


def open_app(*, signed_in: dict | None = None, auth: bool = True, page: str | None = None,
             query: dict | None = None) -> AppTest:  # fmt: skip
    at = app_test(300)
    if auth:
        at.secrets["auth"] = AUTH
    if signed_in is not None:
        at.user.update(is_logged_in=True, iss=ISSUER, email_verified=True, **signed_in)
    if query:
        at.query_params.update(query)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def texts(at: AppTest) -> str:
    """Every sentence on the page and in the sidebar, for "is it said" checks."""
    parts = [e.value for kind in ("caption", "info", "warning", "error", "markdown", "subheader")
             for e in getattr(at, kind)]  # fmt: skip
    parts += [e.value for kind in ("caption", "info", "warning") for e in getattr(at.sidebar, kind)]
    parts += [b.label for b in at.button] + [b.label for b in at.sidebar.button]
    return "\n".join(str(part) for part in parts)


def table_labels(at: AppTest) -> list[str]:
    return at.dataframe[0].value["top-1"].tolist()


# --- Private: the default where sign-in is configured ----------------------------------------


def test_signed_out_visitors_classify_but_nothing_is_kept(store, coffee_jpeg):
    at = open_app()
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()

    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()

    assert at.subheader[0].value.startswith("espresso")
    assert store.count() == 0
    said = texts(at)
    assert "Sign in to keep your history" in said
    assert "Predictions are not saved until you sign in." in said
    assert not [t for t in at.sidebar.toggle if t.key in ("save", "save_thumbnails")]


def test_signed_out_history_page_says_sign_in_and_shows_no_rows(two_people):
    at = open_app(page="pages/history.py")

    said = texts(at)
    assert "Private history: each person sees only what they saved." in said
    assert "Sign in to keep your history" in said
    assert not at.dataframe
    assert "tench" not in said  # nobody's rows are not public in a private history


def test_a_signed_in_person_saves_as_themself_and_sees_only_their_own(
    two_people, store, coffee_jpeg
):
    at = open_app(signed_in=ALICE)
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    assert "Signed in as **alice@example.com**" in texts(at)
    saved = store.find(limit=1)[0]  # the newest
    assert (saved.file_name, saved.owner) == ("coffee.jpg", owner_of(ALICE))

    at.switch_page("pages/history.py").run()

    assert sorted(table_labels(at)) == ["espresso", "tabby", "tabby"]  # her coffee, her cats
    assert any("3 of 3 saved predictions" in c.value for c in at.caption)
    assert "Signed in as **alice@example.com**" in texts(at)
    assert owners.find_owner(store, "alice@example.com") == owner_of(ALICE)  # remembered


def test_the_summary_counts_only_the_signed_in_persons_rows(two_people):
    at = open_app(signed_in=BOB, page="pages/history.py")

    assert table_labels(at) == ["espresso", "espresso"]
    at.session_state["h_tab"] = "Summary"  # as a click on the Summary tab
    charts = {c.proto.spec: c for c in at.run().get("vega_lite_chart")}
    frequent = next(chart for spec, chart in charts.items() if "Most frequent labels" in spec)
    assert chart_frame(frequent)["label"].tolist() == ["espresso"]
    per_day = next(chart for spec, chart in charts.items() if "Predictions per" in spec)
    assert chart_frame(per_day)["count"].sum() == 2


def test_a_permalink_opens_for_its_owner_with_chart_and_feedback(two_people, store):
    public_id = two_people["tabby"][0]

    at = open_app(signed_in=ALICE, page="pages/history.py", query={"prediction": public_id})

    assert at.subheader[0].value == "tabby · 90%"
    assert at.get("vega_lite_chart")
    assert at.get("feedback")
    assert f"?prediction={public_id}" in at.code[0].value
    at.get("feedback")[0].set_value(1).run()  # a thumbs-up, kept on the row
    assert store.get_public(public_id).feedback == "correct"


@pytest.mark.parametrize("whose", ["espresso", "tench", "made-up", "sql"])
def test_another_persons_or_an_unknown_permalink_says_not_found_the_same_way(two_people, whose):
    probe = {"made-up": "A" * 22, "sql": "' OR 1=1 --"}.get(whose) or two_people[whose][0]

    at = open_app(signed_in=ALICE, page="pages/history.py", query={"prediction": probe})

    assert [e.value for e in at.error] == [
        "Prediction not found. Its link may be mistyped, the prediction may have been "
        "deleted, or it is in another person's history."
    ]
    assert not at.subheader and not at.get("feedback") and not at.code


def test_an_admin_sees_everyone_and_is_told_so(two_people, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_ADMINS", "carol@example.com, Alice@Example.com")

    at = open_app(signed_in=ALICE, page="pages/history.py")

    assert sorted(table_labels(at)) == ["espresso", "espresso", "tabby", "tabby", "tench", "tench"]
    assert "You are an admin: you see everyone's predictions" in texts(at)
    assert "Admin: you see everyone's history." in texts(at)


def test_an_unverified_email_on_the_admin_list_is_not_an_admin(two_people, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_ADMINS", "alice@example.com")
    at = app_test(300)
    at.secrets["auth"] = AUTH
    at.user.update(is_logged_in=True, iss=ISSUER, email_verified=False, **ALICE)
    at.run().switch_page("pages/history.py").run()

    assert sorted(table_labels(at)) == ["tabby", "tabby"]


def test_models_are_private_too(store, monkeypatch):
    for who, name in ((ALICE, "Alice's birds"), (BOB, "Bob's cars")):
        scoped = store.scoped(Scope.own(owner_of(who)))
        registry.add_model(scoped, name, "zip", "ab" * 32,
                           {"kind": "added", "class_names": ["a", "b"]}, b"x")  # fmt: skip

    alice = open_app(signed_in=ALICE)
    anonymous = open_app()

    assert "Alice's birds" in alice.sidebar.selectbox(key="model").options[-1]
    assert not any("Bob" in option for option in alice.sidebar.selectbox(key="model").options)
    assert not any("(added)" in o for o in anonymous.sidebar.selectbox(key="model").options)
    anonymous.switch_page("pages/models.py").run()
    assert "Sign in to keep your own models: each person sees only theirs." in texts(anonymous)


# --- Shared and off -------------------------------------------------------------------------


def test_without_sign_in_the_history_is_shared_and_says_so(two_people, coffee_jpeg, store):
    at = open_app(auth=False, page="pages/history.py")

    assert len(table_labels(at)) == 6
    said = texts(at)
    assert "Shared history: everyone who opens this app sees every saved prediction." in said
    assert "Sign in" not in said


def test_a_shared_history_opens_anyones_permalink(two_people):
    public_id = two_people["espresso"][1]

    at = open_app(auth=False, page="pages/history.py", query={"prediction": public_id})

    assert at.subheader[0].value == "espresso · 80%"
    assert "anyone who opens this app can open it" in texts(at)


def test_history_off_saves_nothing_and_says_so(store, coffee_jpeg, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_HISTORY_MODE", "off")
    at = open_app(auth=False)
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()

    assert at.subheader[0].value.startswith("espresso")
    assert store.count() == 0
    assert "History is off on this server: nothing is saved." in texts(at)
    at.switch_page("pages/history.py").run()
    assert "Predictions are not saved on this server" in texts(at)


def test_private_without_sign_in_configured_says_nothing_is_kept(store, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_HISTORY_MODE", "private")

    at = open_app(auth=False, page="pages/history.py")

    assert "sign-in is not configured" in texts(at)


def test_a_mistyped_mode_is_a_sentence(store, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_HISTORY_MODE", "public")

    at = open_app(auth=False)

    assert "CLASSIFIER_HISTORY_MODE" in at.error[0].value


@pytest.mark.parametrize("claim", [None, "false", "true"])
def test_an_email_the_provider_did_not_verify_makes_no_admin(two_people, monkeypatch, claim):
    monkeypatch.setenv("CLASSIFIER_ADMINS", "alice@example.com")
    at = app_test(300)
    at.secrets["auth"] = AUTH
    at.user.update(is_logged_in=True, iss=ISSUER, **ALICE)
    if claim is not None:  # a provider that sends it as text, or not at all
        at.user["email_verified"] = claim
    at.run().switch_page("pages/history.py").run()

    assert sorted(table_labels(at)) == ["tabby", "tabby"]


def test_an_admin_may_be_named_by_owner_id(two_people, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_ADMINS", f"someone@example.com,{owner_of(BOB)}")

    at = open_app(signed_in=BOB, page="pages/history.py")

    assert len(table_labels(at)) == 6


MODEL_TITLES = {models.title_of(name) for name in models.MODELS}


def add_models(store) -> None:
    for who, name, kind in (
        (ALICE, "Alice's birds", "added"),
        (BOB, "Bob's mugs", "taught"),
        (None, "Old model", "added"),
    ):
        scoped = store if who is None else store.scoped(Scope.own(owner_of(who)))
        details = {"kind": kind, "class_names": ["a", "b"], "base": "efficientnet_lite0"}
        details.update(size=224, input_dtype="float32", scaling="minus_one_to_one")
        registry.add_model(scoped, name, "zip", "ab" * 32, details, b"x")


def test_the_models_and_teach_pages_show_only_the_persons_own_models(store):
    add_models(store)

    at = open_app(signed_in=BOB, page="pages/models.py")

    assert [e.label for e in at.expander if e.label not in MODEL_TITLES] == ["Bob's mugs"]
    assert "Alice's birds" not in texts(at)
    at.switch_page("pages/teach.py").run()
    start = at.selectbox(key="teach_start")
    assert [option for option in start.options if "A new model" not in option] == ["Bob's mugs"]


def test_with_history_off_only_nobodys_models_are_offered(store, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_HISTORY_MODE", "off")
    add_models(store)

    at = open_app()

    options = at.sidebar.selectbox(key="model").options
    assert [o for o in options if "(added)" in o or "(taught)" in o] == ["Old model (added)"]
    assert not [b for b in at.sidebar.button if "Sign in" in b.label]  # nothing to sign in for
    at.switch_page("pages/models.py").run()
    assert [e.label for e in at.expander if e.label not in MODEL_TITLES] == ["Old model"]
    assert "Nothing is saved on this server, so models cannot be kept here." in texts(at)


def test_an_answer_another_visit_made_is_not_called_cached(store, coffee_jpeg):
    first, second = open_app(auth=False), open_app(auth=False)
    uploaded = {}
    for at in (first, second):
        at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
        uploaded[at] = datetime.now(UTC)
        at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
        time.sleep(1.1)  # the captions say the time to the second

    assert not any("Cached answer" in c.value for c in second.caption)
    second.sidebar.slider(key="top_k").set_value(3).run()  # its own answer, again: cached
    [cached] = [c.value for c in second.caption if "Cached answer" in c.value]
    # ... from the moment this visit had it, never the other visit's time
    shown = re.search(r"Cached answer from (\d\d:\d\d:\d\d) UTC", cached).group(1)
    assert shown != f"{uploaded[first]:%H:%M:%S}"
    assert shown in {f"{uploaded[second] + timedelta(seconds=s):%H:%M:%S}" for s in (0, 1)}


def test_a_database_that_cannot_be_opened_leaves_classifying_working(
    lite0, monkeypatch, coffee_jpeg
):
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", "postgresql://user:p@ss:w0rd@127.0.0.1:1/h")
    st.cache_data.clear()
    st.cache_resource.clear()
    at = open_app(auth=False)
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()

    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()

    assert not at.exception
    assert at.subheader[0].value.startswith("espresso")
    assert any("could not be saved to the history" in w.value for w in at.warning)


def test_a_shared_history_says_once_that_saved_predictions_are_shared(store):
    at = open_app(auth=False)

    shared = [c for c in at.sidebar.caption if "Saved predictions are shared" in c.value]
    assert len(shared) == 1


# --- Secrets that cannot be trusted: the history closes, never opens wider ------------------


@pytest.fixture
def unreadable_secrets(tmp_path, monkeypatch):
    """Streamlit's secrets read from a file whose `[auth]` table has an unclosed `{`."""
    from streamlit.runtime.secrets import Secrets
    from streamlit.testing.v1.util import patch_config_options

    path = tmp_path / "secrets.toml"
    path.write_text('[auth]\nredirect_uri = "http://127.0.0.1:8501/oauth2callback"\n'
                    'client_kwargs = { prompt = "login"\n')  # fmt: skip
    monkeypatch.setattr(st, "secrets", Secrets())  # a fresh reader: nothing parsed yet
    with patch_config_options({"secrets.files": [str(path)]}):
        yield path


def shows_no_history(at: AppTest, store: HistoryStore) -> None:
    """Assert that nothing is saved, no row is shown and no sign-in or clearing is offered."""
    assert not at.exception
    said = texts(at)
    for hidden in ("tabby", "espresso", "tench", "Clear history", "Sign in", "Download"):
        assert hidden not in said, hidden
    tables = [set(frame.value.columns) for frame in at.dataframe]
    assert not [columns for columns in tables if {"top-1"} & columns or {"classes"} & columns]


def test_a_secrets_file_that_cannot_be_read_closes_the_history(
    two_people, store, unreadable_secrets, coffee_jpeg
):
    before = store.count()
    at = open_app(auth=False)
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()

    assert at.subheader[0].value.startswith("espresso")  # classifying still works
    assert store.count() == before
    [error] = at.sidebar.error
    assert error.value.startswith("The app's secrets file cannot be read (")
    assert error.value.endswith("no history is shown or saved until it is fixed and the app "
                                "restarted.")  # fmt: skip
    assert str(unreadable_secrets) not in error.value  # no server path in a visitor's page
    assert not [t for t in at.sidebar.toggle if t.key in ("save", "save_thumbnails")]
    for page in ("pages/history.py", "pages/models.py", "pages/teach.py"):
        at.switch_page(page).run()
        shows_no_history(at, store)
        assert at.sidebar.error[0].value == error.value, page
    at.switch_page("pages/history.py").run()
    assert error.value in [e.value for e in at.error]
    assert "Shared history" not in texts(at)


@pytest.mark.parametrize("mode", ["shared", None])
def test_unreadable_secrets_close_even_a_history_set_to_shared(
    two_people, store, mode, unreadable_secrets, monkeypatch
):
    if mode:
        monkeypatch.setenv("CLASSIFIER_HISTORY_MODE", mode)
    at = open_app(auth=False, page="pages/history.py")

    shows_no_history(at, store)
    assert any("cannot be read" in e.value for e in at.error)


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        ("cookie_secret", "cookie_secret"),
        ("redirect_uri", "redirect_uri"),
        ("client_secret", "client_secret"),
        ("server_metadata_url", "server_metadata_url"),
    ],
)
def test_an_incomplete_auth_table_closes_the_history(two_people, store, coffee_jpeg, drop, named):
    at = app_test(300)
    at.secrets["auth"] = {key: value for key, value in AUTH.items() if key != drop}
    at.run()
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()

    assert at.subheader[0].value.startswith("espresso")
    assert store.count() == 6
    [error] = at.sidebar.error
    assert error.value.startswith("Sign-in is configured in the app's secrets, but [auth] lacks")
    assert named in error.value
    at.switch_page("pages/history.py").run()
    shows_no_history(at, store)


def test_an_auth_table_with_a_default_provider_table_is_complete(two_people):
    provider = {key: AUTH[key] for key in ("client_id", "client_secret", "server_metadata_url")}
    at = app_test(300)
    at.secrets["auth"] = {
        "redirect_uri": AUTH["redirect_uri"],
        "cookie_secret": AUTH["cookie_secret"],
        "default": provider,
    }
    at.run()

    assert not at.sidebar.error
    assert "Sign in to keep your history" in texts(at)


def test_a_history_database_the_secrets_cannot_name_closes_the_history(
    two_people, store, broken_secrets
):
    at = open_app(auth=False, page="pages/history.py")

    shows_no_history(at, store)
    said = [e.value for e in at.sidebar.error]
    assert said == [
        "The app's secrets cannot name the history database, so no history is shown or saved "
        "until it is fixed and the app restarted."
    ]
    assert not any(str(broken_secrets) in sentence for sentence in said)  # a server path


def test_a_model_removed_elsewhere_is_said_and_nothing_answers_in_its_place(store, coffee_jpeg):
    add_models(store)
    at = open_app(auth=False)
    at.sidebar.selectbox(key="model").set_value("Old model").run()
    registry.remove_model(store, "Old model")  # e.g. by another replica on the same database

    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    removed = "The model “Old model” is not here any more: it was removed."
    assert [e.value for e in at.error if e.value.startswith(removed)]
    at.sidebar.slider(key="top_k").set_value(3).run()  # the whole page again

    assert not at.exception
    picker = at.sidebar.selectbox(key="model")
    assert picker.value == "Old model"
    assert "Old model (removed)" in picker.options
    assert [e.value for e in at.error if e.value.startswith(removed)]
    assert not at.subheader  # no answer from another model
    assert store.count() == 0
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    assert "Old model (removed)" not in at.sidebar.selectbox(key="model").options
    assert at.subheader[0].value.startswith("espresso")


def test_a_model_removed_and_its_name_taken_by_another_person_never_answers_in_its_place(
    store, coffee_jpeg
):
    """Alice's "Alice's birds" is removed (in another tab, on another replica) and Bob adds
    a model of that name: her photo gets the sentence, never his model's answer."""
    add_models(store)
    at = open_app(signed_in=ALICE)
    at.sidebar.selectbox(key="model").set_value("Alice's birds").run()
    assert registry.remove_model(store.scoped(Scope.own(owner_of(ALICE))), "Alice's birds")
    bobs = store.scoped(Scope.own(owner_of(BOB)))
    registry.add_model(bobs, "Alice's birds", "zip", "cd" * 32, {"kind": "added"}, b"y")

    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()

    assert not at.exception
    removed = "The model “Alice's birds” is not here any more: it was removed."
    assert [e.value for e in at.error] == [f"{removed} Pick another model in the sidebar."], [
        e.value for e in at.error
    ]
    assert not at.subheader
    assert store.count() == 0


def test_a_taught_model_is_retrained_or_downloaded_only_by_a_person_it_is_in_reach_of(store):
    """The Teach page's "Start from" and download look a name up among the visitor's
    models: a model of that name that is someone else's (Alice's removed, Bob's added
    since) is never read nor fused for her."""
    from classifier import teach

    add_models(store)
    alice, bob = Scope.own(owner_of(ALICE)), Scope.own(owner_of(BOB))

    for reach in (lambda: models.download_path("Bob's mugs", alice),
                  lambda: models.download("Bob's mugs", alice),
                  lambda: teach.taught_examples("Bob's mugs", alice)):  # fmt: skip
        with pytest.raises(models.UnknownModel):
            reach()
    assert models.download_path("Bob's mugs", bob).name.endswith("-teachable-machine.zip")


def test_a_predictions_page_offers_its_models_classes_not_those_of_a_new_model_of_its_name(
    store, monkeypatch
):
    """The corrections offered on a prediction's page are its model's classes, whoever saved
    it (an admin with Bob's model, anyone with a model in a shared history); once Bob's
    model is removed and Alice's takes its name, the classes the prediction named."""
    from ui import permalink, resources

    add_models(store)
    bob, admin = store.scoped(Scope.own(owner_of(BOB))), store.scoped(Scope("carol", everyone=True))
    bobs = bob.get(bob.add(record("a mug", 0.9, model="Bob's mugs")))
    admins = admin.get(admin.add(record("a", 0.8, model="Bob's mugs")))
    anyones = store.get(store.add(record("b", 0.7, model="Bob's mugs")))
    monkeypatch.setattr(resources, "model_scope", lambda: admin.scope)
    assert [permalink.class_names_of(saved) for saved in (bobs, admins, anyones)] == [
        ("a", "b")
    ] * 3

    assert registry.remove_model(bob, "Bob's mugs")
    alices = store.scoped(Scope.own(owner_of(ALICE)))
    details = {"kind": "added", "class_names": ["x", "y"], "size": 224, "scaling": "raw"}
    registry.add_model(alices, "Bob's mugs", "zip", "cd" * 32, details, b"y")

    named = [permalink.class_names_of(saved) for saved in (bobs, admins, anyones)]
    assert named == [("a mug",), ("a",), ("b",)]


def pictures_on(at: AppTest) -> list[tuple[str, str]]:
    """Return every picture on the page: its URL and its caption."""
    return [(p.url, p.caption) for element in at.get("image") for p in element.proto.imgs]


def test_a_persons_pictures_are_sent_in_the_page_never_as_fetchable_media(two_people, store,
                                                                          coffee_jpeg):  # fmt: skip
    at = open_app(signed_in=ALICE)
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    next(t for t in at.toggle if t.label == "Where it looked").set_value(True).run()
    shipped = {LEGEND, *EXAMPLES}  # the examples and the map's colour scale: no one's pictures
    mine = [(url, caption) for url, caption in pictures_on(at) if caption not in shipped]
    public_id = store.get(max(r.id for r in store.find())).public_id
    at.query_params["prediction"] = public_id
    at.switch_page("pages/history.py").run()
    mine += pictures_on(at)

    assert not at.exception
    # the photo, both "What the model saw" pictures and the map; the permalink's thumbnail
    # (and its map, when the map model was open in this process before the answer was saved)
    assert len(mine) >= 5, mine
    assert [url[:22] for url, _ in mine if not url.startswith("data:image/")] == []


LEGEND = "Counted least ← → counted most"
