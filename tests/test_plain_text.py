"""What a person chose (model, class and file names, corrections, the files in an added zip)
shows as written wherever Streamlit renders Markdown, driven with AppTest.

In a shared history (and for admins) one person's names reach other people's pages: a
name like "[Verify your account](http://...)" must not become a live link there, nor
"![x](http://...)" an image fetched from elsewhere. Each test reads the value an element
sends to the browser and parses it with markdown-it, as
tests/test_app.py::test_names_people_chose_show_as_written_not_as_markdown does.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import streamlit as st
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from classifier import models, teach
from classifier.history import HistoryStore, registry
from classifier.labels import TopClass
from classifier.models import own
from tests.conftest import ROOT
from tests.helpers import app_test, make_record
from ui.columns import WORD_JOINER

APP = str(ROOT / "streamlit_app.py")
HOSTILE = (
    "**bold** [Verify your account](http://evil.example/) ![x](http://evil.example/x.png) "
    "<b>html</b>"
)
MODEL_NAME = "**b** [Verify](http://ev.il/) ![x](http://ev.il/x) <b>h</b>"  # 60 at most
# A zip member's name holds no "/" (that would be a folder), so its links do without.
MEMBER = "**bold** [Verify your account](https:evil.example) ![x](https:evil.example) <b>h</b>"
# What markdown-it makes of Markdown that is more than text.
MARKUP = {
    "link_open",
    "image",
    "em_open",
    "strong_open",
    "s_open",
    "html_inline",
    "html_block",
    "heading_open",
    "bullet_list_open",
    "ordered_list_open",
    "blockquote_open",
    "code_inline",
}
MARKDOWN = MarkdownIt("commonmark").enable("strikethrough")

pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)


@pytest.fixture(autouse=True)
def no_cached_answers(lite0):
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def markup_in(markdown: str) -> set[str]:
    """Return the kinds of markup (links, images, emphasis, HTML, ...) Markdown holds."""
    found, tokens = set(), MARKDOWN.parse(markdown)
    while tokens:
        token = tokens.pop()
        found.add(token.type)
        tokens.extend(token.children or [])
    return found & MARKUP


def as_html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def assert_shown_as_written(markdown: str, *names: str) -> None:
    """The element's Markdown holds no markup, and each name shows in it as written."""
    assert not markup_in(markdown), markdown
    shown = MARKDOWN.render(markdown).replace(WORD_JOINER, "")  # web addresses kept text
    for name in names:
        assert as_html_text(name) in shown, (name, shown)


def app() -> AppTest:
    return app_test(300)


def with_text(elements, text: str) -> str:
    """Return the one element's value that holds `text` (escaped or not, it is there)."""
    [value] = [e.value for e in elements if text in e.value.replace("\\", "")]
    return value


def image_captions(at: AppTest) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


# --- ui.columns.plain, which every place below uses -------------------------------------


@pytest.mark.parametrize(
    "name", ["a\n# Heading", "a\n  - item\n3. third\n> quoted", "first line\n===", "a\r\n+ item"]
)
def test_line_breaks_in_names_start_no_heading_list_or_quote(name):
    """A zip member's name may hold line breaks: each line's start is escaped too."""
    from ui.columns import plain

    shown = MARKDOWN.render(plain(name))
    assert not markup_in(plain(name)), shown
    for line in name.splitlines():  # (a paragraph's lines lose their leading spaces)
        assert as_html_text(line.strip()) in shown


def test_an_underscore_between_letters_stays_and_no_other_makes_emphasis():
    """File names keep their Markdown as written (model_unquant.tflite): an underscore
    between two letters or digits can neither open nor close emphasis."""
    from ui.columns import plain

    assert plain("model_unquant.tflite") == "model_unquant.tflite"
    assert plain("é_ü 1_2") == "é_ü 1_2"
    for name in ("x _y a_*b", "_a_ and __b__", "snake_case_ _x", "a_ b _c", "a__b__c"):
        assert not markup_in(plain(name)), name
        assert MARKDOWN.render(plain(name)) == f"<p>{name}</p>\n"


# --- The Models page -----------------------------------------------------------------------


