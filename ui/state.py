"""Widget values kept across pages: Streamlit forgets a widget that a page does not draw."""

from __future__ import annotations

from typing import Any

import streamlit as st


def _keep(key: str) -> None:
    st.session_state[f"kept_{key}"] = st.session_state[key]


def kept(key: str, default: Any) -> dict[str, Any]:
    """Return the arguments that give a widget its key and keep its value across pages.

    The value lives under a second key and is copied back before the widget is drawn,
    so a person who visits another page and comes back finds their choice.
    """
    st.session_state.setdefault(f"kept_{key}", default)
    st.session_state[key] = st.session_state[f"kept_{key}"]
    return {"key": key, "on_change": _keep, "args": (key,)}
