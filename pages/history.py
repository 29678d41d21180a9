"""History: every saved prediction, to filter, page through, delete, export and summarise."""

import streamlit as st

from ui import history_view, resources

st.title("History")
try:
    store = resources.store()
    total = store.count()
except Exception as exc:  # an unreachable or newer database: say so instead of a traceback
    st.error(f"The history database cannot be opened: {exc}")
    st.stop()

if total == 0:
    st.info("No predictions yet. Classify a photo and it will appear here.")
    st.page_link("pages/classify.py", label="Go to Classify", icon=":material/image_search:")
    st.stop()

filters, sort = history_view.filter_sidebar()
count = store.count(filters)
st.caption(f"{count:,} of {total:,} saved predictions match the filters.")
if st.session_state.pop("h_confirm_clear", False):  # asked once; any other click dismisses it
    history_view.confirm_clear(store, total)
table_tab, summary_tab = st.tabs(["Predictions", "Summary"])
with table_tab:
    history_view.show_table(store, filters, sort, count)
with summary_tab:
    history_view.show_summary(store, filters)
