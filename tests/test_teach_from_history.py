"""Teach from corrections: the photos of corrected predictions gathered from the history
(`classifier.history.teaching`), handed to the Teach page (`teach_view.start_from_history`)
and taught on the command line (`classifier teach NAME --from-history`).

The Review page's "Teach a model from these" button is drawn here where the page says there
is nothing left to review, as the page will draw it. Training reads each photo's vector
from the cache the feature extractor fills (`teach.embed`), written here beforehand: a
class's vectors lie around a mean of their own, so training is quick and its accuracy
known. The slow test teaches from EfficientNet-Lite0's real features instead.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import streamlit as st
from PIL import Image

from classifier import images, models, teach
from classifier.config import get_settings
from classifier.history import HistoryStore, NewRecord
from classifier.history.owners import Scope
from classifier.history.teaching import labelled_photos
from classifier.labels import TopClass
from classifier.predict import classify
from tests.conftest import LITE0, made_up_examples
from tests.helpers import app_test, cli
from tests.test_private import ALICE, BOB, open_app, owner_of

NOW = datetime.now(UTC).replace(microsecond=0)
DIMENSIONS = 1280  # EfficientNet-Lite0's features


@pytest.fixture
def app_store(tmp_path, monkeypatch):
    """The history the app and the command line use (where they keep models too)."""
    from classifier.models import own

    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    monkeypatch.setenv("CLASSIFIER_DATA_DIR", str(tmp_path / "data"))
    st.cache_data.clear()
    opened = HistoryStore(url)
    yield opened
    opened.dispose()
    own.close_stores()


@pytest.fixture
def known_features(tmp_path, monkeypatch):
    """A feature cache of the test's own; `vectors(photo bytes by class)` fills it. The
    feature extractor is never prepared: a photo without a vector fails the test."""
    monkeypatch.setenv("CLASSIFIER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(teach, "extractor_ready", lambda base: True)

    def no_extractor(base):
        raise AssertionError("a photo's vector was not in the cache")

    monkeypatch.setattr(teach, "extractor", no_extractor)
    return vectors


def vectors(by_class: dict[str, list[bytes]]) -> None:
    """Cache a vector for each photo, around a mean of its class's (as `teach.embed` would)."""
    folder = get_settings().cache_dir / "embeddings" / teach.features_path(LITE0).stem
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for photos in by_class.values():
        mean = rng.uniform(0, 2, DIMENSIONS)
        for data in photos:
            vector = np.maximum(mean + rng.normal(0, 0.3, DIMENSIONS), 0).astype(np.float32)
            np.save(folder / f"{images.content_digest(data)}.npy", vector, allow_pickle=False)


def picture(seed: int) -> Image.Image:
    """A photo of its own: random blocks of colour, 400 by 300 pixels."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize((400, 300), Image.Resampling.NEAREST)


class Saved:
    """Saves predictions, each of a photo of its own, and remembers their pictures."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.count = 0
        self.pictures: dict[int, tuple[bytes | None, bytes | None]] = {}  # (photo, thumbnail)

    def add(
        self,
        answer: str = "espresso",
        *,
        correct_to: str | None = None,
        right: bool = False,
        wrong: bool = False,
        photo: bool = True,
        thumbnail: bool = True,
        model: str = "mobilenet_v2",
        days_ago: float = 0,
        sha256: str | None = None,
        store: HistoryStore | None = None,
    ) -> int:
        self.count += 1
        image = picture(self.count)
        kept = images.reduced_copy(image) if photo else None
        small = images.make_thumbnail(image) if thumbnail else None
        row = (store or self.store).add(
            NewRecord(
                file_name=f"photo {self.count}.jpg",
                sha256=sha256 or hashlib.sha256(f"photo {self.count}".encode()).hexdigest(),
                width=400,
                height=300,
                image_format="JPEG",
                model=model,
                top_k=(TopClass(answer, 1, 0.6), TopClass("cup", 2, 0.3)),
                inference_ms=5.0,
                thumbnail=small,
                photo=kept,
                created_at=NOW - timedelta(days=days_ago, seconds=self.count),
            )
        )
        if correct_to is not None or wrong:
            (store or self.store).set_feedback(row, "wrong", correct_to)
        elif right:
            (store or self.store).set_feedback(row, "correct")
        self.pictures[row] = (kept, small)
        return row

    def data(self, row: int) -> bytes:
        """The picture a row teaches with: its kept photo, else its thumbnail."""
        kept, small = self.pictures[row]
        return kept or small


