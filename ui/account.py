"""Who is visiting, and whose history they see: sign-in, the history mode, the sidebar's account.

The deployer picks a mode (`CLASSIFIER_HISTORY_MODE`): `private` keeps each signed-in
person's history and models to themselves and saves nothing for anonymous visitors;
`shared` shows everyone everything (a laptop, a team); `off` saves nothing. Where
sign-in is configured (`[auth]` in Streamlit's secrets) the default is private,
elsewhere shared. Admins (`CLASSIFIER_ADMINS`, emails) see every history.

Pages never filter rows themselves: `resources.store()` hands them a store scoped to
the visitor (`Visitor.scope`), which applies it to every query.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import streamlit as st

from classifier import history
from classifier.config import get_settings
from classifier.history import owners
from ui.columns import plain

log = logging.getLogger(__name__)

MODE_TEXT = {
    "private": "Private history: each person sees only what they saved.",
    "shared": "Shared history: everyone who opens this app sees every saved prediction.",
    "off": "History is off on this server: nothing is saved.",
}


@dataclass(frozen=True)
class Visitor:
    """The person on this page, as far as the app knows."""

    mode: str  # "private", "shared" or "off"
    sign_in: bool  # sign-in is configured on this server
    owner: str | None = None  # "issuer subject" when signed in
    email: str | None = None
    name: str | None = None
    admin: bool = False

    @property
    def signed_in(self) -> bool:
        return self.owner is not None

    @property
    def can_save(self) -> bool:
        """Whether predictions and models this visitor makes are kept."""
        return self.mode == "shared" or (self.mode == "private" and self.signed_in)

    @property
    def scope(self) -> owners.Scope | None:
        """Whose rows this visitor sees and owns; None: no history at all."""
        if self.mode == "off":
            return None
        if self.mode == "shared" or self.admin:
            return owners.Scope(self.owner, everyone=True)
        return owners.Scope.own(self.owner) if self.owner is not None else None

    @property
    def who(self) -> str:
        """How the sidebar names them."""
        return self.email or self.name or "you"


def sign_in_configured() -> bool:
    """Tell whether Streamlit's secrets configure sign-in (an `[auth]` table)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def mode() -> str:
    """Return this server's history mode: the setting, or by whether sign-in is configured."""
    return get_settings().history_mode or ("private" if sign_in_configured() else "shared")


def visitor() -> Visitor:
    """Return who is on the page now (read from `st.user` on every run: it is cheap)."""
    sign_in = sign_in_configured()
    current = Visitor(mode(), sign_in)
    user = st.user
    if not sign_in or not user.get("is_logged_in"):
        return current
    issuer, subject = user.get("iss"), user.get("sub")
    try:
        owner = owners.owner_id(str(issuer or ""), str(subject or ""))
    except ValueError:  # a provider whose token names no issuer or subject
        log.error("The sign-in provider's identity token has no issuer or subject")
        return current
    email = user.get("email") if isinstance(user.get("email"), str) else None
    name = user.get("name") if isinstance(user.get("name"), str) else None
    return Visitor(current.mode, True, owner, email, name, is_admin(owner, email, user))


def is_admin(owner: str, email: str | None, claims) -> bool:
    """Tell whether CLASSIFIER_ADMINS names this person: by owner id, or by an email the
    provider says it verified (`email_verified` true: some providers let people type any
    address, and a missing claim proves nothing)."""
    admins = get_settings().admins
    if owner in admins:
        return True
    verified = claims.get("email_verified") is True
    emails = {entry.lower() for entry in admins if " " not in entry}
    return bool(email and verified and email.lower() in emails)


def remember_once(store: history.HistoryStore, person: Visitor) -> None:
    """Record a signed-in person in the people table once per visit (for `--owner EMAIL`)."""
    if not person.signed_in or store.read_only:
        return
    if st.session_state.get("remembered_owner") == person.owner:
        return
    try:
        owners.remember(store, person.owner, person.email, person.name)
    except Exception:  # naming people is a convenience; the visit goes on
        log.exception("Recording who signed in failed")
        return
    st.session_state["remembered_owner"] = person.owner


def account_sidebar(person: Visitor) -> None:
    """Draw who is signed in, and Sign in / Sign out, at the top of the sidebar (each page
    calls it first)."""
    if not person.sign_in or (person.mode == "off" and not person.signed_in):
        if person.mode == "private":  # private but nobody can sign in: say why nothing is kept
            st.sidebar.caption(
                ":material/lock: Private history needs sign-in, which this server has not "
                "configured; nothing is saved."
            )
        return
    with st.sidebar:
        if person.signed_in:
            st.caption(f":material/account_circle: Signed in as **{plain(person.who)}**")
            if person.admin:
                st.caption(":material/shield_person: Admin: you see everyone's history.")
            st.button("Sign out", on_click=st.logout, icon=":material/logout:")
        else:
            label = "Sign in to keep your history" if person.mode == "private" else "Sign in"
            st.button(label, on_click=st.login, icon=":material/login:", type="primary")
        st.divider()
