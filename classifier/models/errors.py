"""The model errors: each one sentence a person can read.

ModelError            a model that cannot be found, built, kept or run
├─ UnknownModel       no model, built in or added, has the name asked for
├─ ModelFileError     a model or labels file (or a name for it) that cannot be added
├─ ModelNameTaken     another model has this name
├─ ModelChanged       the model to be replaced changed or went since it was read
└─ DerivedFileFailed  a file made from a model (engine, features, maps, download) failed
"""

from __future__ import annotations

from classifier.errors import ModelChanged, ModelError, ModelNameTaken


class UnknownModel(ModelError):
    """No model, built in or added, has the name asked for."""


class ModelFileError(ModelError, ValueError):
    """A model or labels file that cannot be added; the message is one sentence for a person."""


class DerivedFileFailed(ModelError):
    """A file made from a model on this server could not be made (the child said why)."""


__all__ = [
    "DerivedFileFailed",
    "ModelChanged",
    "ModelError",
    "ModelFileError",
    "ModelNameTaken",
    "UnknownModel",
]
