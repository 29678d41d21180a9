"""What a server does once when it starts, so that its first visitors do not wait for it.

A fresh server's first Classify visit used to import the pages' modules (pandas, Altair,
pyarrow and the app's own: about half a second holding the GIL, which every other
session's first run waited behind) and the first photo opened the default model's
engine and ran it once. Here both are done in a background thread as the server starts.

Only an engine already in the cache is opened: a first-ever export, or a cache that needs
repairing, is left to the first visit, whose page says what is happening.

Importing leaves garbage and freed heap behind (tens of MB). Collected and handed back to
the system at the end, or the server's peak with 16 sessions at once is ~35 MB higher.
"""

from __future__ import annotations

import gc
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

        from classifier import models
        from classifier.config import get_settings
        from ui import resources, results, saving, sidebar, uploads  # noqa: F401  Classify's

        name = get_settings().default_model
        cached = name in models.MODELS and models.cached_engine_path(name) is not None
        if cached and not models.is_loaded(name):
            _open_and_run(name)
        gc.collect()
        resources.give_back_freed_memory()
    except Exception:  # a setting or cache the first visit will report in its own words
        log.debug("The server could not warm up", exc_info=True)


def _open_and_run(name: str) -> None:
    """Open a built-in model's cached engine and run it once on a small grey picture."""
    from PIL import Image

    from classifier import models
    from classifier.predict import classify

    loaded = models.load(name, in_child=True)
    if loaded.cache_notice:  # not expected for a cached engine; never lost silently
        log.warning("%s", loaded.cache_notice)
    picture = io.BytesIO()
    Image.new("RGB", (32, 32), (128, 128, 128)).save(picture, format="PNG")
    classify(picture.getvalue(), loaded)  # the engine's first run allocates its buffers
