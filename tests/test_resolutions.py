"""The Classify page resolves the picked model once per run and passes it down.

With a model someone added picked in the sidebar, one upload and one slider move each
ask the database at most once (the sidebar's list of the visitor's models, which also
resolves the picked one) and resolve the model's name at most once. Counted with
wrappers around the registry's queries and `models.choose`, under AppTest.
"""

from __future__ import annotations

from collections import Counter

import pytest

from classifier import models
from classifier.history import registry
from classifier.models import catalog
from tests.helpers import app_test

LABELS = "\n".join(f"class {i}" for i in range(1000)).encode()
QUERIES = ("get_model", "list_models", "model_data")


@pytest.fixture
def counted(monkeypatch) -> Counter:
    counts: Counter = Counter()

    def counting(kind: str, function):
        def wrapper(*args, **kwargs):
            counts[kind] += 1
            return function(*args, **kwargs)

        return wrapper

    for name in QUERIES:
        monkeypatch.setattr(registry, name, counting("registry queries", getattr(registry, name)))
    resolving = counting("name resolutions", catalog.choose)
    monkeypatch.setattr(catalog, "choose", resolving)
    monkeypatch.setattr(models, "choose", resolving)
    return counts


def test_an_upload_and_a_slider_move_resolve_an_added_model_once(
    own_database, lite0_tflite, coffee_jpeg, counted
):
    import streamlit as st

    models.save("Lite copy", models.read_model(lite0_tflite, LABELS), "raw")
    st.cache_data.clear()
    at = app_test(300).run()
    at.sidebar.selectbox(key="model").set_value("Lite copy").run()
    assert not at.exception

    counted.clear()
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    assert not at.exception
    assert any("class " in h.value for h in at.markdown if "·" in h.value) or at.get(
        "vega_lite_chart"
    ), "the added model answered"
    upload = dict(counted)

    counted.clear()
    at.sidebar.slider(key="top_k").set_value(3).run()
    assert not at.exception
    slider = dict(counted)

    assert upload["registry queries"] <= 1 and upload["name resolutions"] <= 1, upload
    assert slider["registry queries"] <= 1 and slider["name resolutions"] <= 1, slider
    assert upload["name resolutions"] == 1  # the counting itself works


def test_an_upload_in_a_fragment_rerun_looks_a_removed_model_up_again(
    own_database, lite0_tflite, coffee_jpeg, monkeypatch
):
    """A fragment's rerun (an upload, in a browser) gets the sidebar's list of the last full
    run; a model removed since (here on another server: its row, not this server's file)
    must not answer from that list."""
    import streamlit as st

    from classifier.models import own
    from ui import resources

    models.save("Lite copy", models.read_model(lite0_tflite, LABELS), "raw")
    listed = resources.own_models  # the sidebar's list, as it was before the removal
    stale = {model.name: model for model in models.all_models()}
    monkeypatch.setattr(resources, "own_models", lambda: stale)
    st.cache_data.clear()
    at = app_test().run()
    at.sidebar.selectbox(key="model").set_value("Lite copy").run()
    assert not at.exception and listed is not resources.own_models

    registry.remove_model(own.store(), "Lite copy")  # another server removes it
    monkeypatch.setattr(resources, "in_fragment_rerun", lambda: True)
    at.file_uploader(key="uploads").set_value(("coffee.jpg", coffee_jpeg, "image/jpeg")).run()
    assert not at.exception
    assert any("is not here any more" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.get("vega_lite_chart")  # nothing answered
