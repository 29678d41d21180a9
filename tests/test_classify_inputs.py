"""The Classify page's inputs, with AppTest: the example pictures and the uploader's limit."""

from __future__ import annotations

import pytest
import streamlit as st

from tests.helpers import app_test


@pytest.fixture(autouse=True)
def fresh_app_state(tmp_path, monkeypatch, lite0):
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", f"sqlite:///{tmp_path / 'history.db'}")
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def test_clicking_an_example_picture_classifies_it_and_a_second_click_removes_it():
    at = app_test(300).run()
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    assert not at.get("button_group")  # no separate row of pills
    names = ("cat", "coffee", "rocket", "flower", "palace")
    assert [at.button(key=f"example_{n}").label for n in names] == [
        "Cat", "Coffee", "Rocket", "Flower", "Palace"
    ]  # fmt: skip

    at.button(key="example_coffee").click().run()
    assert not at.exception
    assert at.subheader[0].value.startswith("espresso")
    assert at.button(key="example_coffee").proto.type == "primary"  # shown as picked
    assert at.button(key="example_cat").proto.type == "secondary"

    at.button(key="example_rocket").click().run()
    assert at.subheader[0].value.split(" · ")[0] != "espresso"  # the rocket replaced it
    at.button(key="example_rocket").click().run()
    assert not at.subheader  # removed: nothing to classify
    assert all(at.button(key=f"example_{n}").proto.type == "secondary" for n in ("cat", "rocket"))


def test_a_photo_of_ones_own_puts_the_example_away(coffee_jpeg):
    at = app_test(300).run()
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    at.button(key="example_cat").click().run()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    assert not at.exception
    assert at.subheader[0].value.startswith("espresso")  # the only picture, not a section of two
    assert at.button(key="example_cat").proto.type == "secondary"


@pytest.mark.parametrize(("example", "answer"), [("flower", "daisy"), ("palace", "palace")])
def test_the_varied_examples_are_named_for_what_they_show(example, answer):
    at = app_test(300).run()
    at.sidebar.selectbox(key="model").set_value("efficientnet_lite0").run()
    at.button(key=f"example_{example}").click().run()
    assert not at.exception
    assert at.subheader[0].value.split(" · ")[0] == answer
