"""Teach: your own classes from a few photos each, trained in seconds."""

from ui import account, entry, teach_view

entry.through_the_entry()  # a fresh server's first request may bypass streamlit_app.py

account.account_sidebar(account.visitor())
teach_view.teach_page()
