"""Two models on the same photos (AppTest): "Compare with" in the sidebar, both answers side
by side for one photo and whether they agree, an agreement column for several."""

from __future__ import annotations

import hashlib

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from classifier import labels, models
from classifier.history import HistoryStore, registry
from classifier.models import own
from tests.conftest import EXAMPLES
from tests.helpers import CAT_CLASSES, app_test

pytestmark = pytest.mark.usefixtures("own_database")  # each test its own (conftest.py)

SHIFTED = "Shifted"  # EfficientNet-Lite0 with each class named as the next one: it disagrees


@pytest.fixture(autouse=True)
def no_cached_answers(lite0):
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def add_shifted(name: str, prefix: str = "") -> None:
    """Add a model: EfficientNet-Lite0's LiteRT file, every class named as the next ImageNet
    class (after a prefix), so it never names the same top class as EfficientNet-Lite0."""
    data = models.cached_engine_path("efficientnet_lite0").read_bytes()
    names = [prefix + label for label in labels.labels()]
    details = {
        "kind": "added",
        "class_names": [*names[1:], names[0]],
        "size": 224,
        "input_dtype": "float32",
        "scaling": "minus_one_to_one",
        "outputs": "probabilities",
    }
    sha256 = hashlib.sha256(data).hexdigest()
    registry.add_model(own.store(), name, "shifted.tflite", sha256, details, data)


@pytest.fixture
def shifted() -> None:
    add_shifted(SHIFTED)


def comparing(second: str | None) -> AppTest:
    at = app_test(300).run()
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    if second is not None:
        at.sidebar.selectbox(key="compare").set_value(second).run()
    return at


def bold(at: AppTest) -> list[str]:
    return [m.value for m in at.main.markdown if m.value.startswith("**")]


def test_nothing_to_compare_with_by_default_and_never_the_first_model():
    at = comparing(None)
    picker = at.sidebar.selectbox(key="compare")
    assert picker.value is None and picker.options[0] == "No second model"
    assert picker.proto.placeholder == "No second model"  # shown while nothing is picked
    assert "EfficientNet-Lite0" not in picker.options
    assert "MobileNet (unavailable)" in picker.options

    picker.set_value("mobilenet").run()
    at.sidebar.selectbox(key="model").set_value("mobilenet").run()  # the second one, now first
    assert at.sidebar.selectbox(key="compare").value is None
    assert not at.exception
    [told] = at.toast
    assert told.value == (
        "Compare with: MobileNet (unavailable) is the first model now, or gone; no second model."
    )


def test_two_models_on_an_example_photo_show_both_answers_and_that_they_agree():
    at = comparing("mobilenet")
    cat = (EXAMPLES / "cat.jpg").read_bytes()
    at.file_uploader(key="uploads").set_value(("cat.jpg", cat, "image/jpeg")).run()
    assert not at.exception
    first, second = (h.value for h in at.subheader)
    assert first == second and first.split(" · ")[0] in CAT_CLASSES
    assert bold(at) == ["**EfficientNet-Lite0**", "**MobileNet (unavailable)**"]
    assert len(at.get("vega_lite_chart")) == 2 and len(at.table) == 2
    [agree] = at.success
    label = first.split(" · ")[0]
    assert agree.value == (
        f"Both models agree: {label}. On this server both are answered by EfficientNet-Lite0."
    )


def test_two_models_that_disagree_say_so_and_only_the_first_answer_is_saved(
    shifted, coffee_jpeg, tmp_path
):
    at = comparing(SHIFTED)
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    assert not at.exception
    first, second = (h.value.split(" · ")[0] for h in at.subheader)
    names = labels.labels()
    assert first == "espresso" and second == names[(names.index("espresso") + 1) % 1000]
    assert bold(at) == ["**EfficientNet-Lite0**", f"**{SHIFTED} (added)**"]
    [differ] = at.warning
    assert (
        differ.value.startswith("The models disagree: EfficientNet-Lite0 says espresso (9")
        and f", {SHIFTED} (added) says {second} (9" in differ.value
    )
    assert "Only EfficientNet-Lite0's answer is saved to the history." in [
        c.value for c in at.main.caption
    ]
    store = HistoryStore(f"sqlite:///{tmp_path / 'history.db'}")
    [saved] = store.find()
    assert saved.model == "efficientnet_lite0" and saved.top_k[0].label == "espresso"
    store.dispose()


def test_several_photos_get_an_agreement_column_and_a_disagree_filter(
    shifted, chelsea_png, coffee_jpeg
):
    at = comparing("mobilenet")
    photos = [("chelsea.png", chelsea_png, "image/png"), ("coffee.jpg", coffee_jpeg, "image/jpeg"),
              ("notes.png", b"not a picture\n", "image/png")]  # fmt: skip
    at.file_uploader(key="uploads").set_value(photos).run()
    table = at.dataframe[0].value
    assert list(table["agree"]) == ["yes", "yes", ""]
    assert list(table["other top-1"]) == [*table["top-1"][:2], ""]

    at.sidebar.selectbox(key="compare").set_value(SHIFTED).run()
    table = at.dataframe[0].value
    assert list(table["agree"]) == ["no", "no", ""]
    assert table["other top-1"][1] != "espresso"
    titles = [e.label for e in at.expander if e.label[0].isdigit()]
    assert titles[1].startswith("2. coffee.jpg: espresso · ")
    assert titles[1].endswith(" · models disagree")
    shown = at.button_group(key="results_shown")
    assert shown.options[-1] == "Disagree (2)"
    assert any("Other: Shifted (added)." in c.value for c in at.main.caption)
    assert len(at.get("vega_lite_chart")) == 4  # each photo's two charts, side by side


def test_without_a_second_model_several_photos_have_no_agreement_column(chelsea_png, coffee_jpeg):
    at = comparing(None)
    photos = [("chelsea.png", chelsea_png, "image/png"), ("coffee.jpg", coffee_jpeg, "image/jpeg")]
    at.file_uploader(key="uploads").set_value(photos).run()
    table = at.dataframe[0].value
    assert list(table.columns) == ["#", "picture", "file", "top-1", "confidence", "note"]
    assert at.button_group(key="results_shown").options == ["All (2)", "Unsure (0)", "Failed (0)"]


def test_the_models_and_classes_compared_show_as_written(coffee_jpeg):
    from tests.test_plain_text import HOSTILE, MODEL_NAME, assert_shown_as_written

    add_shifted(MODEL_NAME, prefix=f"{HOSTILE} ")
    at = comparing(MODEL_NAME)
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    assert not at.exception
    [differ] = at.warning
    assert_shown_as_written(differ.value, MODEL_NAME, HOSTILE)
    assert_shown_as_written(bold(at)[1].strip("*"), MODEL_NAME)
    assert_shown_as_written(at.subheader[1].value, HOSTILE)
