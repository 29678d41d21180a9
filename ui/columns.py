"""Table columns and cells the pages share."""

from __future__ import annotations

import base64

import streamlit as st

PICTURE_COLUMN = st.column_config.ImageColumn("Picture", width="small")


def share_column(title: str):
    """Return a table column that shows a 0-1 share as a bar and a percentage."""
    return st.column_config.ProgressColumn(title, format="percent", min_value=0.0, max_value=1.0)


def thumbnail_uri(data: bytes | None) -> str | None:
    """Return a data URI that `st.column_config.ImageColumn` can show."""
    if not data:
        return None
    kind = "webp" if data[8:12] == b"WEBP" else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"
