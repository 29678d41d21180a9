"""Classify: drop photos or take one, and see what the network says is in them."""

import dataclasses

import streamlit as st

from classifier import models
from ui import entry, resources, results, saving, sidebar, uploads
from ui.columns import plain

entry.through_the_entry()  # a fresh server's first request may bypass streamlit_app.py

choices = sidebar.settings_sidebar(compare=True)
st.title("What's in this photo?")
st.caption(
    "Drop a photo and a pretrained ImageNet network names what it sees "
    "among 1,000 everyday classes."
    if choices.model in models.MODELS
    else f"Drop a photo and {plain(choices.model)}, your own model, says which of its classes "
    "it shows."
)


@st.fragment
def classify_pictures(choices: sidebar.Choices) -> None:
    """The inputs and the answers. A fragment: dropping a photo, picking an example or
    rating an answer reruns only this part, not the sidebar and the rest of the page."""
    pictures = uploads.collect_uploads()
    if not pictures:
        st.info("Drop one or more photos above, take one with the camera, or pick an example.")
        results.warm_up()  # the chart's code loads while the person picks a photo
        return
    # The model is resolved once per run (its engine opened once per process), then passed
    # down to classifying, saving and "Where it looked".
    loaded = resources.load_model(choices.model, choices.own)
    if loaded is None:  # it said why
        return
    choices = dataclasses.replace(choices, loaded=loaded)
    outcomes = saving.classify_uploads(pictures, loaded)
    others = None  # a second model's answers, only when one is picked to compare with
    if choices.compare is not None:
        other = resources.load_model(choices.compare, choices.own)
        if other is not None:  # else it said why, and the first model's answers still show
            others = saving.classify_uploads(pictures, other)
    # Each answer is saved to the history as it is drawn, after its chart and table.
    if len(pictures) > 1:
        results.show_many(results.answered(pictures, outcomes, others), choices)
    else:
        results.show_one(pictures[0], outcomes[0], others[0] if others else None, choices)


classify_pictures(choices)
