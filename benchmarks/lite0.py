"""EfficientNet-Lite0, the model the suites share: the only one with real weights offline."""

from __future__ import annotations

from dataclasses import replace

from classifier import models
from classifier.config import get_settings
from classifier.runtime import engines

NAME = models.FALLBACK_MODEL


def load() -> models.LoadedModel:
    """Return EfficientNet-Lite0 on LiteRT from the engine cache, as every warm process has it.

    A model's first-ever load answers with Keras while it exports the LiteRT file
    in the background, and this process keeps that engine; wait for the file, then
    open it the way a later process's load_model does.
    """
    loaded = models.load(NAME)
    if isinstance(loaded.engine, engines.LiteRTEngine):
        return loaded
    loaded.engine.wait()
    path = models.cached_engine_path(NAME)
    return replace(loaded, engine=engines.LiteRTEngine(path, get_settings().num_threads))
