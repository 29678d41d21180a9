"""The API's OpenAPI description: a valid document, and a live server that keeps to it.

`openapi-spec-validator` checks the document; schemathesis then sends requests made from
it (valid and invalid ones) to the real app and checks every answer: no 5xx, a status
the document lists, and a body that matches its schema.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings, strategies
from openapi_spec_validator import validate
from schemathesis import checks

from api import openapi
from benchmarks import server as server_tools
from tests.helpers import encode


def test_the_document_is_valid_openapi_3_1():
    document = openapi.document("http://127.0.0.1:8501")
    validate(document)  # raises with the first problem it finds
    operations = {
        (path, method) for path, item in document["paths"].items() for method in item
        if method != "parameters"
    }  # fmt: skip
    assert operations == {
        ("/api/v1/predict", "post"),
        ("/api/v1/models", "get"),
        ("/api/v1/predictions", "get"),
        ("/api/v1/predictions/export", "get"),
        ("/api/v1/predictions/{id}", "get"),
        ("/api/v1/predictions/{id}", "delete"),
        ("/api/v1/predictions/{id}/feedback", "put"),
        ("/api/v1/jobs", "post"),
        ("/api/v1/jobs", "get"),
        ("/api/v1/jobs/{id}", "get"),
        ("/api/v1/jobs/{id}", "delete"),
        ("/api/v1/jobs/{id}/results", "get"),
        ("/api/v1/evaluations", "post"),
        ("/api/v1/evaluations", "get"),
        ("/api/v1/evaluations/{run}", "get"),
        ("/api/v1/evaluations/{run}", "delete"),
    }


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# A job's or an evaluation's body: a zip of a photo (in a class folder too), of no picture,
# of a path out of its folder, or any bytes.
PHOTO = encode(np.full((40, 40, 3), 120, np.uint8))
schemathesis.openapi.media_type(
    "application/zip",
    strategies.sampled_from(
        [
            _zip({"photo.png": PHOTO}),
            _zip({"espresso/photo.png": PHOTO}),
            _zip({"notes.txt": b"no pictures here"}),
            _zip({"../escape.png": b"x"}),
        ]
    )
    | strategies.binary(max_size=256),
)


@pytest.fixture(scope="module")
def live_schema(tmp_path_factory, lite0):
    """The document as the running app serves it (shared history: no token needed)."""
    folder = tmp_path_factory.mktemp("schema")
    with server_tools.serve(folder, CLASSIFIER_HISTORY_MODE="shared") as running:
        yield schemathesis.openapi.from_url(f"{running.url}/api/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("live_schema")


@pytest.mark.server
@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_live_server_keeps_to_its_description(case):
    excluded = []
    if case.operation.path in ("/api/v1/predict", "/api/v1/jobs", "/api/v1/evaluations"):
        # Any bytes are a schema-valid file, and few are pictures: refusing them (413, 415,
        # 422 with a sentence) is right, and test_api.py checks each of those answers.
        excluded.append(checks.positive_data_acceptance)
    case.call_and_validate(timeout=120, excluded_checks=excluded)
