"""The HTTP API: programs classify, list models and read their history on the app's own server.

`streamlit_app.py` hands `server.routes()` and `server.lifespan` to `st.App`, so one port
serves the pages and `/api/...`. The modules, one concern each:

- `server`: the routes (and 405/404 for addresses and methods that are not there);
- `callers`: who is asking (the history mode, an API token) -> whose rows and models;
- `limits`: the body's size, and at most N requests classifying at once (else 503);
- `endpoints`: parse, call the library (`classifier.models`, `predict.classify`, the
  history store) off the event loop, answer JSON;
- `errors`: `ApiError`, every refusal: a status and one sentence;
- `openapi`: the OpenAPI 3.1 description of the REST API;
- `mcp`: the same calls as MCP tools, for agents.
"""
