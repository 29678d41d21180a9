"""Batch: classify a folder or a zip of photos in the background, and read the results.

`?job=ID` opens one job's results.
"""

import streamlit as st

from classifier import jobs
from ui import account, batch_view, entry, history_view, resources, sidebar
from ui.columns import plain

entry.through_the_entry()  # a fresh server's first request may bypass streamlit_app.py

choices = sidebar.settings_sidebar()
st.title("Batch")
st.caption(
    "Classify a whole folder or zip of photos on the server. The job goes on when you close "
    "this tab; its answers land in your history, and its results download as CSV or JSON."
)
person = account.visitor()
with history_view.database_errors():
    store = resources.store()
if store is None:
    if person.mode == "off":
        st.info(
            "History is off on this server, and a batch job keeps its answers there, so none "
            "can run here. The Classify page takes several photos at once.",
            icon=":material/history_toggle_off:",
        )
    else:
        history_view.no_history(person)
    st.stop()
history_view.read_only_notice(store)
if store.read_only:
    st.stop()
batch_view.runner()

if (public_id := st.query_params.get("job")) is not None:
    with history_view.database_errors():
        job = jobs.get(store, public_id)
    if job is None:
        st.error("No batch job has this id among yours.", icon=":material/search_off:")
    else:
        if st.button("All jobs", icon=":material/arrow_back:"):
            del st.query_params["job"]
            st.rerun()
        with history_view.database_errors():
            batch_view.results(store, job)
    st.stop()

if (started := st.session_state.pop("batch_started", None)) is not None:
    st.success("The job has started. It runs on the server: you may close this tab.",
               icon=":material/check_circle:")  # fmt: skip
st.subheader("New job")
st.caption(f"With {plain(sidebar.model_title(choices.model))}, the model picked in the sidebar: "
           "pick a folder of photos (its subfolders too) or a zip.")  # fmt: skip
with history_view.database_errors():
    batch_view.new_job(store, choices)
st.subheader("Your jobs" if person.mode == "private" else "Jobs")
with history_view.database_errors():
    batch_view.jobs_list(store)