@pytest.fixture
def saved(store) -> Saved:
    """Predictions saved in a store of the test's own (SQLite, and PostgreSQL if configured)."""
    return Saved(store)


@pytest.fixture
def history(app_store) -> Saved:
    """Predictions saved in the history the app and the command line use."""
    return Saved(app_store)


# --- Gathering ---------------------------------------------------------------------------


def test_corrections_give_a_class_each_with_the_kept_photo_or_else_the_thumbnail(saved, store):
    latte = saved.add(correct_to="Latte")
    small_latte = saved.add(correct_to="latte ", photo=False)  # the same class, spelt otherwise
    mocha = saved.add("cup", correct_to="Mocha")
    confirmed = saved.add("Latte", right=True)  # rated right: it joins the corrected class
    saved.add("espresso", right=True)  # rated right, but no correction names espresso
    saved.add(wrong=True)  # rated wrong, with no class given
    saved.add()  # not rated
    saved.add(correct_to="Mocha", photo=False, thumbnail=False)  # no picture at all

    gathered = labelled_photos(store)

    classes = gathered.classes()
    assert list(classes) == ["Latte", "Mocha"]  # the most photos first
    assert [p.id for p in classes["Latte"]] == [latte, small_latte, confirmed]  # newest first
    assert [p.id for p in classes["Mocha"]] == [mocha]
    for photo in gathered.photos:
        assert photo.data == saved.data(photo.id)
    assert [p.thumbnail_only for p in classes["Latte"]] == [False, True, False]
    assert (gathered.corrections, gathered.corrected, gathered.rated_right) == (4, 3, 1)
    assert (gathered.thumbnail_only, gathered.without_picture) == (1, 1)
    assert classes["Mocha"][0].name == "history #3 (photo 3.jpg)"


def test_picked_predictions_rated_right_bring_their_own_class(saved, store):
    corrected = saved.add(correct_to="Latte")
    right = [saved.add("espresso", right=True) for _ in range(2)]
    saved.add(correct_to="Mocha")  # not picked

    gathered = labelled_photos(store, ids=[corrected, *right])

    assert {label: [p.id for p in photos] for label, photos in gathered.classes().items()} == {
        "espresso": right,
        "Latte": [corrected],
    }


def test_only_the_model_and_days_asked_for_and_each_photo_once(saved, store):
    new = saved.add(correct_to="Latte", model="efficientnet_lite0")
    saved.add(correct_to="Latte", model="efficientnet_lite0", days_ago=10)
    saved.add(correct_to="Latte")  # another model
    twice = hashlib.sha256(b"one photo, two rows").hexdigest()
    saved.add(correct_to="Mocha", model="efficientnet_lite0", sha256=twice)
    saved.add(correct_to="Mocha", model="efficientnet_lite0", sha256=twice, days_ago=1)

    gathered = labelled_photos(store, model="efficientnet_lite0", since=NOW - timedelta(days=5))

    assert [(p.label, p.id) for p in gathered.photos] == [("Latte", new), ("Mocha", new + 3)]
    assert gathered.repeated == 1


def test_a_photo_said_to_be_no_use_under_one_model_is_not_taught_from_another(saved, store):
    """Photo P was answered by two models: rated right under A, set aside as "not a usable
    photo" under B (the wrong picture). It teaches nothing; another photo still does."""
    same = "f" * 64
    right = saved.add("espresso", right=True, sha256=same, model="mobilenet_v2")
    unusable = saved.add("espresso", sha256=same, model="efficientnet_lite0")
    assert store.set_feedback(unusable, "unusable")
    other = saved.add("espresso", right=True)

    gathered = labelled_photos(store, ids=[right, unusable, other])

    assert [photo.id for photo in gathered.photos] == [other]
    assert gathered.set_aside == 1
    alone = labelled_photos(store, ids=[right])
    assert alone.nothing_to_teach() == (
        "The photo of the rated prediction found was set aside as no usable photo, so there "
        "is nothing to teach from."
    )


