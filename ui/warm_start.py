"""What a server does once when it starts, so that its first visitors do not wait for it.

A fresh server's first Classify visit used to import the pages' modules (pandas, Altair,
pyarrow and the app's own: about half a second holding the GIL, which every other
session's first run waited behind) and the first photo opened the default model's
engine and ran it once. Here both are done in a background thread as the server starts.

Only an engine already in the cache is opened: a first-ever export, or a cache that needs
repairing, is left to the first visit, whose page says what is happening.
"""

from __future__ import annotations

import io
import logging
import threading

log = logging.getLogger(__name__)
_started = threading.Event()


def begin() -> None:
    """Start warming this server in a background thread (once per process)."""
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_warm, name="warm-start", daemon=True).start()


def _warm() -> None:
    try:
        import pyarrow  # noqa: F401  Streamlit's tables and charts send their data with it
        from PIL import Image

        from classifier import models
        from classifier.config import get_settings
        from classifier.predict import classify
        from ui import results, saving, sidebar, uploads  # noqa: F401  the Classify page's

        name = get_settings().default_model
        if name not in models.MODELS or models.cached_engine_path(name) is None:
            return
        if models.is_loaded(name):
            return
        loaded = models.load(name, in_child=True)
        if loaded.cache_notice:  # not expected for a cached engine; never lost silently
            log.warning("%s", loaded.cache_notice)
        picture = io.BytesIO()
        Image.new("RGB", (32, 32), (128, 128, 128)).save(picture, format="PNG")
        classify(picture.getvalue(), loaded)  # the engine's first run allocates its buffers
    except Exception:  # a setting or cache the first visit will report in its own words
        log.debug("The server could not warm up", exc_info=True)
