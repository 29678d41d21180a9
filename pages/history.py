"""History: every saved prediction (built on the history store)."""

import streamlit as st

st.title("History")
st.info("Your saved predictions will be listed here.")
