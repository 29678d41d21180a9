"""Who is calling: the same rules as the pages, with an API token in place of sign-in.

- `private` (each person's own history): every call needs a token (`Authorization: Bearer
  cls_...`), made on the API page by a signed-in person; it acts exactly as that person's
  pages do: their rows, their models, and everyone's if CLASSIFIER_ADMINS names them.
- `shared`: open, like the page; a token, if sent, must be valid and names the owner of
  what is saved.
- `off`: open for classifying; nothing is saved and there is no history to read.

A secrets file that cannot be trusted closes the API as it closes every history
(503 with the reason): guessing would make a private server a shared one.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from api.errors import ApiError
from classifier import history
from classifier.config import get_settings
from classifier.history import owners, tokens
from ui import account

TOKEN_NEEDED = (
    "This server keeps each person's history private: send an API token as "
    "“Authorization: Bearer <token>”. Sign in to the app and make one on its API page."
)
BAD_TOKEN = "This API token is not valid: it is mistyped, or it was revoked."
NO_TOKENS_HERE = (
    "This server keeps each person's history private, and sign-in is not configured, so "
    "nobody can make the API token it needs."
)


@dataclass(frozen=True)
class Caller:
    """What a request may see and do."""

    mode: str  # the history mode: "private", "shared" or "off"
    history: owners.Scope | None  # whose rows it reads and owns; None: no history
    models: owners.Scope  # whose added and taught models it may use
    owner: str | None = None  # the token's owner, if a token was sent

    @property
    def can_save(self) -> bool:
        return self.history is not None

    def why_not_saved(self) -> str:
        """Say why nothing is saved for this caller (only when `can_save` is False)."""
        return "History is off on this server: nothing is saved, and there is none to read."

    def store(self) -> history.HistoryStore:
        """Return the history as this caller may see and change it.

        Raises:
            ApiError: 403 when there is none (history off).
        """
        if self.history is None:
            raise ApiError(403, self.why_not_saved())
        return history.shared_store(get_settings().history_url()).scoped(self.history)


def bearer(request: Request) -> str | None:
    """Return the token in the Authorization header, or None if there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "Send the API token as “Authorization: Bearer <token>”.")
    return value.strip()


def refuse_other_sites(request: Request) -> None:
    """Refuse a change sent by a browser from another site's page (a form posted across
    sites, which would save or delete as whoever the server lets in); programs send no
    Origin header, and the app's own pages are on its own origin.

    Raises:
        ApiError: 403 for such a request.
    """
    origin = request.headers.get("origin")
    if origin is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    own = f"{request.url.scheme}://{request.url.netloc}".lower()
    forwarded = request.headers.get("host", "").lower()
    sender = origin.lower().rstrip("/")
    if sender != own and sender.partition("://")[2] != forwarded:
        raise ApiError(403, "Requests sent by another site's web page are refused here.")


def identify(request: Request) -> Caller:
    """Return who a request acts as, by this server's mode and the token it carries.

    Raises:
        ApiError: 401 for a missing (private mode) or unknown token; 503 when the app's
            secrets cannot be trusted.
    """
    setup = account.sign_in_setup()
    if setup.problem is not None:
        raise ApiError(503, setup.problem)
    settings = get_settings()
    if settings.history_problem is not None:
        raise ApiError(
            503, f"The app's secrets cannot name the history database, so {account.NOTHING_KEPT}."
        )
    refuse_other_sites(request)
    mode = account.mode(setup)
    secret = bearer(request)
    token = None
    if secret is not None:  # in every mode, a token sent must be one
        token = tokens.find(history.shared_store(settings.history_url()), secret)
        if token is None:
            raise ApiError(401, BAD_TOKEN)
    if mode == "off":
        return Caller(mode, None, owners.Scope.nobodys())
    if token is None:
        if mode == "private":
            raise ApiError(401, TOKEN_NEEDED if setup.configured else NO_TOKENS_HERE)
        return Caller(mode, owners.EVERYONE, owners.EVERYONE)
    admin = owners.is_admin(token.owner, token.verified_email, settings.admins)
    if mode == "shared" or admin:
        scope = owners.Scope(token.owner, everyone=True)
    else:
        scope = owners.Scope.own(token.owner)
    return Caller(mode, scope, scope, token.owner)