def test_at_most_the_limit_corrections_first_the_newest_first(saved, store, monkeypatch):
    monkeypatch.setenv("CLASSIFIER_TEACH_MAX_PHOTOS", "3")
    old = saved.add(correct_to="Latte", days_ago=3)
    right = saved.add("Latte", right=True)  # newest, but rated right: after the corrections
    newer = [saved.add(correct_to="Latte", days_ago=d) for d in (2, 1)]

    gathered = labelled_photos(store)

    assert [p.id for p in gathered.photos] == [newer[1], newer[0], old]
    assert gathered.left_out == 1 and right not in [p.id for p in gathered.photos]


def test_a_scoped_store_gives_its_owners_corrections_only(saved, store):
    alice = store.scoped(Scope.own("alice"))
    bob = store.scoped(Scope.own("bob"))
    hers = saved.add(correct_to="Latte", store=alice)
    his = saved.add(correct_to="Mocha", store=bob)
    saved.add("Latte", right=True, store=bob)  # Bob's, of a class Alice corrected to

    assert [p.id for p in labelled_photos(alice).photos] == [hers]
    assert [p.id for p in labelled_photos(alice, ids=[hers, his]).photos] == [hers]
    assert [p.id for p in labelled_photos(bob).photos] == [his]
    assert len(labelled_photos(store).photos) == 3  # everyone's


# --- The Teach page ----------------------------------------------------------------------


def review_page(at=None):
    at = at or app_test(120).run()
    return at.switch_page("pages/review.py").run()


def teach_from_these(at, label: str = "Teach a model from these"):
    """Click "Teach a model from these" on the Review page (or another button handing
    predictions over): the Teach page opens."""
    button(at, label).click().run()
    assert not at.exception
    assert at.title[0].value == "Teach a model your own classes"
    # AppTest reruns the page it was sent to last, where a browser stays on the page the
    # script switched to: send it there too.
    return at.switch_page("pages/teach.py")


def class_cards(at) -> list[tuple[str, str]]:
    """Each class's name and photo count, as its card shows them."""
    names = [t.value for t in at.text_input if t.key.startswith("teach_name_")]
    counts = [m.value for m in at.markdown if m.value.startswith("**") and "photo" in m.value]
    return list(zip(names, counts, strict=True))


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_teach_from_these_fills_the_teach_page_with_one_class_per_correction_and_trains(
    history, known_features
):
    lattes = [history.add(correct_to="Latte", photo=i > 0) for i in range(3)]
    mochas = [history.add("cup", correct_to="Mocha") for _ in range(3)]
    history.add("espresso", right=True)  # no correction names espresso: not taught
    known_features(
        {"Latte": [history.data(i) for i in lattes], "Mocha": [history.data(i) for i in mochas]}
    )
    at = review_page()
    assert not at.exception
    teach_from_these(at)

    assert not at.warning
    assert class_cards(at) == [("Latte", "**3 photos**"), ("Mocha", "**3 photos**")]
    assert "From 6 corrected predictions (1 with only a thumbnail, which is small" in "".join(
        c.value for c in at.caption
    )
    button(at, "Train").click().run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "100%"
    table = at.dataframe[0].value
    assert table["class"].tolist() == ["Latte", "Mocha"] and table["photos"].tolist() == [3, 3]
    at.text_input(key="teach_model_name").set_value("Drinks").run()
    button(at, "Save model").click().run()
    assert not at.exception and not at.error
    (model,) = models.all_models()
    assert model.name == "Drinks" and model.class_names == ("Latte", "Mocha")
    assert model.entry.details["photos"] == 6


