"""Entry point: page configuration and navigation; each page lives in pages/."""

import logging
from pathlib import Path

import streamlit as st

from classifier import zoo
from classifier.config import SettingsError, get_settings
from ui import resources

PAGES = Path(__file__).parent / "pages"
FAVICON = Path(__file__).parent / "assets" / "favicon.png"  # shipped: no font fetched from a CDN
# (file in pages/, title, icon); the first one opens by default.
PAGE_LIST = (
    ("classify.py", "Classify", ":material/image_search:"),
    ("history.py", "History", ":material/history:"),
    ("teach.py", "Teach", ":material/school:"),
    ("models.py", "Models", ":material/memory:"),
)


def misconfigured_page(message: str):
    """Return a page body that only explains what is wrong with the configuration."""

    def explain() -> None:
        st.error(message)
        st.caption("Fix the setting and restart the app.")

    return explain


def main() -> None:
    """Route to the page the person picked; with a bad setting, every page says which."""
    st.set_page_config(page_title="Image classifier", page_icon=str(FAVICON), layout="wide")
    try:
        warnings = get_settings().warnings
        zoo.default_model()  # CLASSIFIER_MODEL names a model the app has
        problem = None
    except SettingsError as exc:  # a mistyped environment variable: say which, not a traceback
        warnings, problem = (), f"The app is misconfigured: {exc}"
    if warnings and not st.session_state.get("warned_about_settings"):
        st.session_state["warned_about_settings"] = True  # once per visit, on any page
        for warning in warnings:
            logging.getLogger(__name__).warning(warning)
            st.warning(warning, icon=":material/warning:")
    pages = []
    for number, (file, title, icon) in enumerate(PAGE_LIST):
        # Navigation is always declared, so every URL (/classify, /models, ...) lands here
        # and Streamlit never falls back to listing the files of pages/ as pages.
        target = PAGES / file if problem is None else misconfigured_page(problem)
        url_path = Path(file).stem
        pages.append(st.Page(target, title=title, icon=icon, url_path=url_path, default=not number))
    try:
        st.navigation(pages).run()
    finally:  # the first run's end, also after st.stop() or a rerun
        resources.freeze_imported_objects()


main()
