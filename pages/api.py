"""API: how programs call this app (examples for this deployment), and your API tokens."""

import streamlit as st

from api import callers
from classifier.config import get_settings
from ui import account, api_view, entry

entry.through_the_entry()  # a fresh server's first request may bypass streamlit_app.py

person = account.visitor()
account.account_sidebar(person)
st.title("API")
if not get_settings().api_enabled:
    st.info("The API is turned off on this server (CLASSIFIER_API=off).", icon=":material/block:")
    st.stop()

base = api_view.base_url()
st.write(
    "Programs can classify pictures with this app's models and read the history over HTTP, "
    "on the same address as these pages."
)
needs_token = person.mode == "private"
if person.problem is not None:
    st.error(person.problem, icon=":material/lock:")
elif person.mode == "shared":
    st.caption(
        ":material/public: The history here is shared, so programs need no token: anyone who "
        "can reach this server can read, save, rate and delete predictions through the API, "
        "as on the pages."
    )
elif person.mode == "off":
    st.caption(":material/block: History is off here: programs can classify; nothing is saved.")

st.subheader("Examples")
tabs = st.tabs(list(api_view.examples(base, needs_token)))
for tab, (language, code) in zip(tabs, api_view.examples(base, needs_token).values(), strict=True):
    with tab:
        st.code(code, language=language, wrap_lines=True)
st.caption("Every address and field, in the OpenAPI document:")
st.code(f"{base}/api/v1/openapi.json", language=None, wrap_lines=True)
st.caption("Agents connect to the MCP endpoint (tools classify_image and list_models):")
st.code(f"{base}/api/mcp", language=None, wrap_lines=True)

if needs_token and person.problem is None:
    if not person.sign_in:
        st.warning(callers.NO_TOKENS_HERE, icon=":material/lock:")
    elif not person.signed_in:
        st.info("Sign in to make an API token: programs need one here.", icon=":material/key:")
    else:
        api_view.token_section(person)