def test_a_photo_deleted_from_the_history_after_it_was_handed_over_is_not_trained_on(
    history, known_features
):
    lattes = [history.add(correct_to="Latte") for _ in range(3)]
    mochas = [history.add("cup", correct_to="Mocha") for _ in range(3)]
    known_features(
        {"Latte": [history.data(i) for i in lattes], "Mocha": [history.data(i) for i in mochas]}
    )
    at = teach_from_these(review_page())
    assert class_cards(at) == [("Latte", "**3 photos**"), ("Mocha", "**3 photos**")]
    assert history.store.delete([lattes[0]]) == 1  # on the History page, in another tab

    button(at, "Train").click().run()

    assert not at.exception and not at.error
    assert [i.value for i in at.info if "deleted" in i.value] == [
        "1 photo taken from the history was deleted there since, so it was left out."
    ]
    assert at.dataframe[0].value["photos"].tolist() == [2, 3]
    # the cards, drawn before the result, count what was trained on on this very run
    assert class_cards(at) == [("Latte", "**2 photos**"), ("Mocha", "**3 photos**")]
    at.text_input(key="teach_model_name").set_value("Drinks").run()
    assert class_cards(at) == [("Latte", "**2 photos**"), ("Mocha", "**3 photos**")]
    assert not [i.value for i in at.info if "deleted" in i.value]  # said once, at Train
    assert not [w.value for w in at.warning]  # the training is of the classes shown
    button(at, "Save model").click().run()
    (model,) = models.all_models()
    assert model.entry.details["photos"] == 5


def test_when_the_history_cannot_be_read_at_train_nothing_is_trained(
    history, known_features, monkeypatch
):
    lattes = [history.add(correct_to="Latte") for _ in range(3)]
    mochas = [history.add("cup", correct_to="Mocha") for _ in range(3)]
    known_features(
        {"Latte": [history.data(i) for i in lattes], "Mocha": [history.data(i) for i in mochas]}
    )
    at = teach_from_these(review_page())
    from ui import resources

    monkeypatch.setattr(resources, "store", lambda: None)  # signed out in another tab

    button(at, "Train").click().run()

    assert not at.exception
    assert [e.value for e in at.error] == [
        "The history cannot be read now, so the photos taken from it cannot be checked; "
        "nothing was trained. Try again in a moment (signed in, if you were)."
    ]
    assert not at.dataframe and not [b for b in at.button if b.label == "Save model"]
    assert class_cards(at) == [("Latte", "**3 photos**"), ("Mocha", "**3 photos**")]


def test_photos_handed_over_join_the_work_already_on_the_teach_page(history):
    for _ in range(3):
        history.add(correct_to="Latte")
        history.add("cup", correct_to="Mocha")
    mine = [history.data(history.add("cup")) for _ in range(2)]  # not rated: not handed over
    at = app_test(120).run()
    at.switch_page("pages/teach.py").run()
    at.text_input(key="teach_name_0").set_value("latte")
    at.file_uploader(key="teach_upload_0").set_value(
        [(f"mine {i}.jpg", data, "image/jpeg") for i, data in enumerate(mine)]
    ).run()
    assert class_cards(at)[0] == ("latte", "**2 photos**")

    teach_from_these(review_page(at))

    assert class_cards(at) == [("latte", "**5 photos**"), ("Mocha", "**3 photos**")]
    button(at, "Leave them out").click().run()
    assert class_cards(at) == [("latte", "**2 photos**"), ("", "**0 photos**")]  # one to fill


def test_picked_to_add_to_a_taught_model_the_photos_join_its_classes(history):
    teach.save("Drinks", teach.train(made_up_examples(classes=2, per_class=4)))  # class 0, 1
    rows = [history.add(correct_to=label) for label in ("CLASS 0", "class 0", "Tea")]
    at = app_test(120).run()
    at.switch_page("pages/teach.py").run()
    at.selectbox(key="teach_start").set_value("Drinks").run()  # picked before: started anew
    picked = [*rows, history.add("Tea", right=True)]
    history.add(correct_to="Mocha")  # not picked
    at.switch_page("pages/history.py").run()
    table = at.dataframe[0].value
    rows_picked = [i for i, row_id in enumerate(table["id"]) if row_id in picked]
    at.session_state[at.dataframe[0].key] = {
        "selection": {"rows": rows_picked, "columns": [], "cells": []}
    }  # ticked in History's table, as the browser reports it
    teach_from_these(at.run(), "Teach from 4 selected")
    assert class_cards(at) == [("CLASS 0", "**2 photos**"), ("Tea", "**2 photos**")]
    (note,) = [c.value for c in at.caption if c.value.startswith("From ")]
    assert note == "From 3 corrected predictions and 1 rated right."

    at.selectbox(key="teach_start").set_value("Drinks").run()
    assert not at.exception
    assert class_cards(at) == [
        ("class 0", "**6 photos** (4 from before)"),  # its own class, its name as it was
        ("class 1", "**4 photos** (4 from before)"),
        ("Tea", "**2 photos**"),
    ]
    at.selectbox(key="teach_start").set_value("").run()  # A new model: the photos stay
    assert class_cards(at) == [("CLASS 0", "**2 photos**"), ("Tea", "**2 photos**")]

    button(at, "Leave them out").click().run()
    assert not at.exception
    assert class_cards(at) == [("", "**0 photos**"), ("", "**0 photos**")]
    assert not any(c.value.startswith("From ") for c in at.caption)


