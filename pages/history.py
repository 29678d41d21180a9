"""History: every saved prediction, to filter, page through, delete, export and summarise.

`?prediction=ID` opens one saved prediction instead (ui/permalink.py).
"""

import streamlit as st

from ui import account, entry, history_view, permalink, resources

entry.through_the_entry()  # a fresh server's first request may bypass streamlit_app.py
history_view.open_clicked()  # an Open cell clicked in the table: its prediction's own page

st.title("History")
person = account.visitor()
account.account_sidebar(person)
history_view.show_callback_error()  # a delete or clear that failed in this rerun's callback
if person.problem is None:
    st.caption(account.MODE_TEXT[person.mode])
# A database that cannot be opened or answer becomes a sentence, never a traceback with SQL.
with history_view.database_errors():
    store = resources.store()
if store is None:
    history_view.no_history(person)
    st.stop()
if person.admin and person.mode == "private":
    st.info("You are an admin: you see everyone's predictions, not only yours.",
            icon=":material/shield_person:")  # fmt: skip
if (public_id := permalink.requested()) is not None:
    with history_view.database_errors():
        permalink.show(store, public_id, person.mode)
    st.stop()

with history_view.database_errors():
    total = store.count()
history_view.read_only_notice(store)

if total == 0:
    history_view.show_undo(store)  # the last ones deleted: they may still be put back
    st.info("No predictions yet. Classify a photo and it will appear here.")
    st.page_link("pages/classify.py", label="Go to Classify", icon=":material/image_search:")
    st.stop()

with history_view.database_errors():
    filters, sort = history_view.filter_sidebar(store)
    filters = history_view.job_filter(store, filters)  # `?job=ID`: one batch job's answers
with history_view.database_errors():
    count = store.count(filters)
    st.caption(f"{count:,} of {total:,} saved predictions match the filters.")
    # Only the open tab is computed and sent: the summary's queries and charts would
    # otherwise hold up the table. Streamlit forgets the value of a widget it does not
    # draw, so the table's page size and page are kept while the Summary tab is open.
    history_view.keep_table_position()
    table_tab, summary_tab = st.tabs(["Predictions", "Summary"], key="h_tab", on_change="rerun")
    if table_tab.open:
        with table_tab:
            history_view.show_table(store, filters, sort, count, total)
    if summary_tab.open:
        with summary_tab:
            history_view.show_summary(store, filters)
