"""Table columns and cells the pages share."""

from __future__ import annotations

import base64
import re

import streamlit as st

# The characters with a meaning in Markdown wherever they stand, in Streamlit's directives
# (:red[...], :material/icon:) and in its math ($...$), and those that start a heading,
# list or quote at the start of a line: a backslash makes each one plain.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>!|$:~&])")
_LINE_START = re.compile(r"^([#+-])|^(\d+)([.)])")

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


def plain(text: str) -> str:
    """Return text that Streamlit's Markdown (headings, captions, st.table cells) shows
    as written: a class name like "*new*" or "![x](url)" stays those characters."""
    escaped = _MARKDOWN.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", escaped)
