"""A small, real OpenID Connect provider on 127.0.0.1, for signing in to the app in tests.

`Issuer` runs the authorization-code flow as a hosted provider does: discovery, a JWKS with a
fresh RSA key, a sign-in page that asks only for an email address, PKCE (S256), client
authentication (client_secret_basic or client_secret_post), RS256 id tokens with the nonce,
userinfo, and, when asked for, RP-initiated logout. The same email always gets the same
`sub`, so a person who signs in twice is the same person. No password: whoever types an
address is that person, which is the point in a test and the reason it serves no one else.

    with Issuer() as issuer:
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(auth_secrets(issuer))
        # streamlit run APP.py ... --secrets.files <secrets>; then in Playwright:
        sign_in(page, "alice@example.com")  # clicks the app's "Sign in", fills the form

Pointing `streamlit run` at a secrets file outside the app's `.streamlit/` (Streamlit 1.67,
read in streamlit/config.py and streamlit/runtime/secrets.py, and tried):

- The config option `secrets.files` lists the secrets files (TOML files or folders of
  Kubernetes-style secrets), later ones winning. Its default is `~/.streamlit/secrets.toml`,
  `$CWD/.streamlit/secrets.toml` and the script's folder's `.streamlit/secrets.toml`.
  Setting it replaces that list, so st.secrets then reads only the files named.
- As a flag: `streamlit run streamlit_app.py --secrets.files /tmp/x/secrets.toml`
  (repeat the flag for several files).
- As an environment variable: `STREAMLIT_SECRETS_FILES=/tmp/x/secrets.toml`; several files
  are separated by whitespace (click splits it), so the paths must not hold spaces. This
  form suits `benchmarks.server.serve(folder, STREAMLIT_SECRETS_FILES=...)`, which starts
  the real app with cwd=ROOT and passes extra environment variables.
- A `[secrets] files = [...]` table in a `.streamlit/config.toml` works too, but config.toml
  is read only from ~/.streamlit, the working directory and the script's folder; for
  streamlit_app.py run with cwd=ROOT, that is the repository's own config.
- (A scratch app in tmp_path could simply have tmp_path/.streamlit/secrets.toml, the
  script-level default; the flag above is what also works for the real app.)
- The app's own settings reader (`classifier.config.secrets_files`) does not follow
  `secrets.files`: it keeps reading `.streamlit/secrets.toml` for `[connections.history]`.

How Streamlit signs in against it:

- `redirect_uri` must be `http://<host the browser uses>:<app port>/oauth2callback`.
  Streamlit replaces a literal `{port}` in it with `server.port`, so `auth_secrets(issuer)`
  writes `http://127.0.0.1:{port}/oauth2callback` and needs no port known in advance. The
  host must be the one in the browser's address bar (127.0.0.1, not localhost): the state
  of the sign-in lives in a session cookie of that host, and a callback to another host
  fails (the app logs "Missing provider for OAuth callback" and stays signed out).
- Plain http on 127.0.0.1 works: Streamlit does not mark its cookies Secure without
  `server.sslCertFile`, and Chromium treats 127.0.0.1 as a secure context.
- Streamlit asks for scope `openid email profile` with `prompt=select_account`, and uses
  PKCE S256 because the discovery document offers it. Authlib authenticates at the token
  endpoint with client_secret_basic and checks the id token (signature by `kid` from the
  JWKS, iss, aud, exp, iat, nonce, at_hash); it never calls userinfo.
- `st.user` is then the id token's claims (iss, sub, aud, email, email_verified, name,
  nonce, iat, exp, auth_time, at_hash) plus `is_logged_in: True` and `provider: "default"`;
  `st.user.to_dict()` also holds `tokens: {}`. Streamlit keeps them in signed, HttpOnly
  cookies of the app's host (`_streamlit_user`, `_streamlit_user_tokens`) for 30 days, per
  browser context: a second Playwright context is a second person. A new session (a page
  load) reads the cookie only if the page's origin is the redirect_uri's origin.
- Without an `[auth]` table in the secrets, `st.user` is empty and `st.user.is_logged_in`
  raises AttributeError; `st.user.get("is_logged_in", False)` works either way.
- `st.logout()` clears the cookies and reloads the app at `/`. With `end_session=True` the
  issuer advertises an end_session_endpoint and Streamlit first sends the browser there
  (with `post_logout_redirect_uri` = the redirect_uri and `id_token_hint`); the issuer
  sends it back to /oauth2callback, which Streamlit, finding no sign-in under way, answers
  with a redirect to `/` (and a logged warning about a stale callback).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

CODE_LIFETIME = 60  # seconds an authorization code may wait for its exchange
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

_SIGN_IN_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in · test issuer</title></head>
<body>
<main>
<h1>Sign in</h1>
<p>to {client_id}</p>
<form method="post" action="/authorize">
<input type="hidden" name="request" value="{request}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="off" required autofocus>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
"""


