"""The Teach page (AppTest): bad input named before any work, training, saving and
retraining, photos from the history, files refused as they arrive; and a taught model on
the Models page.

The slow tests use EfficientNet-Lite0's real feature extractor on the shipped photos'
variations and drawn classes (`image_folder` in conftest.py).
"""

from __future__ import annotations

import re

import pytest
from streamlit.navigation.page import calc_hash

from classifier import models, teach
from classifier.models import own
from tests.conftest import EXAMPLES, LITE0, made_up_examples
from tests.helpers import app_test

pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)


def app():
    import streamlit as st

    st.cache_data.clear()
    return app_test(300)


def uploads(held_out: dict[str, list[bytes]], name: str, count: int) -> list[tuple]:
    return [(f"{name}{i}.jpg", data, "image/jpeg") for i, data in enumerate(held_out[name][:count])]


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_the_teach_page_says_when_teaching_is_turned_off(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_ALLOW_MODEL_UPLOADS", "0")
    at = app().run()
    at.switch_page("pages/teach.py").run()
    assert not at.exception
    assert "Teaching models is turned off on this server" in at.info[0].value
    assert not at.get("file_uploader")


def test_the_teach_page_names_bad_input_before_any_work():
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.text_input(key="teach_name_0").set_value("Mug")
    at.text_input(key="teach_name_1").set_value("mug").run()
    button(at, "Train").click().run()
    assert not at.exception
    assert at.error[0].value.startswith("Two classes are called “mug”")
    at.text_input(key="teach_name_1").set_value("Cup").run()
    button(at, "Train").click().run()
    assert at.error[0].value == "Give each class at least 2 photos, then train."
    assert not at.metric  # nothing trained, nothing to save
    assert "Save model" not in [b.label for b in at.button]


def test_too_few_photos_are_named_at_once_before_the_feature_extractor_is_prepared(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("CLASSIFIER_CACHE_DIR", str(tmp_path / "cache"))  # nothing exported
    assert not teach.extractor_ready(LITE0)
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.text_input(key="teach_name_0").set_value("Mug")
    at.text_input(key="teach_name_1").set_value("Cup")
    cat = ("cat.jpg", (EXAMPLES / "cat.jpg").read_bytes(), "image/jpeg")
    at.file_uploader(key="teach_upload_0").set_value([cat]).run()
    assert [m.value for m in at.markdown if "photo" in m.value] == ["**1 photo**", "**0 photos**"]
    button(at, "Train").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Give each class at least 2 photos, then train."]
    assert not at.metric
    assert not teach.extractor_ready(LITE0)  # nothing was prepared for it


@pytest.mark.slow
def test_teach_on_the_page_save_classify_then_retrain_under_the_same_name(image_folder):
    _, photos = image_folder
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.text_input(key="teach_name_0").set_value("Cat")
    at.text_input(key="teach_name_1").set_value("Coffee")
    at.file_uploader(key="teach_upload_0").set_value(uploads(photos, "Cat", 4)).run()
    at.file_uploader(key="teach_upload_1").set_value(uploads(photos, "Coffee", 1)).run()
    assert [m.value for m in at.markdown if "photo" in m.value] == ["**4 photos**", "**1 photo**"]
    button(at, "Train").click().run()
    assert at.error[0].value.startswith("The class “Coffee” has 1 photo; each class needs")

    at.file_uploader(key="teach_upload_1").set_value(uploads(photos, "Coffee", 4)).run()
    button(at, "Train").click().run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "100%"
    table = at.dataframe[0].value
    assert table["class"].tolist() == ["Cat", "Coffee"] and table["photos"].tolist() == [4, 4]
    assert len(at.get("vega_lite_chart")) == 1  # the confusion matrix
    said = [m.value for m in at.markdown]
    assert "No wrong answers suggest a confidence threshold; the sidebar's applies." in said
    assert "teach_use_threshold" not in [t.key for t in at.toggle]  # no threshold to offer
    assert at.info[0].value.startswith("It always answers with one of its 2 classes")
    at.text_input(key="teach_model_name").set_value("Cat or coffee").run()
    button(at, "Save model").click().run()
    assert any(s.value.startswith("Saved Cat or coffee.") for s in at.success)
    assert at.session_state["kept_model"] == "Cat or coffee"
    assert button(at, "Save model").disabled  # saved: nothing new to save
    assert "Saved as Cat or coffee." in [c.value for c in at.caption]
    assert at.button(key="prepare_download_Cat or coffee")

    at.switch_page("pages/classify.py").run()
    picker = at.sidebar.selectbox(key="model")
    assert picker.value == "Cat or coffee"
    assert "Cat or coffee (taught)" in picker.options  # as the person reads them
    at.file_uploader(key="uploads").set_value(uploads(photos, "Coffee", 6)[5:]).run()
    assert not at.exception
    assert at.subheader[0].value.startswith("Coffee · ")
    (saved,) = own.store().find()
    assert saved.model == "Cat or coffee" and saved.top_k[0].label == "Coffee"

    # Later: a third class and more photos, trained again under the same name.
    at.switch_page("pages/teach.py").run()
    at.selectbox(key="teach_start").set_value("Cat or coffee").run()
    assert [m.value for m in at.markdown if "photo" in m.value] == [
        "**4 photos** (4 from before)",
        "**4 photos** (4 from before)",
    ]
    button(at, "Add a class").click().run()
    at.text_input(key="teach_name_4").set_value("Rocket")
    at.file_uploader(key="teach_upload_4").set_value(uploads(photos, "Striped", 3)).run()
    button(at, "Train").click().run()
    assert at.dataframe[0].value["photos"].tolist() == [4, 4, 3]
    assert at.text_input(key="teach_model_name").value == "Cat or coffee"
    button(at, "Save model").click().run()
    assert not at.exception and not at.error
    (model,) = models.all_models()
    assert model.name == "Cat or coffee" and model.class_names == ("Cat", "Coffee", "Rocket")
    assert model.entry.details["photos"] == 11
    assert models.load("Cat or coffee").engine.classes == 3

    # Trained and saved again on this visit: it replaces what this visit saved.
    at.file_uploader(key="teach_upload_4").set_value(uploads(photos, "Striped", 4)).run()
    button(at, "Train").click().run()
    button(at, "Save model").click().run()
    assert not at.error
    assert models.all_models()[0].entry.details["photos"] == 12

    # Another tab retrains it meanwhile: this one's next save is refused, and says why.
    _, examples, _ = teach.taught_examples("Cat or coffee")
    theirs = teach.save("Cat or coffee", teach.train(examples.take(range(10))), replace=True)
    at.file_uploader(key="teach_upload_4").set_value(uploads(photos, "Striped", 3)).run()
    button(at, "Train").click().run()
    button(at, "Save model").click().run()
    assert [e.value for e in at.error] == [
        "“Cat or coffee” was retrained or removed meanwhile, elsewhere; nothing was saved."
    ]
    assert "pick “A new model” under Start from" in at.info[-1].value
    (model,) = models.all_models()
    assert model.entry.sha256 == theirs.entry.sha256 and model.entry.details["photos"] == 10


def test_photos_saved_in_the_history_can_be_added_to_a_class():
    from classifier import images
    from tests.helpers import make_record, ranked

    store = own.store()  # the history's database
    for name, label in (("cat.jpg", "tabby cat"), ("coffee.jpg", "espresso")):
        picture = images.decode_image((EXAMPLES / name).read_bytes()).image
        store.add(
            make_record(
                file_name=name, top_k=ranked(label, 0.9), thumbnail=images.make_thumbnail(picture)
            )
        )
    store.add(make_record(file_name="no picture kept.jpg", thumbnail=None))
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.toggle(key="teach_use_history_0").set_value(True).run()
    picker = at.multiselect(key="teach_history_pick_0")
    assert len(picker.options) == 2  # the row without a picture is not offered
    at.text_input(key="teach_history_search_0").set_value("tabby").run()
    picker = at.multiselect(key="teach_history_pick_0")
    (only,) = picker.options
    assert "cat.jpg · tabby cat" in only
    picker.set_value([only]).run()
    button(at, "Add them").click().run()
    assert not at.exception
    assert [m.value for m in at.markdown if "photo" in m.value] == ["**1 photo**", "**0 photos**"]


def test_photos_picked_from_the_history_are_read_again_when_added():
    """The kept photo where there is one (not the small thumbnail); a row deleted since it
    was picked, or one set aside as no usable photo, is not added, and the card says so."""
    from classifier import images
    from tests.helpers import make_record, ranked

    store = own.store()
    picture = images.decode_image((EXAMPLES / "cat.jpg").read_bytes()).image
    small, kept = images.make_thumbnail(picture), images.reduced_copy(picture)
    rows = [
        store.add(make_record(file_name=f"cat {i}.jpg", sha256=f"{i:064x}",
                              top_k=ranked("tabby cat", 0.9), thumbnail=small,
                              photo=kept if i == 0 else None))
        for i in range(3)
    ]  # fmt: skip
    assert store.set_feedback(rows[2], "unusable")
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.toggle(key="teach_use_history_0").set_value(True).run()
    picker = at.multiselect(key="teach_history_pick_0")
    assert len(picker.options) == 2  # not the one set aside
    picker.set_value(picker.options).run()
    assert store.delete([rows[1]]) == 1  # in another tab
    button(at, "Add them").click().run()

    assert not at.exception
    assert [m.value for m in at.markdown if "photo" in m.value] == ["**1 photo**", "**0 photos**"]
    assert [w.value for w in at.warning] == [
        "Not taken: 1 of 2.\n\n1 deleted or set aside as no usable photo since."
    ]
    (added,) = at.session_state["teach"].classes[0].added.values()
    assert (added.name, added.data) == (f"history #{rows[0]} (cat 0.jpg)", kept)


def test_the_history_picker_leaves_out_every_row_of_a_photo_set_aside_and_keeps_the_limit(
    monkeypatch,
):
    """A photo someone said is no use under one model is not offered under another (nor
    added, when said after it was offered), the picker looks past newer rows set aside to
    fill its choices, and "Add them" takes no more than one model's limit of photos."""
    import hashlib

    from classifier import images
    from tests.helpers import make_record, ranked

    store = own.store()
    cat = images.decode_image((EXAMPLES / "cat.jpg").read_bytes()).image

    def add(name: str, model: str = "efficientnet_lite0") -> int:
        digest = hashlib.sha256(name.encode()).hexdigest()
        picture = cat.copy()
        picture.paste((int(digest[:2], 16), 0, 0), (0, 0, 40, 40))  # a photo of its own
        return store.add(make_record(file_name=name, sha256=digest, model=model,
                                     top_k=ranked("tabby cat", 0.9),
                                     thumbnail=images.make_thumbnail(picture)))  # fmt: skip

    usable = [add(f"usable {i}.jpg") for i in range(4)]
    under_one = add("blurred.jpg")  # its photo is set aside under the other model
    assert store.set_feedback(add("blurred.jpg", model="mobilenet_v2"), "unusable")
    for i in range(50):  # newer than all of them, and more than the picker offers at once
        assert store.set_feedback(add(f"dark {i}.jpg"), "unusable")
    monkeypatch.setenv("CLASSIFIER_TEACH_MAX_PHOTOS", "2")
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.toggle(key="teach_use_history_0").set_value(True).run()
    picker = at.multiselect(key="teach_history_pick_0")

    assert set(picker.options) == {f"#{i} · usable {n}.jpg · tabby cat"
                                   for n, i in enumerate(usable)}  # fmt: skip
    assert f"#{under_one} · blurred.jpg · tabby cat" not in picker.options
    picker.set_value(picker.options).run()
    # said to be no use under the other model while the picker showed it, in another tab
    assert store.set_feedback(add("usable 0.jpg", model="mobilenet_v2"), "unusable")
    button(at, "Add them").click().run()
    assert not at.exception
    assert [m.value for m in at.markdown if "photo" in m.value] == ["**2 photos**", "**0 photos**"]
    assert [w.value for w in at.warning] == [
        "Not taken: 2 of 4.\n\n1 deleted or set aside as no usable photo since.\n\n"
        "1: past the limit of 2 photos for one model."
    ]
    names = {p.name for p in at.session_state["teach"].classes[0].added.values()}
    assert f"history #{usable[0]} (usable 0.jpg)" not in names


def test_the_models_page_lists_a_taught_model_with_its_accuracy_and_download():
    teach.save("Made up", teach.train(made_up_examples()))
    at = app().run()
    at.switch_page("pages/models.py").run()
    assert not at.exception
    yours = at.dataframe[1].value
    assert yours["name"].tolist() == ["Made up"]
    assert yours["preprocessing"].tolist() == ["as EfficientNet-Lite0"]
    assert yours["source"].tolist() == ["Taught from 36 photos on EfficientNet-Lite0"]
    assert any(
        c.value == "Taught from 36 photos on EfficientNet-Lite0; cross-validated accuracy "
        "100%. Retrain it on the Teach page."
        for c in at.caption
    )
    assert at.button(key="prepare_download_Made up").label == "Prepare a download"


@pytest.mark.slow
def test_photos_taken_for_another_class_are_shown_with_what_they_were_taken_for(image_folder):
    _, photos = image_folder
    mixed = [*photos["Cat"][:3], *photos["Coffee"][:3]]  # both classes hold the same kinds
    other = [*photos["Cat"][3:6], *photos["Coffee"][3:6]]
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.text_input(key="teach_name_0").set_value("Left")
    at.text_input(key="teach_name_1").set_value("Right")
    at.file_uploader(key="teach_upload_0").set_value(
        [(f"left{i}.jpg", data, "image/jpeg") for i, data in enumerate(mixed)]
    ).run()
    at.file_uploader(key="teach_upload_1").set_value(
        [(f"right{i}.jpg", data, "image/jpeg") for i, data in enumerate(other)]
    ).run()
    button(at, "Train").click().run()
    assert not at.exception and not at.error
    accuracy = int(at.metric[0].value.rstrip("%"))
    assert accuracy < 100
    (heading,) = [m.value for m in at.markdown if m.value.startswith("**Taken for another")]
    mistakes = int(heading.split("(")[1].rstrip(")*"))
    assert mistakes == round(12 * (100 - accuracy) / 100)
    captions = [c for element in at.get("image") for c in element.proto.imgs if c.caption]
    assert len(captions) == mistakes
    pattern = r"(left|right)\d\.jpg: (Left, taken for Right|Right, taken for Left)"
    assert all(re.fullmatch(pattern, c.caption) for c in captions), captions


def test_the_teach_page_refuses_files_over_the_size_limit_as_they_arrive(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_MAX_BYTES", str(30_000))
    at = app().run()
    at.switch_page("pages/teach.py").run()
    small = (EXAMPLES / "cat.jpg").read_bytes()
    assert len(small) < 30_000
    big = (EXAMPLES / "coffee.jpg").read_bytes()
    assert len(big) > 30_000
    at.file_uploader(key="teach_upload_0").set_value(
        [("cat.jpg", small, "image/jpeg"), ("coffee.jpg", big, "image/jpeg")]
    ).run()
    assert not at.exception
    assert next(m.value for m in at.markdown if "photo" in m.value) == "**1 photo**"
    assert at.warning[0].value.startswith("Not taken: 1 of 2 files.\n\ncoffee.jpg: Over ")


def test_the_photo_count_is_of_readable_photos_and_the_others_are_named_with_why():
    at = app().run()
    at.switch_page("pages/teach.py").run()
    cat = (EXAMPLES / "cat.jpg").read_bytes()
    at.file_uploader(key="teach_upload_0").set_value(
        [
            ("cat.jpg", cat, "image/jpeg"),
            ("cut.jpg", cat[: len(cat) // 2], "image/jpeg"),
            ("notes.jpg", b"a shopping list, not a picture", "image/jpeg"),
            ("empty.jpg", b"", "image/jpeg"),
        ]
    ).run()
    assert not at.exception
    assert next(m.value for m in at.markdown if "photo" in m.value) == "**1 photo**"
    (warning,) = at.warning
    assert warning.value.split("\n\n") == [
        "Not taken: 3 of 4 files.",
        "cut.jpg: This JPEG file is incomplete or damaged; try saving or downloading it again.",
        "notes.jpg: This file is not a picture we can read (detected\\: text). "
        "Accepted\\: PNG, JPEG, WebP, BMP, GIF, TIFF, HEIC.",
        "empty.jpg: The file is empty.",
    ]


def two_classes(name: str, *, spread: float | None) -> teach.Taught:
    """Keep a taught model of two classes that overlap (normal noise of this spread around
    a mean each; None: pure noise), so that some photos are taken for the other class in
    cross-validation, and return its training."""
    import numpy as np

    rng = np.random.default_rng(5)
    if spread is None:
        vectors = rng.uniform(0, 1, (20, 16))
    else:
        means = rng.uniform(0, 1, (2, 16))
        vectors = np.concatenate(
            [np.maximum(mean + rng.normal(0, spread, (10, 16)), 0) for mean in means]
        )
    examples = teach.Examples(
        LITE0,
        vectors.astype(np.float32),
        tuple(["Left"] * 10 + ["Right"] * 10),
        tuple(f"p{i}.jpg" for i in range(20)),
        tuple(f"{i:064x}" for i in range(20)),
    )
    taught = teach.train(examples)
    teach.save(name, taught)
    return taught


def retrain(name: str):
    """Open the Teach page, start from a kept model and train it again (no photo is new)."""
    at = app().run()
    at.switch_page("pages/teach.py").run()
    at.selectbox(key="teach_start").set_value(name).run()
    button(at, "Train").click().run()
    assert not at.exception and not at.error
    return at


def test_after_training_its_threshold_and_a_class_of_none_of_them_are_offered(monkeypatch):
    expected = teach.unsure_threshold(two_classes("Noise", spread=0.8))
    assert expected.value is not None and expected.wrong_below == expected.wrong
    monkeypatch.setattr(teach, "extractor_ready", lambda base: True)  # no photo is new
    at = retrain("Noise")
    assert "When it is unsure" in [h.value for h in at.subheader]
    sure = f"{expected.value:.0%}"
    (sentence,) = [m.value for m in at.markdown if m.value.startswith("Its wrong answers")]
    at_most = re.fullmatch(
        rf"Its wrong answers in cross-validation were at most (\d+)% sure: with {sure} as its "
        rf"threshold they are marked unsure, and {expected.right_kept} of its "
        rf"{expected.right} right answers stay sure\.",
        sentence,
    )
    assert at_most, sentence
    assert expected.wrong_at_most <= int(at_most[1]) / 100 < expected.value
    (suggestion,) = at.info
    assert suggestion.value.startswith("It always answers with one of its 2 classes, even for")
    assert "add a class named e.g. “Something else”" in suggestion.value
    toggle = at.toggle(key="teach_use_threshold")
    assert toggle.label == f"Mark its answers below {sure} as unsure" and toggle.value

    button(at, "Save model").click().run()
    assert not at.exception and not at.error
    (notice,) = at.success
    assert notice.value == (
        f"Saved Noise. It is now the model picked on the Classify page, with {sure} as its "
        "confidence threshold."
    )
    (link,) = at.get("page_link")
    assert link.value == "Classify a photo with it"
    assert link.proto.page_script_hash == calc_hash("classify")  # the page at /classify
    (model,) = models.all_models()
    assert model.details.threshold == expected.value

    at.switch_page("pages/classify.py").run()
    assert at.sidebar.selectbox(key="model").value == "Noise"
    assert at.sidebar.slider(key="threshold").value == pytest.approx(expected.value)
    captions = [c.value for c in at.sidebar.caption]
    assert (
        f"{sure} is Noise's own, from its cross-validation; another model gives back the "
        "one set before." in captions
    ), captions
    # Another model gives back the threshold set before; picking Noise again shows its own.
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    assert at.sidebar.slider(key="threshold").value == pytest.approx(0.25)
    at.sidebar.selectbox(key="model").set_value("Noise").run()
    assert at.sidebar.slider(key="threshold").value == pytest.approx(expected.value)


def test_a_threshold_turned_off_is_not_kept_nor_set(monkeypatch):
    two_classes("Noise", spread=0.8)
    monkeypatch.setattr(teach, "extractor_ready", lambda base: True)
    at = retrain("Noise")
    at.toggle(key="teach_use_threshold").set_value(False).run()
    button(at, "Save model").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value == "Saved Noise. It is now the model picked on the Classify page."
    assert models.all_models()[0].details.threshold is None
    at.switch_page("pages/classify.py").run()
    assert at.sidebar.slider(key="threshold").value == pytest.approx(0.25)


def test_wrong_answers_as_sure_as_right_ones_set_no_threshold(monkeypatch):
    expected = teach.unsure_threshold(two_classes("Noise", spread=None))
    assert expected.value is None
    monkeypatch.setattr(teach, "extractor_ready", lambda base: True)
    at = retrain("Noise")
    sure = f"{-int(-expected.wrong_at_most * 100 // 1)}%"
    assert (
        f"Its wrong answers in cross-validation were up to {sure} sure, as sure as most of its "
        "right answers: no threshold marks them unsure and leaves its right answers sure."
    ) in [m.value for m in at.markdown]
    assert "teach_use_threshold" not in [t.key for t in at.toggle]
    assert at.info[0].value.startswith("It always answers with one of its 2 classes")
