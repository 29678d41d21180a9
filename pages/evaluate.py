"""Evaluate: how right models are on a labelled set, where they go wrong, and which photos'
labels look wrong; two models side by side.

`?run=ID` opens one evaluation.
"""

import streamlit as st

from ui import account, batch_view, entry, evaluate_view, history_view, resources, sidebar

entry.through_the_entry()  # a fresh server's first request may bypass streamlit_app.py

choices = sidebar.settings_sidebar()
st.title("Evaluate")
st.caption(
    "How right is a model on your photos? Give it a labelled set (a folder per class) and "
    "read its accuracy, confusion matrix, most confident mistakes and the photos whose label "
    "looks wrong. With two models, see which is better and where they differ."
)
person = account.visitor()
with history_view.database_errors():
    store = resources.store()
if store is None:
    if person.mode == "off":
        st.info(
            "History is off on this server, and evaluations are kept there, so none can run "
            "here. The command line evaluates a folder: classifier evaluate DIR --model NAME.",
            icon=":material/history_toggle_off:",
        )
    else:
        history_view.no_history(person)
    st.stop()
history_view.read_only_notice(store)
if store.read_only:
    st.stop()
batch_view.runner()

if (run_id := st.query_params.get("run")) is not None:
    if st.button("All evaluations", icon=":material/arrow_back:"):
        del st.query_params["run"]
        st.rerun()
    with history_view.database_errors():
        evaluate_view.run_page(store, run_id)
    st.stop()

st.subheader("New evaluation")
with history_view.database_errors():
    evaluate_view.new_evaluation(store, choices)
st.subheader("Your evaluations" if person.mode == "private" else "Evaluations")
with history_view.database_errors():
    evaluate_view.runs_list(store)
