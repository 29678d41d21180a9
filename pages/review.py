"""Review: the saved predictions worth a second look, one at a time, the least sure first.

In the queue: answers below the confidence threshold, rated wrong without a correction, or
answered differently by two models (`classifier.history.review`). Each action saves at once
and the next one shows.
"""

import streamlit as st

from classifier.history import review
from ui import account, entry, history_view, resources, review_view

entry.through_the_entry()  # a fresh server's first request may bypass streamlit_app.py

st.title("Review")
person = account.visitor()
account.account_sidebar(person)
if person.problem is None:
    st.caption(account.MODE_TEXT[person.mode])
with history_view.database_errors():
    store = resources.store()
if store is None:
    history_view.no_history(person)
    st.stop()
st.caption(
    "Saved predictions worth a second look, the least sure first: say whether each is "
    "right, correct it, skip it, or set aside a photo that is no use."
)
if person.admin and person.mode == "private":
    st.info("You are an admin: you review everyone's predictions, not only yours.",
            icon=":material/shield_person:")  # fmt: skip
history_view.read_only_notice(store)

with history_view.database_errors():
    filters, unsure_below = review_view.filter_sidebar(store)
    queue = review.queue(store, filters, unsure_below)  # (the classes to pick among)
    label = review_view.class_picker(store, queue, filters, unsure_below)
    chosen, skipped = queue.of_label(label), review_view.skipped()
    if queue.more and (label is not None or skipped):
        # Read again without them: the next least sure come in place of those left out.
        left = review.queue(store, filters, unsure_below, label=label, skipped=skipped)
        skipped_here = review.skipped_among(store, skipped, filters, unsure_below, label)
    else:  # all of them were read: chosen among those
        skipped_here = [row for row in skipped if chosen.find(row) is not None]
        left = chosen.without(skipped_here)
    review_view.say_what_was_saved(store, left)
    if not len(left):
        review_view.show_empty(filters, review_view.filtered(filters, label),
                               len(skipped_here), unsure_below)  # fmt: skip
        st.stop()
    shown = left.find(st.session_state.get(review_view.SHOWN)) or left.entries[0]
    if not review_view.show_entry(store, filters, shown, unsure_below, len(left),
                                  len(skipped_here), left.more):  # fmt: skip
        st.rerun()  # deleted since the queue was read: the next one