def test_the_models_page_shows_a_models_name_and_source_as_written():
    details = {"kind": "taught", "class_names": ["a", "b"], "base": "efficientnet_lite0"}
    details.update(size=224, input_dtype="float32", accuracy=0.5)
    registry.add_model(own.store(), HOSTILE, HOSTILE, "ab" * 32, details, b"x")
    at = app().run()
    at.switch_page("pages/models.py").run()

    [label] = [e.label for e in at.expander if "Verify" in e.label]
    assert_shown_as_written(label, HOSTILE)
    assert_shown_as_written(with_text(at.caption, "Retrain it on the Teach page"), HOSTILE)

    at.button(key=f"remove_{HOSTILE}").click().run()
    assert_shown_as_written(with_text(at.warning, "Its predictions stay"), HOSTILE)
    at.button(key=f"remove_yes_{HOSTILE}").click().run()
    assert not at.exception
    assert not models.all_models()
    assert_shown_as_written(with_text(at.success, "Removed"), HOSTILE)


def candidate(source: str) -> models.Candidate:
    details = {"size": 224, "input_dtype": "float32", "outputs": "probabilities", "classes": 2}
    return models.Candidate(source, b"x", ("a", "b"), details, "minus_one_to_one")


def test_adding_a_model_shows_the_zip_members_and_the_name_as_written(monkeypatch):
    """The zip's member names in what was found (or why not), the name in the notices."""
    found = iter(
        [
            models.ModelFileError(
                f"This zip holds 2 models ({MEMBER} 1.tflite, {MEMBER} 2.tflite); "
                "add them one at a time."
            ),
            candidate(f"zip ({MEMBER}.tflite)"),
            candidate(f"zip ({MEMBER}.tflite)"),
        ]
    )

    def read_model(data, labels=None):  # as classifier.models.upload describes a zip
        outcome = next(found)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(models, "read_model", read_model)
    at = app().run()
    at.switch_page("pages/models.py").run()
    at.file_uploader(key="add_model_0").set_value(("two.zip", b"PK", "application/zip")).run()
    assert_shown_as_written(with_text(at.error, "add them one at a time"), MEMBER)

    at.file_uploader(key="add_model_0").set_value(("one.zip", b"PK1", "application/zip")).run()
    assert_shown_as_written(with_text(at.success, "2 classes, input 224×224"), MEMBER)
    at.text_input(key="add_name_0").set_value(MODEL_NAME).run()
    next(b for b in at.button if b.label == "Add model").click().run()
    assert not at.exception
    assert [m.name for m in models.all_models()] == [MODEL_NAME]
    assert_shown_as_written(with_text(at.success, "picked on the Classify page"), MODEL_NAME)

    # The same name again: taken.
    at.file_uploader(key="add_model_1").set_value(("one.zip", b"PK2", "application/zip")).run()
    at.text_input(key="add_name_1").set_value(MODEL_NAME).run()
    next(b for b in at.button if b.label == "Add model").click().run()
    assert_shown_as_written(with_text(at.error, "exists already"), MODEL_NAME)


# --- The Classify page: an added model's file, its classes, a correction ----------------


@pytest.fixture
def hostile_model(lite0) -> list[str]:
    """A model someone added (EfficientNet-Lite0's LiteRT file) whose zip member and class
    names are hostile; return its class names."""
    data = models.cached_engine_path("efficientnet_lite0").read_bytes()
    classes = [f"{HOSTILE} {i}" for i in range(1000)]
    details = {"kind": "added", "class_names": classes, "size": 224, "input_dtype": "float32"}
    details.update(scaling="minus_one_to_one", outputs="probabilities")
    source = f"zip ({MEMBER}.tflite)"
    sha256 = hashlib.sha256(data).hexdigest()
    registry.add_model(own.store(), MODEL_NAME, source, sha256, details, data)
    return classes


def classified(coffee_jpeg) -> AppTest:
    at = app().run()
    at.sidebar.selectbox(key="model").set_value(MODEL_NAME).run()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    assert not at.exception
    return at


def test_the_answer_names_the_added_zip_member_as_written(hostile_model, coffee_jpeg):
    at = classified(coffee_jpeg)

    origin = with_text(at.caption, "Added model: zip (")
    assert_shown_as_written(origin, MODEL_NAME, f"Added model: zip ({MEMBER}.tflite)")


def test_where_it_looked_names_a_class_as_written(hostile_model, coffee_jpeg):
    at = classified(coffee_jpeg)
    at.toggle(key=next(t.key for t in at.toggle if t.key.startswith("where_"))).set_value(True)
    at.run()
    assert not at.exception

    [caption] = [c for c in image_captions(at) if c.startswith("Where it looked for")]
    assert_shown_as_written(caption, HOSTILE)


