"""A prediction opened by its link (`/history?prediction=ID`): what it shows of the saved row."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from classifier.history import HistoryStore
from classifier.labels import TopClass
from tests.helpers import app_test, make_record


@pytest.fixture
def store(tmp_path, monkeypatch, lite0):
    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("CLASSIFIER_DATABASE_URL", url)
    st.cache_data.clear()
    store = HistoryStore(url)
    yield store
    store.dispose()


def opened(public_id: str) -> AppTest:
    at = app_test(300)
    at.query_params["prediction"] = public_id
    return at.run().switch_page("pages/history.py").run()


@pytest.mark.parametrize(
    ("correction", "said"),
    [
        ("lynx", "Saved: wrong, it is lynx."),
        ("the neighbour's cat", "your own name, not one of the model's 1,000 classes"),
    ],
    ids=["a class", "their own name"],
)
def test_the_correction_box_shows_the_saved_correction(store, correction, said):
    top = (TopClass("tabby cat", 281, 0.8), TopClass("tiger cat", 282, 0.1))
    row = store.add(make_record(model="efficientnet_lite0", top_k=top))
    store.set_feedback(row, "wrong", correction)
    at = opened(store.get(row).public_id)
    assert not at.exception
    assert at.selectbox(key=f"correction_{row}").value == correction
    assert any(said in c.value.replace("\\", "") for c in at.caption)
    assert not at.button_group  # nothing to choose again: it is what was saved
    assert any("You said it is wrong" in m.value for m in at.markdown)
