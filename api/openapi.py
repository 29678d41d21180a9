"""The OpenAPI 3.1 description of the API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from api import evaluations, limits
from classifier import history
from classifier.history.tables import MAX_TOKEN_NAME_LENGTH
from classifier.predict import MAX_TOP_K, UNSURE_BELOW

VERSION = "1.0.0"
DATE_OR_TIME = {"anyOf": [{"type": "string", "format": "date-time"},
                          {"type": "string", "format": "date"}]}  # fmt: skip
PUBLIC_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,32}$"}
ERROR_STATUSES = {
    "408": "The request's body stopped arriving.",
    "401": "No API token, or one that is not valid (private history).",
    "403": "Not allowed by this server's history mode (history off).",
    "404": "Not found: an unknown model or prediction, or another person's.",
    "413": "A picture or the request is over the size limit.",
    "415": "A file that is not a picture the app reads, or a body that is not a form.",
    "422": "A parameter or picture that cannot be used; the sentence says which.",
    "503": "Busy (see Retry-After), or the history database cannot be used.",
    "507": "The server's disk cannot keep what was sent.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _answers(ok: dict[str, Any], *statuses: str) -> dict[str, Any]:
    answers = {"200": ok} if ok else {}
    for status in statuses:
        answers[status] = _json(_ref("Error"), ERROR_STATUSES[status])
    answers["default"] = _json(_ref("Error"), "Any other failure, in one sentence.")
    return answers


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


FILTERS = [
    _query(
        "label",
        {"type": "string", "maxLength": history.MAX_LABEL_LENGTH},
        "Part of the top class or of the corrected label, any case.",
    ),
    _query(
        "model",
        {"type": "array", "items": {"type": "string"}},
        "Only these models (repeat the parameter for several).",
    ),
    _query(
        "min_confidence",
        {"type": "number", "minimum": 0, "maximum": 1},
        "Top class at least this probable.",
    ),
    _query(
        "max_confidence",
        {"type": "number", "minimum": 0, "maximum": 1},
        "Top class at most this probable.",
    ),
    _query(
        "since",
        DATE_OR_TIME,
        "Saved at or after this time (ISO 8601; a date means its midnight, UTC).",
    ),
    _query("until", DATE_OR_TIME, "Saved before this time."),
    _query(
        "feedback",
        {"type": "string", "enum": list(history.FEEDBACK_FILTERS)},
        "Rated right, wrong, not rated, or any.",
    ),
    _query(
        "sort", {"type": "string", "enum": list(history.SORTS)}, "Order; newest first by default."
    ),
]
ID_PARAMETER = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": PUBLIC_ID,
    "description": "The prediction's id, as in its link in the app.",
}

JOB_ID_PARAMETER = {**ID_PARAMETER, "description": "The batch job's id."}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
JOB = {
    "type": "object",
    "required": ["id", "title", "model", "status", "total", "done", "failed", "created_at"],
    "properties": {
        "id": PUBLIC_ID,
        "title": {"type": "string"},
        "model": {"type": "string"},
        "status": {"type": "string", "enum": ["queued", "running", "done", "cancelled", "failed"]},
        "total": {"type": "integer", "minimum": 0},
        "done": {"type": "integer", "minimum": 0, "description": "Pictures classified."},
        "failed": {"type": "integer", "minimum": 0, "description": "Pictures that could not be."},
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": NULLABLE_TIME,
        "finished_at": NULLABLE_TIME,
        "photos_per_second": {"type": ["number", "null"]},
        "seconds_left": {"type": ["number", "null"]},
        "error": {"type": ["string", "null"], "description": "Why the whole job stopped."},
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

RUN_ID_PARAMETER = {
    "name": "run",
    "in": "path",
    "required": True,
    "schema": PUBLIC_ID,
    "description": "The evaluation run's id (the `id` POST answered).",
}
EVALUATION_STATUS = {"type": "string", "enum": ["running", "done", "cancelled", "failed"]}
NULLABLE_NUMBER = {"type": ["number", "null"]}
FILE_WHY = {
    "type": "object",
    "required": ["file", "why"],
    "properties": {"file": {"type": "string"}, "why": {"type": "string"}},
}
EVALUATION_SUMMARY = {
    "type": "object",
    "required": ["id", "run", "set", "model", "model_title", "status", "created_at"],
    "properties": {
        "id": PUBLIC_ID,
        "run": PUBLIC_ID,
        "set": {"type": "string", "description": "The set's name (the zip's)."},
        "set_digest": {
            "type": ["string", "null"],
            "description": "Of its pictures and labels, once all were read.",
        },
        "model": {"type": "string"},
        "model_title": {"type": "string"},
        "status": EVALUATION_STATUS,
        "created_at": {"type": "string", "format": "date-time"},
        "finished_at": NULLABLE_TIME,
        "photos": {
            "type": ["integer", "null"],
            "minimum": 0,
            "description": "Pictures read whose label is one of the model's classes.",
        },
        "accuracy": {**NULLABLE_NUMBER, "minimum": 0, "maximum": 1},
        "error": {"type": ["string", "null"]},
    },
}
EVALUATION = {
    **EVALUATION_SUMMARY,
    "properties": {
        **EVALUATION_SUMMARY["properties"],
        "top5_accuracy": {**NULLABLE_NUMBER, "minimum": 0, "maximum": 1},
        "per_class": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["class", "precision", "recall", "f1", "support"],
                "properties": {
                    "class": {"type": "string"},
                    "precision": {"type": "number"},
                    "recall": {"type": "number"},
                    "f1": {"type": "number"},
                    "support": {"type": "integer", "minimum": 0},
                },
            },
        },
        "confusion": {
            "type": ["object", "null"],
            "description": "Rows: the set's classes (truth); columns: the same, then "
            "“(another class)” for any other answer.",
            "properties": {
                "classes": {"type": "array", "items": {"type": "string"}},
                "columns": {"type": "array", "items": {"type": "string"}},
                "matrix": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                },
            },
        },
        "calibration": {"type": ["object", "null"], "description": "ece and reliability bins."},
        "mistakes": {"type": "array", "items": {"type": "object"}},
        "label_issues": {"type": "array", "items": {"type": "object"}},
        "label_issues_note": {"type": ["string", "null"]},
        "in_training": {"type": "integer", "minimum": 0},
        "notes": {"type": "array", "items": {"type": "string"}},
        "unmatched": {
            "type": "array",
            "description": "Labels that are none (or more than one) of the model's classes.",
            "items": {
                "type": "object",
                "required": ["label", "why", "pictures"],
                "properties": {
                    "label": {"type": "string"},
                    "why": {"type": "string"},
                    "pictures": {"type": "integer", "minimum": 0},
                },
            },
        },
        "left_out": {"type": "array", "items": FILE_WHY},
        "unreadable": {"type": "array", "items": FILE_WHY},
        "set_aside": {
            "type": "array",
            "description": "Photos a label fix left out of this model's numbers: labelled "
            "with a class it does not have, or dropped from the set.",
            "items": FILE_WHY,
        },
        "answers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["file", "label", "correct", "top_k"],
                "properties": {
                    "file": {"type": "string"},
                    "label": {"type": "string"},
                    "correct": {"type": "boolean"},
                    "top_k": {"type": "array", "items": _ref("TopClass")},
                },
            },
        },
        "progress": {
            "anyOf": [_ref("EvaluationProgress"), {"type": "null"}],
            "description": "Its batch job's progress (null if the job was deleted).",
        },
    },
}
EVALUATION_PROGRESS = {
    "type": "object",
    "required": ["status", "total", "done", "failed"],
    "properties": {
        "status": JOB["properties"]["status"],
        "total": {"type": "integer", "minimum": 0},
        "done": {"type": "integer", "minimum": 0, "description": "Pictures classified."},
        "failed": {"type": "integer", "minimum": 0, "description": "Pictures that could not be."},
        "photos_per_second": NULLABLE_NUMBER,
        "seconds_left": NULLABLE_NUMBER,
    },
}
RUN_STATUS = {
    "type": "string",
    "enum": ["running", "done", "cancelled", "failed"],
    "description": "running while any model's job runs; else failed or cancelled if any "
    "model's was, else done.",
}
EVALUATION_RUN = {
    "type": "object",
    "required": ["id", "set", "status", "created_at", "models", "links"],
    "properties": {
        "id": PUBLIC_ID,
        "set": {"type": "string"},
        "status": RUN_STATUS,
        "created_at": {"type": "string", "format": "date-time"},
        "finished_at": NULLABLE_TIME,
        "models": {
            "type": "array",
            "minItems": 1,
            "items": _ref("Evaluation"),
            "description": "One per model, in the order asked: its progress, and its whole "
            "evaluation once its job ended.",
        },
        "comparisons": {
            "type": "array",
            "description": "With two or more models, once the run is done: the first model "
            "against each other one (exact McNemar test).",
            "items": {
                "type": "object",
                "required": [
                    "first",
                    "second",
                    "photos",
                    "only_first_right",
                    "only_second_right",
                    "p_value",
                ],
                "properties": {
                    "first": {"type": "string"},
                    "second": {"type": "string"},
                    "photos": {"type": "integer", "minimum": 0},
                    "only_first_right": {"type": "array", "items": {"type": "string"}},
                    "only_second_right": {"type": "array", "items": {"type": "string"}},
                    "p_value": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
        },
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
EVALUATION_RUN_SUMMARY = {
    "type": "object",
    "required": ["id", "set", "status", "created_at", "models", "links"],
    "properties": {
        "id": PUBLIC_ID,
        "set": {"type": "string"},
        "status": RUN_STATUS,
        "created_at": {"type": "string", "format": "date-time"},
        "models": {"type": "array", "items": _ref("EvaluationSummary")},
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

TOP_CLASS = {
    "type": "object",
    "required": ["label", "index", "probability"],
    "properties": {
        "label": {"type": "string"},
        "index": {"type": "integer", "minimum": 0},
        "probability": {"type": "number", "minimum": 0, "maximum": 1},
    },
}
SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "One sentence."},
            "file": {"type": "string", "description": "The one picture sent, if it was refused."},
        },
    },
    "TopClass": TOP_CLASS,
    "Answer": {
        "type": "object",
        "required": ["file", "model", "top_k", "unsure", "inference_ms", "width", "height"],
        "properties": {
            "file": {"type": "string"},
            "model": {"type": "string", "description": "The model that answered."},
            "top_k": {"type": "array", "items": _ref("TopClass"), "minItems": 1},
            "unsure": {"type": "boolean", "description": "The top class is below threshold."},
            "inference_ms": {"type": "number"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "id": {**PUBLIC_ID, "description": "Its id in the history, when saved."},
            "requested_model": {"type": "string"},
            "notice": {"type": "string", "description": "Why another model answered."},
        },
    },
    "PictureError": {
        "type": "object",
        "required": ["file", "error", "status"],
        "properties": {
            "file": {"type": "string"},
            "error": {"type": "string"},
            "status": {"type": "integer", "enum": [413, 415, 422]},
        },
    },
    "Answers": {
        "type": "object",
        "required": ["predictions"],
        "properties": {
            "predictions": {
                "type": "array",
                "items": {"anyOf": [_ref("Answer"), _ref("PictureError")]},
            }
        },
    },
    "Model": {
        "type": "object",
        "required": ["name", "title", "kind", "classes", "input_size", "available"],
        "properties": {
            "name": {"type": "string"},
            "title": {"type": "string"},
            "kind": {"type": "string", "enum": ["builtin", "added", "taught"]},
            "classes": {"type": "integer", "minimum": 0},
            "input_size": {"type": "integer", "minimum": 0},
            "available": {"type": "boolean"},
        },
    },
    "Models": {
        "type": "object",
        "required": ["default", "models"],
        "properties": {
            "default": {"type": "string"},
            "models": {"type": "array", "items": _ref("Model")},
        },
    },
    "Prediction": {
        "type": "object",
        "required": [
            "id",
            "created_at",
            "file",
            "sha256",
            "width",
            "height",
            "image_format",
            "model",
            "top_k",
            "inference_ms",
            "feedback",
            "corrected_label",
            "source",
        ],
        "properties": {
            "id": PUBLIC_ID,
            "created_at": {"type": "string", "format": "date-time"},
            "file": {"type": "string"},
            "sha256": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "image_format": {"type": "string"},
            "model": {"type": "string"},
            "top_k": {"type": "array", "items": _ref("TopClass")},
            "inference_ms": {"type": "number"},
            "feedback": {"type": ["string", "null"], "enum": [*history.FEEDBACK_VALUES, None]},
            "corrected_label": {"type": ["string", "null"]},
            "source": {"type": "string", "enum": list(history.records.SOURCES)},
        },
    },
    "Job": JOB,
    "Jobs": {
        "type": "object",
        "required": ["jobs"],
        "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
    },
    "EvaluationSummary": EVALUATION_SUMMARY,
    "Evaluation": EVALUATION,
    "EvaluationProgress": EVALUATION_PROGRESS,
    "EvaluationRun": EVALUATION_RUN,
    "EvaluationRuns": {
        "type": "object",
        "required": ["runs"],
        "properties": {"runs": {"type": "array", "items": EVALUATION_RUN_SUMMARY}},
    },
    "Page": {
        "type": "object",
        "required": ["total", "limit", "offset", "predictions"],
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "predictions": {"type": "array", "items": _ref("Prediction")},
        },
    },
    "Feedback": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "feedback": {"type": ["string", "null"], "enum": [*history.FEEDBACK_VALUES, None]},
            "corrected_label": {
                "type": ["string", "null"],
                "maxLength": history.MAX_LABEL_LENGTH,
                "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
                "description": "What it really is; only with feedback wrong, on one line, and "
                "not the prediction's own top-1 label.",
            },
        },
        # A corrected label goes only with "wrong".
        "if": {"required": ["feedback"], "properties": {"feedback": {"const": "wrong"}}},
        "else": {"properties": {"corrected_label": {"type": "null"}}},
    },
}

PREDICT_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "array",
            "items": {"type": "string", "contentMediaType": "application/octet-stream"},
            "minItems": 1,
            "maxItems": limits.MAX_FILES,
            "description": "One or several pictures (repeat the field).",
        },
        "model": {"type": "string", "description": "A name from GET /api/v1/models."},
        "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": 5},
        "threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": UNSURE_BELOW},
        "save": {"type": "boolean", "default": False, "description": "Keep in the history."},
        "photo": {
            "type": "boolean",
            "description": "With save, also keep a reduced copy of each picture to teach "
            "from, beside its thumbnail (default: the server's CLASSIFIER_KEEP_PHOTOS).",
        },
    },
}


ZIP_BODY = {"type": "string", "format": "binary"}
JOB_PATHS = {
    "/api/v1/jobs": {
        "post": {
            "operationId": "createJob",
            "summary": "Classify every picture in a zip, in the background (saved in the history)",
            "parameters": [
                _query("model", {"type": "string"}, "A name from GET /api/v1/models."),
                _query(
                    "top_k",
                    {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": 5},
                    "Classes kept per picture.",
                ),
                _query("thumbnails", {"type": "boolean", "default": True}, "Keep thumbnails."),
                _query(
                    "title",
                    {"type": "string"},
                    "What the job is called in the app: one line, without control characters.",
                ),
            ],
            "requestBody": {
                "required": True,
                "content": {"application/zip": {"schema": ZIP_BODY}},
            },
            "responses": {
                "202": _json(_ref("Job"), "Accepted; follow its progress at its link."),
                **_answers({}, "401", "403", "404", "408", "413", "415", "422", "503", "507"),
            },
        },
        "get": {
            "operationId": "listJobs",
            "summary": "Your batch jobs, newest first",
            "responses": _answers(_json(_ref("Jobs"), "The newest 50."), "401", "403"),
        },
    },
    "/api/v1/jobs/{id}": {
        "parameters": [JOB_ID_PARAMETER],
        "get": {
            "operationId": "getJob",
            "summary": "A batch job's progress",
            "responses": _answers(_json(_ref("Job"), "It."), "401", "403", "404"),
        },
        "delete": {
            "operationId": "cancelJob",
            "summary": "Cancel a batch job (what it saved is kept)",
            "responses": _answers(_json(_ref("Job"), "As it is now."), "401", "403", "404"),
        },
    },
    "/api/v1/jobs/{id}/results": {
        "parameters": [JOB_ID_PARAMETER],
        "get": {
            "operationId": "getJobResults",
            "summary": "One row per picture, by name, as CSV or JSON",
            "parameters": [
                _query("format", {"type": "string", "enum": ["csv", "json"]}, "csv by default.")
            ],
            "responses": _answers(
                {
                    "description": "The results.",
                    "content": {
                        "text/csv": {"schema": {"type": "string"}},
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "401",
                "403",
                "404",
                "422",
            ),
        },
    },
}

EVALUATION_PATHS = {
    "/api/v1/evaluations": {
        "post": {
            "operationId": "createEvaluation",
            "summary": "Evaluate models on a labelled set sent as a zip, in the background",
            "description": (
                "The zip holds a folder per class (named after one of the model's classes: "
                "its name, WordNet id or index), or the pictures and a labels.csv of "
                "file,label at its top (or at the top of its one folder). Each model gets a "
                "batch job of the pictures whose label is one of its classes."
            ),
            "parameters": [
                _query(
                    "model",
                    {
                        "type": "array",
                        "items": {"type": "string"},
                        "maxItems": evaluations.MAX_MODELS,
                    },
                    "Models from GET /api/v1/models (repeat the parameter for several, each "
                    "once); the server's default model if none.",
                ),
                _query(
                    "name",
                    {
                        "type": "string",
                        "maxLength": evaluations.MAX_NAME_LENGTH,
                        "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
                    },
                    "The set's name (the zip's); upload.zip by default.",
                ),
            ],
            "requestBody": {
                "required": True,
                "content": {"application/zip": {"schema": ZIP_BODY}},
            },
            "responses": {
                "202": _json(_ref("EvaluationRun"), "Accepted; follow its progress at its link."),
                **_answers({}, "401", "403", "404", "408", "413", "415", "422", "503", "507"),
            },
        },
        "get": {
            "operationId": "listEvaluations",
            "summary": "Your evaluations, newest first, grouped by run",
            "responses": _answers(
                _json(
                    _ref("EvaluationRuns"),
                    f"The newest {evaluations.LIST_LIMIT} evaluations, by run.",
                ),
                "401",
                "403",
            ),
        },
    },
    "/api/v1/evaluations/{run}": {
        "parameters": [RUN_ID_PARAMETER],
        "get": {
            "operationId": "getEvaluation",
            "summary": "An evaluation run: each model's progress, then its numbers",
            "responses": _answers(_json(_ref("EvaluationRun"), "It."), "401", "403", "404"),
        },
        "delete": {
            "operationId": "cancelEvaluation",
            "summary": "Cancel an evaluation run",
            "responses": _answers(
                _json(_ref("EvaluationRun"), "As it is now."), "401", "403", "404"
            ),
        },
    },
}


def document(server_url: str | None = None) -> dict[str, Any]:
    """Return the OpenAPI document (with this deployment's address, when known)."""
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Image classifier API",
            "version": VERSION,
            "description": (
                "Classify pictures with the app's models and read your saved predictions. "
                "With a private history, send an API token (made on the app's API page) "
                "as a bearer token; with a shared one, no token is needed. Tokens have at "
                f"most {MAX_TOKEN_NAME_LENGTH}-character names and act as their owner."
            ),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"token": []}],
        "paths": {
            "/api/v1/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Classify one or several pictures",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": PREDICT_FORM,
                                "encoding": {"file": {"contentType": "application/octet-stream"}},
                            }
                        },
                    },
                    "responses": _answers(
                        _json(_ref("Answers"), "One entry per picture, in order."),
                        "401",
                        "403",
                        "404",
                        "408",
                        "413",
                        "415",
                        "422",
                        "503",
                    ),
                }
            },
            "/api/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "The models you may use",
                    "responses": _answers(
                        _json(_ref("Models"), "Built-in, then your own."), "401", "503"
                    ),
                }
            },
            "/api/v1/predictions": {
                "get": {
                    "operationId": "listPredictions",
                    "summary": "Your saved predictions, filtered, one page at a time",
                    "parameters": [
                        *FILTERS,
                        _query(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
                            "Page size.",
                        ),
                        _query(
                            "offset",
                            {
                                "type": "integer",
                                "minimum": 0,
                                "maximum": 1_000_000_000,
                                "default": 0,
                            },
                            "How many to skip.",
                        ),
                    ],
                    "responses": _answers(_json(_ref("Page"), "One page."), "401", "403", "422"),
                }
            },
            "/api/v1/predictions/export": {
                "get": {
                    "operationId": "exportPredictions",
                    "summary": "Every matching prediction as CSV or JSON (as the History page)",
                    "parameters": [
                        *FILTERS,
                        _query(
                            "format", {"type": "string", "enum": ["csv", "json"]}, "csv by default."
                        ),
                    ],
                    "responses": _answers(
                        {
                            "description": "The export.",
                            "content": {
                                "text/csv": {"schema": {"type": "string"}},
                                "application/json": {
                                    "schema": {"type": "array", "items": {"type": "object"}}
                                },
                            },
                        },
                        "401",
                        "403",
                        "422",
                    ),
                }
            },
            "/api/v1/predictions/{id}": {
                "parameters": [ID_PARAMETER],
                "get": {
                    "operationId": "getPrediction",
                    "summary": "One saved prediction",
                    "responses": _answers(_json(_ref("Prediction"), "It."), "401", "403", "404"),
                },
                "delete": {
                    "operationId": "deletePrediction",
                    "summary": "Delete a saved prediction",
                    "responses": {
                        "204": {"description": "Deleted."},
                        **_answers({}, "401", "403", "404"),
                    },
                },
            },
            "/api/v1/predictions/{id}/feedback": {
                "parameters": [ID_PARAMETER],
                "put": {
                    "operationId": "setFeedback",
                    "summary": "Say whether it was right, and what it really is",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Feedback")}},
                    },
                    "responses": _answers(
                        _json(_ref("Prediction"), "As saved now."),
                        "401",
                        "403",
                        "404",
                        "413",
                        "422",
                    ),
                },
            },
            **JOB_PATHS,
            **EVALUATION_PATHS,
        },
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