@dataclass
class _Grant:
    """What a sign-in request carries from /authorize to the code's exchange at /token."""

    client_id: str
    redirect_uri: str
    state: str | None
    nonce: str | None
    scope: str
    code_challenge: str | None
    code_challenge_method: str
    email: str = ""
    issued: float = field(default_factory=time.time)


class Issuer:
    """An OpenID Connect provider serving one client on a free port of 127.0.0.1.

    Use it as a context manager; `url` is its issuer identifier and `metadata_url` its
    discovery document (Streamlit's `server_metadata_url`).

    Args:
        client_id: The one client it knows.
        client_secret: That client's secret; random unless given.
        end_session: Advertise an end_session_endpoint (RP-initiated logout) at /logout.
        redirect_uris: The redirect URIs the client may use; None allows any http(s) URI on
            a loopback host, as providers do for native apps (RFC 8252).
        token_lifetime: Seconds the id token and the access token are valid.
    """

    def __init__(
        self,
        client_id: str = "streamlit-test-app",
        client_secret: str | None = None,
        *,
        end_session: bool = False,
        redirect_uris: tuple[str, ...] | None = None,
        token_lifetime: int = 3600,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(32)
        self.end_session = end_session
        self.redirect_uris = redirect_uris
        self.token_lifetime = token_lifetime
        self.key = RSAKey.import_key(
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"},
        )
        self.sign_ins: list[str] = []  # the emails signed in, in order
        self.sign_outs: list[str] = []  # the `sub` of each RP-initiated logout
        self._lock = threading.Lock()
        self._requests: dict[str, _Grant] = {}  # sign-in pages shown, by hidden request id
        self._codes: dict[str, _Grant] = {}  # authorization codes not yet exchanged
        self._access_tokens: dict[str, tuple[str, float]] = {}  # token -> (email, expiry)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- Lifecycle ------------------------------------------------------------------------

    def start(self) -> Issuer:
        """Start serving on a free port of 127.0.0.1, in a background thread."""
        handler = type("Handler", (_Handler,), {"issuer": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(  # polls every 50 ms, so that close() is quick
            target=self._server.serve_forever, args=(0.05,), name="oidc-issuer", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Issuer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The issuer identifier, e.g. http://127.0.0.1:41234 (the `iss` of its tokens)."""
        if self._server is None:
            raise RuntimeError("The issuer is not running; use it in a `with` block.")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        """Where the discovery document is: Streamlit's `server_metadata_url`."""
        return f"{self.url}/.well-known/openid-configuration"

    # --- Identity -------------------------------------------------------------------------

    @staticmethod
    def subject(email: str) -> str:
        """The `sub` of a person: opaque, the same for an address in any case, issuer or run."""
        return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]

    @staticmethod
    def name(email: str) -> str:
        """A display name from the address's local part: mary.jane@x → Mary Jane."""
        local = email.split("@", 1)[0]
        return " ".join(part.capitalize() for part in re.split(r"[._+-]+", local) if part)

    def user_claims(self, email: str) -> dict[str, Any]:
        """The claims about a person, as in the id token and from userinfo."""
        return {
            "sub": self.subject(email),
            "email": email,
            "email_verified": True,
            "name": self.name(email),
        }

    def metadata(self) -> dict[str, Any]:
        """The discovery document (OpenID Connect Discovery 1.0)."""
        document = {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "claims_supported": [
                *("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"),
                *("email", "email_verified", "name"),
            ],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
            ],
            "code_challenge_methods_supported": ["S256", "plain"],
        }
        if self.end_session:
            document["end_session_endpoint"] = f"{self.url}/logout"
        return document

    def jwks(self) -> dict[str, Any]:
        """The public signing keys."""
        return {"keys": [self.key.as_dict(private=False)]}

    # --- The flow, without HTTP -----------------------------------------------------------

    def _redirect_allowed(self, uri: str) -> bool:
        if self.redirect_uris is not None:
            return uri in self.redirect_uris
        parts = urlsplit(uri)
        return parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS

    def _begin(self, params: dict[str, str]) -> tuple[str, str]:
        """Check an authorization request.

        Returns ("page", the id of the sign-in page to show), ("redirect", an error redirect
        to the client) or ("error", a message for the person).
        """
        client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri", "")
        # A bad client or redirect URI is told to the person, never redirected to.
        if client_id != self.client_id:
            return "error", f"Unknown client_id {client_id!r}."
        if not self._redirect_allowed(redirect_uri):
            return "error", f"The redirect_uri {redirect_uri!r} is not registered."
        grant = _Grant(
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=params.get("state"),
            nonce=params.get("nonce"),
            scope=params.get("scope", ""),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method", "plain"),
        )
        # Other errors go back to the client, as the provider's answer (RFC 6749 4.1.2.1).
        if params.get("response_type") != "code":
            return "redirect", _error(grant, "unsupported_response_type")
        if "openid" not in grant.scope.split():
            return "redirect", _error(grant, "invalid_scope")
        if grant.code_challenge and grant.code_challenge_method not in ("S256", "plain"):
            return "redirect", _error(grant, "invalid_request")
        request = secrets.token_urlsafe(16)
        with self._lock:
            self._requests[request] = grant
        return "page", request

    def _approve(self, request: str, email: str) -> str | None:
        """Sign a person in on a shown page; return where to send the browser (code, state)."""
        with self._lock:
            grant = self._requests.pop(request, None)
        if grant is None or "@" not in email.strip():
            return None
        grant.email = email.strip()
        grant.issued = time.time()
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = grant
            self.sign_ins.append(grant.email)
        query = {"code": code, **({"state": grant.state} if grant.state is not None else {})}
        return _with_query(grant.redirect_uri, query)

    def _exchange(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict]:
        """Exchange an authorization code for tokens; return (HTTP status, JSON body)."""
        client_id, secret = basic or (form.get("client_id"), form.get("client_secret"))
        if client_id != self.client_id or not secrets.compare_digest(
            secret or "", self.client_secret
        ):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # a code is good once
        if (
            grant is None
            or grant.client_id != client_id
            or grant.redirect_uri != form.get("redirect_uri")
            or time.time() - grant.issued > CODE_LIFETIME
        ):
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier")
        if grant.code_challenge:
            expected = verifier or ""
            if grant.code_challenge_method == "S256":
                expected = _b64(hashlib.sha256(expected.encode()).digest())
            if not verifier or not secrets.compare_digest(expected, grant.code_challenge):
                return 400, {"error": "invalid_grant", "error_description": "PKCE failed"}
        elif verifier:
            return 400, {"error": "invalid_grant", "error_description": "no PKCE challenge"}
        now = int(time.time())
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access_token] = (grant.email, now + self.token_lifetime)
        claims = {
            "iss": self.url,
            "aud": client_id,
            "iat": now,
            "auth_time": int(grant.issued),
            "exp": now + self.token_lifetime,
            **self.user_claims(grant.email),
            # at_hash: the left half of the access token's SHA-256 (OIDC Core 3.1.3.6).
            "at_hash": _b64(hashlib.sha256(access_token.encode()).digest()[:16]),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        id_token = jwt.encode({"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}, claims, self.key)
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": grant.scope,
            "id_token": id_token,
        }

    def _userinfo(self, access_token: str) -> dict[str, Any] | None:
        with self._lock:
            email, expiry = self._access_tokens.get(access_token, ("", 0))
        return self.user_claims(email) if email and expiry > time.time() else None

    def _logout(self, params: dict[str, str]) -> tuple[str, str]:
        """RP-initiated logout: ("redirect", URI) back to the app, or ("page", message)."""
        hint = params.get("id_token_hint")
        subject = ""
        if hint:
            try:
                subject = jwt.decode(hint, self.key).claims.get("sub", "")
            except JoseError:
                return "page", "The id_token_hint is not one of this issuer's tokens."
        with self._lock:
            self.sign_outs.append(subject)
        target = params.get("post_logout_redirect_uri")
        if target and self._redirect_allowed(target):
            state = params.get("state")
            return "redirect", _with_query(target, {"state": state} if state else {})
        return "page", "You are signed out."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _error(grant: _Grant, code: str) -> str:
    """The redirect that tells the client its request failed."""
    state = {"state": grant.state} if grant.state is not None else {}
    return _with_query(grant.redirect_uri, {"error": code, **state})


def _with_query(uri: str, params: dict[str, str]) -> str:
    if not params:
        return uri
    return f"{uri}{'&' if urlsplit(uri).query else '?'}{urlencode(params)}"


def _single(values: dict[str, list[str]]) -> dict[str, str]:
    return {name: items[0] for name, items in values.items()}


class _Handler(BaseHTTPRequestHandler):
    """The issuer's HTTP endpoints; `issuer` is set on the subclass made by Issuer.start."""

    issuer: Issuer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = _single(parse_qs(parts.query))
        routes: dict[str, Callable[[], None]] = {
            "/.well-known/openid-configuration": lambda: self._json(200, self.issuer.metadata()),
            "/jwks": lambda: self._json(200, self.issuer.jwks()),
            "/authorize": lambda: self._authorize(params),
            "/userinfo": self._userinfo,
            "/logout": lambda: self._logout(params),
        }
        route = routes.get(parts.path)
        if route is None or (parts.path == "/logout" and not self.issuer.end_session):
            self._page(404, "Not found.")
        else:
            route()

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        form = _single(parse_qs(self.rfile.read(length).decode()))
        if path == "/authorize":
            target = self.issuer._approve(form.get("request", ""), form.get("email", ""))
            if target is None:
                self._page(400, "This sign-in page has expired or the email is not valid.")
            else:
                self._redirect(target)
        elif path == "/token":
            self._json(*self.issuer._exchange(form, self._basic_credentials()))
        elif path == "/userinfo":
            self._userinfo()
        else:
            self._page(404, "Not found.")

    # --- Endpoints ------------------------------------------------------------------------

    def _authorize(self, params: dict[str, str]) -> None:
        outcome, value = self.issuer._begin(params)
        if outcome == "page":
            body = _SIGN_IN_PAGE.format(
                client_id=html.escape(self.issuer.client_id), request=html.escape(value)
            )
            self._send(200, body.encode(), "text/html; charset=utf-8")
        elif outcome == "redirect":
            self._redirect(value)
        else:
            self._page(400, value)

    def _userinfo(self) -> None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        claims = self.issuer._userinfo(token) if scheme.lower() == "bearer" else None
        if claims is None:
            self._json(401, {"error": "invalid_token"}, {"WWW-Authenticate": "Bearer"})
        else:
            self._json(200, claims)

    def _logout(self, params: dict[str, str]) -> None:
        outcome, value = self.issuer._logout(params)
        if outcome == "redirect":
            self._redirect(value)
        else:
            self._page(200, value)

    # --- Helpers --------------------------------------------------------------------------

    def _basic_credentials(self) -> tuple[str, str] | None:
        """The client id and secret of an `Authorization: Basic` header (RFC 6749 2.3.1)."""
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        return unquote_plus(user), unquote_plus(password)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _page(self, status: int, message: str) -> None:
        body = f"<!doctype html><title>Test issuer</title><p>{html.escape(message)}</p>"
        self._send(status, body.encode(), "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self._send(302, b"", "text/plain", {"Location": location})

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows failures, not every request


def auth_secrets(issuer: Issuer, app_port: int | None = None, host: str = "127.0.0.1") -> str:
    """Return the `[auth]` table of a Streamlit secrets file that signs in with `issuer`.

    Args:
        issuer: The running issuer.
        app_port: The app's port; None writes `{port}`, which Streamlit fills in with its
            own `server.port`.
        host: The app's host as the browser reaches it (the auth cookies are this host's).
    """
    port = "{port}" if app_port is None else str(app_port)
    values = {
        "redirect_uri": f"http://{host}:{port}/oauth2callback",
        "cookie_secret": secrets.token_urlsafe(48),
        "client_id": issuer.client_id,
        "client_secret": issuer.client_secret,
        "server_metadata_url": issuer.metadata_url,
    }
    # For ASCII text, json.dumps writes a TOML basic string (the two escape alike).
    return "[auth]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def sign_in(page, email: str, *, button: str | None = "Sign in", timeout: float = 30_000) -> None:
    """Sign in as `email` in a Playwright page and wait until the app is back.

    Args:
        page: A page on the app, or already on the issuer's sign-in page.
        email: Who to be.
        button: The name of the app's button that calls st.login(), clicked first; None when
            the page is already on the issuer's form.
        timeout: Milliseconds for each step.

    Returns once the browser is back on the app (at `/`), before the new session has drawn
    the page: wait for what the app shows a signed-in person.
    """
    if button is not None:
        app = _origin(page.url)
        page.get_by_role("button", name=button, exact=True).click(timeout=timeout)
        page.wait_for_url(re.compile(r"/authorize\?"), timeout=timeout)
    else:
        # Back where the sign-in began: the host of the redirect_uri the issuer got.
        app = _origin(_single(parse_qs(urlsplit(page.url).query))["redirect_uri"])
    page.get_by_label("Email").fill(email, timeout=timeout)
    page.get_by_role("button", name="Sign in", exact=True).click(timeout=timeout)
    # The issuer redirects to /oauth2callback, which sets the cookies and redirects to /.
    page.wait_for_url(
        lambda url: _origin(url) == app and "/oauth2callback" not in url, timeout=timeout
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
