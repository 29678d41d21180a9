"""The API page's parts: this deployment's address, copy-paste examples, and API tokens."""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import streamlit as st

from classifier import history
from classifier.config import get_settings
from classifier.history import owners, tokens
from ui import account
from ui.columns import plain

log = logging.getLogger(__name__)


def base_url() -> str:
    """Return the address this app was opened at, without a page or query."""
    current = urlsplit(st.context.url or "http://localhost:8501")
    return urlunsplit((current.scheme, current.netloc, "", "", "")).rstrip("/")


def examples(base: str, with_token: bool) -> dict[str, tuple[str, str]]:
    """Return the examples to copy, by title: (language, code)."""
    header_curl = ' \\\n  -H "Authorization: Bearer $CLASSIFIER_TOKEN"' if with_token else ""
    header_py = (
        '\n    headers={"Authorization": f"Bearer {os.environ[\'CLASSIFIER_TOKEN\']}"},'
        if with_token
        else ""
    )
    token_env = "CLASSIFIER_TOKEN=cls_... " if with_token else ""
    return {
        "curl": (
            "bash",
            f"curl {base}/api/v1/predict{header_curl} \\\n  -F file=@photo.jpg -F top_k=3",
        ),
        "Python (httpx)": (
            "python",
            ("import os\n\n" if with_token else "") + "import httpx\n\n"
            'with open("photo.jpg", "rb") as photo:\n'
            "    answer = httpx.post(\n"
            f'        "{base}/api/v1/predict",{header_py.replace(chr(10), chr(10) + "    ")}\n'
            '        files={"file": photo},\n'
            '        data={"top_k": 3},  # "save": "true" keeps it in the history\n'
            "        timeout=60,\n"
            "    )\n"
            "answer.raise_for_status()\n"
            'for picture in answer.json()["predictions"]:\n'
            '    best = picture["top_k"][0]\n'
            '    print(picture["file"], best["label"], f"{best[\'probability\']:.0%}")',
        ),
        "Command line": (
            "bash",
            f"{token_env}CLASSIFIER_SERVER={base} classifier predict photo.jpg\n"
            f"{token_env}CLASSIFIER_SERVER={base} classifier models",
        ),
    }


def token_store(person: account.Visitor) -> history.HistoryStore:
    """Return the store scoped to this person's own tokens (admins too: tokens are personal)."""
    assert person.owner is not None
    whole = history.shared_store(get_settings().history_url())
    return whole.scoped(owners.Scope.own(person.owner))


def make_token(person: account.Visitor) -> None:
    """Make a token from the name typed; keep its secret in the session to show it once."""
    name = st.session_state.get("token_name", "")
    try:
        _, secret = tokens.create(token_store(person), name, person.verified_email)
    except tokens.TokenError as exc:
        st.session_state["token_problem"] = str(exc)
        return
    except Exception as exc:
        log.exception("Making an API token failed")
        st.session_state["token_problem"] = (
            f"The token could not be made. {history.public_message(exc)}"
        )
        return
    st.session_state.pop("token_problem", None)
    st.session_state["token_name"] = ""
    st.session_state["new_token"] = (name.strip(), secret)


def revoke_token(person: account.Visitor, token_id: int) -> None:
    try:
        tokens.revoke(token_store(person), token_id)
    except Exception:
        log.exception("Revoking an API token failed")
        st.toast("The token could not be revoked; try again.", icon=":material/error:")


def when(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def token_section(person: account.Visitor) -> None:
    """Make, list and revoke this person's tokens."""
    st.subheader("Your API tokens")
    st.caption(
        "A token acts as you: it reads and saves only your history and uses your models. "
        "Keep it secret; revoke it when a program no longer needs it."
    )
    if new := st.session_state.pop("new_token", None):  # this run only: never shown again
        name, secret = new
        st.success(
            f"Token “{plain(name)}” made. Copy it now: it is shown only this once.",
            icon=":material/key:",
        )
        st.code(secret, language=None)
    with st.form("new_token_form", clear_on_submit=False, border=False):
        st.text_input(
            "Name",
            key="token_name",
            max_chars=history.tables.MAX_TOKEN_NAME_LENGTH,
            placeholder="What will use it, e.g. nightly import",
        )
        st.form_submit_button(
            "Make a token", icon=":material/add:", on_click=make_token, args=(person,)
        )
    if problem := st.session_state.pop("token_problem", None):
        st.error(plain(problem))  # it may quote the name as typed
    try:
        listed = tokens.list_tokens(token_store(person))
    except Exception as exc:
        log.exception("Listing API tokens failed")
        st.error(f"Your tokens cannot be listed. {history.public_message(exc)}")
        return
    if not listed:
        st.caption("You have no tokens yet.")
        return
    for token in listed:
        name_column, dates, action = st.columns([3, 4, 1.4], vertical_alignment="center")
        name_column.text(token.name)
        dates.caption(f"Made {when(token.created_at)} · last used {when(token.last_used_at)}")
        action.button(
            "Revoke",
            key=f"revoke_{token.id}",
            icon=":material/delete:",
            on_click=revoke_token,
            args=(person, token.id),
        )