def test_teach_from_these_without_corrections_says_so_and_stays(history):
    history.add("espresso", right=True)
    at = review_page()
    button(at, "Teach a model from these").click().run()
    assert not at.exception
    assert at.title[0].value == "Review"
    assert [w.value for w in at.warning] == [
        "None of the saved predictions was corrected: rate one 👎 and give the right class "
        "to teach from it."
    ]


def test_a_private_visitor_teaches_from_their_own_corrections(history, app_store):
    alice = app_store.scoped(Scope.own(owner_of(ALICE)))
    bob = app_store.scoped(Scope.own(owner_of(BOB)))
    for label in ("Latte", "Mocha"):
        history.add(correct_to=label, store=alice)
    history.add(correct_to="Tea", store=bob)
    at = open_app(signed_in=ALICE, page="pages/review.py")
    teach_from_these(at)
    assert class_cards(at) == [("Latte", "**1 photo**"), ("Mocha", "**1 photo**")]


# --- The command line --------------------------------------------------------------------


def test_the_command_line_teaches_from_the_corrected_predictions(history, known_features):
    lattes = [history.add(correct_to="Latte", photo=i > 0) for i in range(3)]
    mochas = [history.add("cup", correct_to="Mocha", days_ago=3 * (i == 0)) for i in range(3)]
    confirmed = history.add("Mocha", right=True, model="efficientnet_lite0")
    known_features(
        {
            "Latte": [history.data(i) for i in lattes],
            "Mocha": [history.data(i) for i in [*mochas, confirmed]],
        }
    )

    done = cli("teach", "Drinks", "--from-history")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith("over 7 photos")
    assert (
        "from the history: 6 corrected prediction(s) and 1 rated right (1 with only a thumbnail)"
        in done.stderr.splitlines()
    )
    assert 'saved Drinks: classify with --model "Drinks"' in done.stderr
    (model,) = models.all_models()
    assert model.class_names == ("Mocha", "Latte")  # the class with most photos first
    assert model.entry.details["photos"] == 7

    stray = history.add(correct_to="Tea")  # one photo: too few for a class of its own
    known_features({"Tea": [history.data(stray)]})
    with_stray = cli("teach", "Drinks", "--from-history")
    assert with_stray.returncode == 0, with_stray.stderr
    assert (
        "left out the class “Tea”: 1 photo, and a class needs at least 2"
        in with_stray.stderr.splitlines()
    )
    assert models.all_models()[0].class_names == ("Mocha", "Latte")

    since = (NOW - timedelta(days=1)).date().isoformat()
    again = cli("teach", "Drinks", "--from-history", "--since", since)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0].endswith("over 6 photos")  # one Mocha is older
    assert "retrained Drinks" in again.stderr

    one_model = cli("teach", "Drinks", "--from-history", "--model", "efficientnet_lite0")
    assert one_model.returncode == 1
    assert one_model.stderr.splitlines() == [
        "error: No saved prediction of EfficientNet-Lite0 was corrected (rated wrong with the "
        "right class given), so there is nothing to teach from."
    ]


