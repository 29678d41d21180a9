"""Teach: your own classes from a few photos each, trained in seconds.

The classes and the last training are kept in the session (`teach_view.TeachSession`), so
they survive a visit to another page. The Review page opens it with corrected predictions
(`teach_view.start_from_history`): one class per corrected label, with those photos.
"""

import streamlit as st

from classifier import teach
from classifier.config import get_settings
from ui import account, entry, teach_view

entry.through_the_entry()  # a fresh server's first request may bypass streamlit_app.py

account.account_sidebar(account.visitor())
st.title("Teach a model your own classes")
st.caption(
    "Name a few classes, give each a handful of photos, and train: a built-in network "
    "describes each photo and a small classifier learns your classes from those "
    "descriptions, in seconds. The saved model works like any other: pick it in the "
    "Classify page's sidebar, see it in the history, download it."
)
if not get_settings().allow_model_uploads:
    st.info(
        "Teaching models is turned off on this server (CLASSIFIER_ALLOW_MODEL_UPLOADS=0).",
        icon=":material/block:",
    )
    st.stop()

session = teach_view.session()
if notice := st.session_state.pop("teach_notice", None):  # Markdown, its name made plain
    st.success(notice, icon=":material/check_circle:")
teach_view.start_from(session)  # or retrain a model taught before
base = teach_view.base_picker(session)
if base is None:  # it said why
    st.stop()
teach_view.history_note(session)  # the classes handed over from the history, if any

for taught in list(session.classes):
    teach_view.class_card(session, taught)
st.button(
    "Add a class",
    icon=":material/add:",
    disabled=len(session.classes) >= teach.MAX_CLASSES,
    on_click=teach_view.add_class,
)
st.divider()
teach_view.train_section(session, base)
