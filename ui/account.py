"""Who is visiting, and whose history they see: sign-in, the history mode, the sidebar's account.

The deployer picks a mode (`CLASSIFIER_HISTORY_MODE`): `private` keeps each signed-in
person's history and models to themselves and saves nothing for anonymous visitors;
`shared` shows everyone everything (a laptop, a team); `off` saves nothing. Where
sign-in is configured (`[auth]` in Streamlit's secrets) the default is private,
elsewhere shared. Admins (`CLASSIFIER_ADMINS`, emails) see every history.

The app fails closed: a secrets file that cannot be read, or an `[auth]` table that
lacks what sign-in needs, leaves every visitor with no history at all (nothing shown,
nothing saved) and every page says what is wrong, since guessing would turn a private
server into a shared one.

Pages never filter rows themselves: `resources.store()` hands them a store scoped to
the visitor (`Visitor.scope`), which applies it to every query.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

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
# What st.login needs from `[auth]` (or from its provider table `[auth.NAME]`).
AUTH_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
NOTHING_KEPT = "no history is shown or saved until it is fixed and the app restarted"


@dataclass(frozen=True)
class Visitor:
    """The person on this page, as far as the app knows."""

    mode: str  # "private", "shared" or "off"
    sign_in: bool  # sign-in is configured on this server
    owner: str | None = None  # "issuer subject" when signed in
    email: str | None = None
    name: str | None = None
    admin: bool = False
    problem: str | None = None  # what is wrong with the secrets: then nobody has a history
    verified_email: str | None = None  # the email, when the sign-in provider verified it

    @property
    def signed_in(self) -> bool:
        return self.owner is not None

    @property
    def can_save(self) -> bool:
        """Whether predictions and models this visitor makes are kept."""
        if self.problem is not None:
            return False
        return self.mode == "shared" or (self.mode == "private" and self.signed_in)

    @property
    def scope(self) -> owners.Scope | None:
        """Whose rows this visitor sees and owns; None: no history at all."""
        if self.mode == "off" or self.problem is not None:
            return None
        if self.mode == "shared" or self.admin:
            return owners.Scope(self.owner, everyone=True)
        return owners.Scope.own(self.owner) if self.owner is not None else None

    @property
    def who(self) -> str:
        """How the sidebar names them."""
        return self.email or self.name or "you"


@dataclass(frozen=True)
class SignInSetup:
    """What Streamlit's secrets say about sign-in."""

    configured: bool  # an [auth] table is there (or may be: see problem)
    problem: str | None = None  # one sentence: the secrets cannot be trusted as they are


_seen_configured = False  # sign-in was configured at some point in this process


def sign_in_setup() -> SignInSetup:
    """Read `[auth]` from Streamlit's secrets, and say what is wrong with it, if anything.

    Streamlit reads the secrets file again when it changes. Once sign-in has been configured
    in this process, secrets that no longer configure it (an emptied, half-written or
    removed file) are a problem until the app restarts, not a server without sign-in:
    that would make a private history shared.
    """
    global _seen_configured
    setup = _read_sign_in_setup()
    if setup.configured:
        _seen_configured = True
    elif _seen_configured:
        return SignInSetup(
            True,
            "The app's secrets no longer configure sign-in, as they did when it started, "
            f"so {NOTHING_KEPT}.",
        )
    return setup


def forget_sign_in_seen() -> None:
    """Forget that sign-in was configured (tests that run apps with other secrets)."""
    global _seen_configured
    _seen_configured = False


def _read_sign_in_setup() -> SignInSetup:
    """Read `[auth]` as the secrets say it now."""
    try:
        auth = st.secrets.get("auth")
    except StreamlitSecretNotFoundError as exc:
        if getattr(exc, "error_id", None) == "no-secrets-found" or not _secrets_exist():
            return SignInSetup(False)  # no secrets at all: fine
        reason = exc.exec_kwargs.get("error") or "it is not valid TOML"
        return SignInSetup(
            True, f"The app's secrets file cannot be read ({reason}), so {NOTHING_KEPT}."
        )
    except Exception as exc:  # e.g. an unreadable file: the same, with the error's kind
        return SignInSetup(
            True,
            f"The app's secrets cannot be read ({type(exc).__name__}), so {NOTHING_KEPT}.",
        )
    if auth is None:
        return SignInSetup(False)
    return SignInSetup(True, _auth_problem(auth))


def _secrets_exist() -> bool:
    """Tell whether any file or folder Streamlit reads secrets from is there."""
    from streamlit import config

    return any(Path(path).exists() for path in config.get_option("secrets.files") or ())


def _auth_problem(auth: object) -> str | None:
    """Say what st.login would miss in an `[auth]` table (None: nothing)."""
    if not isinstance(auth, Mapping):
        return f"The app's secrets set auth to a value, not an [auth] table, so {NOTHING_KEPT}."
    missing = [key for key in AUTH_KEYS if not auth.get(key)]
    # st.login() with no provider named reads [auth.default], or else the keys in [auth].
    default = auth.get("default")
    provider, where = (default, "[auth.default]") if isinstance(default, Mapping) else (auth, "")
    missing += [f"{key}{' in ' + where if where else ''}" for key in PROVIDER_KEYS
                if not provider.get(key)]  # fmt: skip
    if not missing:
        return None
    return (
        f"Sign-in is configured in the app's secrets, but [auth] lacks {', '.join(missing)}, "
        f"so {NOTHING_KEPT}."
    )


def sign_in_configured() -> bool:
    """Tell whether Streamlit's secrets configure sign-in (an `[auth]` table)."""
    return sign_in_setup().configured


def mode(setup: SignInSetup | None = None) -> str:
    """Return this server's history mode: the setting, or by whether sign-in is configured."""
    setup = setup or sign_in_setup()
    return get_settings().history_mode or ("private" if setup.configured else "shared")


def visitor() -> Visitor:
    """Return who is on the page now (read from `st.user` on every run: it is cheap)."""
    setup = sign_in_setup()
    problem = setup.problem
    if problem is None and get_settings().history_problem is not None:
        _log_once(get_settings().history_problem)  # names the file: for whoever runs the app
        problem = f"The app's secrets cannot name the history database, so {NOTHING_KEPT}."
    if problem is not None:
        return Visitor(mode(setup), False, problem=problem)
    current = Visitor(mode(setup), setup.configured)
    if not setup.configured:
        return current
    user = st.user
    if not user.get("is_logged_in"):
        return current
    issuer, subject = user.get("iss"), user.get("sub")
    try:
        owner = owners.owner_id(str(issuer or ""), str(subject or ""))
    except ValueError:  # a provider whose token names no issuer or subject
        log.error("The sign-in provider's identity token has no issuer or subject")
        return current
    email = user.get("email") if isinstance(user.get("email"), str) else None
    name = user.get("name") if isinstance(user.get("name"), str) else None
    verified = email if user.get("email_verified") is True else None
    admin = is_admin(owner, email, user)
    return Visitor(current.mode, True, owner, email, name, admin, verified_email=verified)


_logged: set[str] = set()


def _log_once(message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        log.error(message)


def is_admin(owner: str, email: str | None, claims) -> bool:
    """Tell whether CLASSIFIER_ADMINS names this person: by owner id, or by an email the
    provider says it verified (`email_verified` true: some providers let people type any
    address, and a missing claim proves nothing)."""
    verified = email if claims.get("email_verified") is True else None
    return owners.is_admin(owner, verified, get_settings().admins)


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
    if person.problem is not None:
        st.sidebar.error(person.problem, icon=":material/lock:")
        return
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
