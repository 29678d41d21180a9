"""Table columns and cells the pages share."""

from __future__ import annotations

import base64
import re

import streamlit as st

# The characters with a meaning in Markdown wherever they stand, in Streamlit's directives
# (:red[...], :material/icon:) and in its math ($...$), and those that start a heading,
# list or setext underline at the start of any line (a zip member's name may hold line
# breaks): a backslash makes each one plain. An underscore between two letters or digits
# (model_unquant.tflite) can neither open nor close emphasis, so it stays as it is.
_MARKDOWN = re.compile(r"([\\`*{}\[\]<>!|$:~&]|(?<![^\W_])_|_(?![^\W_]))")
_LINE_START = re.compile(r"(?:^|(?<=[\r\n]))([ \t]*)(?:([#+=-])|(\d+)([.)]))")
# Streamlit also turns bare web addresses into links, escaped or not: an invisible word
# joiner after the scheme's colon and after "www" keeps them text.
_AUTOLINK = re.compile(r"(?i)(\b(?:https?|ftp)\\:)(//)|(\bwww)(\.)")
WORD_JOINER = "\u2060"

PICTURE_COLUMN = st.column_config.ImageColumn("Picture", width="small")


def share_column(title: str):
    """Return a table column that shows a 0-1 share as a bar and a percentage with one
    decimal ("38.0%", "89.9%"): the step keeps every row of a table to one format."""
    return st.column_config.ProgressColumn(
        title, format="percent", min_value=0.0, max_value=1.0, step=0.001
    )


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
    escaped = _AUTOLINK.sub(lambda m: WORD_JOINER.join(p for p in m.groups() if p), escaped)
    return _LINE_START.sub(_escape_line_start, escaped)


def _escape_line_start(match: re.Match[str]) -> str:
    indent, marker, number, delimiter = match.groups()
    return f"{indent}\\{marker}" if marker else f"{indent}{number}\\{delimiter}"
