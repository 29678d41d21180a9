"""The app's entry: page configuration, the settings check and navigation.

`streamlit_app.py` calls `main()`; so does every page run that bypassed it (below).
"""

from __future__ import annotations

import threading
from pathlib import Path

import streamlit as st

from classifier import models
from classifier.config import SettingsError, get_settings
from ui import resources

ROOT = Path(__file__).resolve().parents[1]
_this_run = threading.local()  # through_entry: this script run is inside main()
PAGES = ROOT / "pages"
FAVICON = ROOT / "assets" / "favicon.png"  # shipped: no font fetched from a CDN
# (file in pages/, title, icon); the first one opens by default.
PAGE_LIST = (
    ("classify.py", "Classify", ":material/image_search:"),
    ("batch.py", "Batch", ":material/photo_library:"),
    ("history.py", "History", ":material/history:"),
    ("review.py", "Review", ":material/rate_review:"),
    ("teach.py", "Teach", ":material/school:"),
    ("evaluate.py", "Evaluate", ":material/fact_check:"),
    ("models.py", "Models", ":material/memory:"),
    ("api.py", "API", ":material/api:"),
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
        get_settings()
        models.default_model()  # CLASSIFIER_MODEL names a model the app has
        problem = None
    except SettingsError as exc:  # a mistyped environment variable: say which, not a traceback
        problem = f"The app is misconfigured: {exc}"
    pages = []
    for number, (file, title, icon) in enumerate(PAGE_LIST):
        # Navigation is always declared, so every URL (/classify, /models, ...) lands here
        # and Streamlit never falls back to listing the files of pages/ as pages.
        target = PAGES / file if problem is None else misconfigured_page(problem)
        url_path = Path(file).stem
        pages.append(st.Page(target, title=title, icon=icon, url_path=url_path, default=not number))
    _this_run.through_entry = True
    try:
        st.navigation(pages).run()
    finally:  # the first run's end, also after st.stop() or a rerun
        _this_run.through_entry = False
        resources.freeze_imported_objects()


def through_the_entry() -> None:
    """Run a page through `main()` if this run bypassed it (each page calls this first).

    Until the entry script has called `st.navigation` once in this process, Streamlit
    takes a `pages/` folder beside it for the old folder-of-pages layout: the first
    request of a fresh server for `/history` runs `pages/history.py` alone, with no page
    configuration, no settings check and Streamlit's list of files as navigation. Here
    such a run does what the entry does (which runs this page again, now through the
    app's navigation), and stops. Whether this run came through the entry is known per
    run (each script run has a thread of its own), not from Streamlit's process-wide flag,
    which another visitor's first run may change while this one is under way.
    """
    if not getattr(_this_run, "through_entry", False):
        main()
        st.stop()
