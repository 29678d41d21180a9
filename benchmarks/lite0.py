"""EfficientNet-Lite0, the model the suites share: the only one with real weights offline."""

from __future__ import annotations

from classifier import engine, zoo

NAME = zoo.FALLBACK_MODEL


def load() -> engine.LoadedModel:
    """Return EfficientNet-Lite0 on LiteRT from the engine cache, as every warm process has it.

    A model's first-ever load answers with Keras while it exports the LiteRT file
    in the background; wait for that file, then open it like a later process does.
    """
    loaded = engine.load_model(NAME)
    if isinstance(loaded.engine, engine.LiteRTEngine):
        return loaded
    engine.wait_for_export(loaded)
    return engine.load_model(NAME)
