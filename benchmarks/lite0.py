"""EfficientNet-Lite0, the model the suites share: the only one with real weights offline."""

from __future__ import annotations

from dataclasses import replace

from classifier import engine, zoo
from classifier.config import get_settings

NAME = zoo.FALLBACK_MODEL


def load() -> engine.LoadedModel:
    """Return EfficientNet-Lite0 on LiteRT from the engine cache, as every warm process has it.

    A model's first-ever load answers with Keras while it exports the LiteRT file
    in the background, and this process keeps that engine; wait for the file, then
    open it the way a later process's load_model does.
    """
    loaded = engine.load_model(NAME)
    if isinstance(loaded.engine, engine.LiteRTEngine):
        return loaded
    loaded.engine.wait()
    path = engine.cached_engine_path(NAME)
    return replace(loaded, engine=engine.LiteRTEngine(path, get_settings().num_threads))
