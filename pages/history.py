"""History: every saved prediction, to filter, page through, delete, export and summarise."""

import streamlit as st

from ui import history_view, resources

st.title("History")
history_view.show_callback_error()  # a delete or clear that failed in this rerun's callback
# A database that cannot be opened or answer becomes a sentence, never a traceback with SQL.
with history_view.database_errors():
    store = resources.store()
    total = store.count()
history_view.read_only_notice(store)

if total == 0:
    st.info("No predictions yet. Classify a photo and it will appear here.")
    st.page_link("pages/classify.py", label="Go to Classify", icon=":material/image_search:")
    st.stop()

filters, sort = history_view.filter_sidebar()
with history_view.database_errors():
    count = store.count(filters)
    st.caption(f"{count:,} of {total:,} saved predictions match the filters.")
    table_tab, summary_tab = st.tabs(["Predictions", "Summary"])
    with table_tab:
        history_view.show_table(store, filters, sort, count, total)
    with summary_tab:
        history_view.show_summary(store, filters)