def test_the_command_line_says_in_one_sentence_why_it_cannot_teach(history):
    history.add("espresso", right=True)
    nothing = cli("teach", "Drinks", "--from-history")
    assert nothing.returncode == 1
    assert nothing.stderr.splitlines() == [
        "error: No saved prediction was corrected (rated wrong with the right class given), "
        "so there is nothing to teach from."
    ]
    history.add(correct_to="Latte")
    one = cli("teach", "Drinks", "--from-history")
    assert one.returncode == 1
    assert one.stderr.splitlines()[-1] == (
        "error: The corrected predictions name one class, “Latte”; teach at least 2: correct "
        "predictions to another class too."
    )
    history.add(correct_to="Mocha", photo=False, thumbnail=False)
    short = cli("teach", "Drinks", "--from-history")
    assert short.returncode == 1
    assert "left out 1 without a picture kept" in short.stderr
    assert short.stderr.splitlines()[-1] == (
        "error: The corrected predictions name one class, “Latte”; teach at least 2: correct "
        "predictions to another class too."
    )
    nobody = cli("teach", "Drinks", "--from-history", "--owner", "carol@example.com")
    assert nobody.returncode == 1
    assert nobody.stderr.splitlines() == [
        "error: Nobody signed in here as 'carol@example.com'; `classifier history people` "
        "lists who did."
    ]


def test_a_folder_or_the_history_but_not_both(tmp_path):
    both = cli("teach", "Drinks", str(tmp_path), "--from-history")
    assert both.returncode == 2
    assert "give a folder of photos per class, or --from-history" in both.stderr
    neither = cli("teach", "Drinks")
    assert neither.returncode == 2
    assert "give a folder of photos per class, or --from-history" in neither.stderr
    since = cli("teach", "Drinks", str(tmp_path), "--since", "2024-03-01")
    assert since.returncode == 2 and "go with --from-history" in since.stderr
    day = cli("teach", "Drinks", "--from-history", "--since", "March")
    assert day.returncode == 2 and "expected a day such as 2024-03-01" in day.stderr


@pytest.mark.slow
def test_taught_from_corrected_photos_it_classifies_held_out_ones(image_folder, app_store):
    root, held_out = image_folder
    for label in ("Cat", "Coffee"):
        for path in sorted((root / label).glob("*.jpg")):
            data = path.read_bytes()
            decoded = images.decode_image(data).image
            row = app_store.add(
                NewRecord(
                    file_name=path.name,
                    sha256=images.content_digest(data),
                    width=decoded.width,
                    height=decoded.height,
                    image_format="JPEG",
                    model="mobilenet_v2",
                    top_k=(TopClass("something else", 1, 0.6),),
                    inference_ms=5.0,
                    thumbnail=images.make_thumbnail(decoded),
                    photo=images.reduced_copy(decoded),
                )
            )
            app_store.set_feedback(row, "wrong", label)

    done = cli("teach", "Cat or coffee", "--from-history")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith("over 16 photos")
    answers = [
        classify(data, "Cat or coffee").top1.label == label
        for label in ("Cat", "Coffee")
        for data in held_out[label]
    ]
    assert sum(answers) / len(answers) >= 0.9, answers


def test_the_classes_and_the_model_started_from_stay_after_a_visit_to_another_page(app_store):
    teach.save("Drinks", teach.train(made_up_examples(classes=2, per_class=4)))
    at = app_test(120).run()
    at.switch_page("pages/teach.py").run()
    at.selectbox(key="teach_start").set_value("Drinks").run()
    at.text_input(key="teach_name_3").set_value("Coffee").run()
    at.switch_page("pages/classify.py").run()
    at.switch_page("pages/teach.py").run()
    assert not at.exception
    assert at.selectbox(key="teach_start").value == "Drinks"
    assert class_cards(at) == [
        ("class 0", "**4 photos** (4 from before)"),
        ("Coffee", "**4 photos** (4 from before)"),
    ]


def test_teach_from_these_takes_the_corrections_of_the_days_and_model_filtered(history):
    history.add(correct_to="Latte", days_ago=10)  # before the day filtered from
    history.add(correct_to="Latte", model="efficientnet_lite0")  # another model's
    for label in ("Latte", "Mocha"):
        history.add(correct_to=label)
    at = review_page()
    at.sidebar.multiselect(key="r_models").set_value(["mobilenet_v2"]).run()
    since = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    at.sidebar.text_input(key="r_from").set_value(since).run()
    teach_from_these(at)
    assert class_cards(at) == [("Latte", "**1 photo**"), ("Mocha", "**1 photo**")]
