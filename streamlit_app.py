"""Entry point: page configuration and navigation; each page lives in pages/."""

from pathlib import Path

import streamlit as st

from classifier.config import SettingsError, get_settings

PAGES = Path(__file__).parent / "pages"


def main() -> None:
    """Route to the page the person picked."""
    st.set_page_config(
        page_title="Image classifier", page_icon=":material/image_search:", layout="wide"
    )
    try:
        get_settings()
    except SettingsError as exc:  # a mistyped environment variable: say which, not a traceback
        st.error(f"The app is misconfigured: {exc}")
        st.stop()
    st.navigation(
        [
            st.Page(
                PAGES / "classify.py",
                title="Classify",
                icon=":material/image_search:",
                default=True,
            ),
            st.Page(PAGES / "history.py", title="History", icon=":material/history:"),
            st.Page(PAGES / "models.py", title="Models", icon=":material/memory:"),
        ]
    ).run()


main()
