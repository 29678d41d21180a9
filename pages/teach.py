"""Teach: your own classes from a few photos each, trained in seconds."""

from ui import teach_view

teach_view.teach_page()
