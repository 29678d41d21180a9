"""The HTTP API: programs classify, list models and read their history on the app's own server.

`streamlit_app.py` hands `server.routes()` and `server.lifespan` to `st.App`, so one port
serves the pages and `/api/v1/...`. Each request is handled in four steps, one module each:

- `callers`: who is asking (the history mode, an API token) -> whose rows and models;
- `limits`: the body's size, and at most N pictures classified at once (else 503);
- `endpoints`: parse, call the library (`classifier.models`, `predict.classify`, the
  history store) off the event loop, answer JSON; every refusal is `errors.ApiError`;
- `openapi`: the OpenAPI 3.1 description of all of it; `mcp`: the same for agents.
"""