def test_a_correction_to_one_of_the_models_classes_is_said_as_written(
    hostile_model, coffee_jpeg, tmp_path
):
    at = classified(coffee_jpeg)
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    [saved] = store.find()
    at.feedback(key=f"feedback_{saved.id}").set_value(0).run()
    at.selectbox(key=f"correction_{saved.id}").set_value(hostile_model[7]).run()
    assert store.get(saved.id).corrected_label == hostile_model[7]
    store.dispose()

    assert_shown_as_written(with_text(at.main.caption, "Saved: wrong, it is"), hostile_model[7])


def test_a_typed_correction_on_a_permalink_is_said_as_written(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    top = (TopClass("tabby cat", 281, 0.8), TopClass("tiger cat", 282, 0.1))
    row = store.add(make_record(model="efficientnet_lite0", top_k=top))
    store.set_feedback(row, "wrong", HOSTILE)
    public_id = store.get(row).public_id
    store.dispose()
    at = app()
    at.query_params["prediction"] = public_id
    at.run().switch_page("pages/history.py").run()
    assert not at.exception

    assert_shown_as_written(with_text(at.caption, "your own name"), HOSTILE)


# --- The Teach page -------------------------------------------------------------------------


def teach_page() -> AppTest:
    at = app().run()
    return at.switch_page("pages/teach.py").run()


def press(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def test_a_class_name_in_a_training_error_shows_as_written():
    at = teach_page()
    at.text_input(key="teach_name_0").set_value(HOSTILE)
    at.text_input(key="teach_name_1").set_value(HOSTILE).run()
    press(at, "Train")

    assert_shown_as_written(with_text(at.error, "Two classes are called"), HOSTILE)


def test_file_names_refused_or_unreadable_show_as_written(monkeypatch):
    monkeypatch.setenv("CLASSIFIER_MAX_BYTES", "1000")
    monkeypatch.setattr(teach, "extractor_ready", lambda base: True)  # nothing to prepare
    at = teach_page()
    at.text_input(key="teach_name_0").set_value(f"{HOSTILE} a")
    at.text_input(key="teach_name_1").set_value(f"{HOSTILE} b")
    # Class a: one file over the size limit and two that are no pictures (none taken);
    # class b: two photos and two that are no pictures.
    unreadable = [(f"{HOSTILE} {i}.jpg", b"not a picture %d" % i, "image/jpeg") for i in range(4)]
    at.file_uploader(key="teach_upload_0").set_value(
        [(f"{HOSTILE}.jpg", b"x" * 2000, "image/jpeg"), *unreadable[:2]]
    ).run()
    names = [f"{HOSTILE}.jpg", f"{HOSTILE} 0.jpg", f"{HOSTILE} 1.jpg"]
    assert_shown_as_written(with_text(at.warning, "Not taken: 3 of 3"), *names)

    photos = [(f"p{i}.png", tiny_png(i), "image/png") for i in range(2)]
    at.file_uploader(key="teach_upload_1").set_value([*photos, *unreadable[2:]]).run()
    skipped = with_text(at.warning, "Not taken: 2 of 4")
    assert_shown_as_written(skipped, f"{HOSTILE} 2.jpg", f"{HOSTILE} 3.jpg")
    press(at, "Train")
    assert not at.exception
    assert_shown_as_written(with_text(at.error, "has 0 photos"), f"{HOSTILE} a")


def tiny_png(shade: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (shade, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def test_retraining_shows_photo_and_class_names_and_the_models_name_as_written(monkeypatch):
    """A model taught before comes back with its photos' names and its classes; the ones
    taken for another class are listed, and saving it again names it."""
    rng = np.random.default_rng(3)
    labels = tuple([f"{HOSTILE} left"] * 10 + [f"{HOSTILE} right"] * 10)  # pure noise
    examples = teach.Examples(
        "efficientnet_lite0",
        rng.uniform(0, 1, (20, 16)).astype(np.float32),
        labels,
        tuple(f"{HOSTILE} {i}.jpg" for i in range(20)),
        tuple(f"{i:064x}" for i in range(20)),
    )
    teach.save(MODEL_NAME, teach.train(examples))
    monkeypatch.setattr(teach, "extractor_ready", lambda base: True)  # no photo is new
    at = teach_page()
    at.selectbox(key="teach_start").set_value(MODEL_NAME).run()
    press(at, "Train")
    assert not at.exception and not at.error

    mistakes = [c.value for c in at.caption if "taken for" in c.value.replace("\\", "")]
    assert mistakes  # noise: some photos are taken for the other class
    for caption in mistakes:
        assert_shown_as_written(caption, f"{HOSTILE} left", f"{HOSTILE} right", ".jpg")
    press(at, "Save model")
    assert not at.exception and not at.error
    assert_shown_as_written(with_text(at.success, "picked on the Classify page"), MODEL_NAME)
