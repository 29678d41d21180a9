"""Teach: your own classes from a few photos each, trained in seconds."""

from ui import account, teach_view

account.account_sidebar(account.visitor())
teach_view.teach_page()
