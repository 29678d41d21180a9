"""The test OpenID Connect provider: by hand over HTTP, and signing in to a real Streamlit app.

The browser test uses Debian's Chromium (/usr/bin/chromium). Without it, it skips, except
with CI=true, where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import secrets
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from benchmarks import server as server_tools
from tests.conftest import ROOT
from tests.oidc_issuer import Issuer, auth_secrets, sign_in
from tests.test_browser import _require_chromium

CALLBACK = "http://127.0.0.1:8501/oauth2callback"  # nothing listens: the test reads the redirect


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 surfaces as an HTTPError whose Location the test reads


_opener = urllib.request.build_opener(_NoRedirects)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    """Return (status, headers, body) of a GET, without following redirects."""
    return _call(urllib.request.Request(url, headers=headers or {}))


def _post(url: str, form: dict[str, str], headers: dict[str, str] | None = None):
    """Return (status, headers, body) of a form POST, without following redirects."""
    return _call(urllib.request.Request(url, data=urlencode(form).encode(), headers=headers or {}))


def _call(request: urllib.request.Request) -> tuple[int, dict, bytes]:
    try:
        with _opener.open(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _authorize(issuer: Issuer, email: str, **extra: str) -> tuple[str, dict[str, str]]:
    """Go through the sign-in page as a browser would; return (code, the request's params)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    params = {
        "response_type": "code",
        "client_id": issuer.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid email profile",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
        **extra,
    }
    status, _, page = _get(f"{issuer.url}/authorize?{urlencode(params)}")
    assert status == 200
    page = page.decode()
    assert '<label for="email">Email</label>' in page
    assert re.search(r"<button[^>]*>Sign in</button>", page)
    request = re.search(r'name="request" value="([^"]+)"', page)[1]
    status, headers, _ = _post(f"{issuer.url}/authorize", {"request": request, "email": email})
    assert status == 302
    location = urlsplit(headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert query["state"] == params["state"]
    return query["code"], {**params, "code_verifier": verifier}


def _exchange(issuer: Issuer, code: str, params: dict[str, str], changes: dict | None = None):
    """Exchange a code as Streamlit does (client_secret_basic, PKCE); `changes` spoil the form."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": params["redirect_uri"],
        "code_verifier": params["code_verifier"],
        **(changes or {}),
    }
    return _post(f"{issuer.url}/token", form, _basic(issuer.client_id, issuer.client_secret))


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    with Issuer() as running:
        yield running


def test_discovery_and_a_code_exchange_by_hand(issuer):
    status, _, body = _get(issuer.metadata_url)
    assert status == 200
    metadata = json.loads(body)
    assert metadata["issuer"] == issuer.url
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        metadata["token_endpoint_auth_methods_supported"]
    )
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert "end_session_endpoint" not in metadata  # only with Issuer(end_session=True)
    _, _, body = _get(metadata["jwks_uri"])
    keys = KeySet.import_key_set(json.loads(body))
    assert [key.as_dict() for key in keys] == [issuer.key.as_dict(private=False)]  # no private

    code, params = _authorize(issuer, "mary.jane@example.com")
    status, _, body = _exchange(issuer, code, params)
    assert status == 200, body
    tokens = json.loads(body)
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 3600)

    token = jwt.decode(tokens["id_token"], keys, algorithms=["RS256"])
    assert token.header["kid"] == issuer.key.kid
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer.url},
        aud={"essential": True, "value": issuer.client_id},
        sub={"essential": True, "value": Issuer.subject("mary.jane@example.com")},
        nonce={"essential": True, "value": params["nonce"]},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(token.claims)
    assert token.claims["email"] == "mary.jane@example.com"
    assert token.claims["email_verified"] is True
    assert token.claims["name"] == "Mary Jane"

    status, _, body = _get(
        metadata["userinfo_endpoint"], {"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert status == 200
    assert json.loads(body) == {
        "sub": token.claims["sub"],
        "email": "mary.jane@example.com",
        "email_verified": True,
        "name": "Mary Jane",
    }
    assert issuer.sign_ins == ["mary.jane@example.com"]


def test_the_same_person_keeps_their_subject_and_another_gets_another(issuer):
    subjects = []
    for email in ("alice@example.com", "bob@example.com", "Alice@Example.com"):
        code, params = _authorize(issuer, email)
        _, _, body = _exchange(issuer, code, params)
        subjects.append(jwt.decode(json.loads(body)["id_token"], issuer.key).claims["sub"])
    assert subjects[0] == subjects[2] != subjects[1]


def test_client_secret_post_authenticates_too(issuer):
    code, params = _authorize(issuer, "alice@example.com")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": params["redirect_uri"],
        "code_verifier": params["code_verifier"],
        "client_id": issuer.client_id,
        "client_secret": issuer.client_secret,
    }
    status, _, body = _post(f"{issuer.url}/token", form)
    assert status == 200, body


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"code_verifier": "not-the-verifier"}, 400, "invalid_grant"),
        ({"code_verifier": ""}, 400, "invalid_grant"),
        ({"redirect_uri": "http://127.0.0.1:9999/oauth2callback"}, 400, "invalid_grant"),
        ({"code": "made-up"}, 400, "invalid_grant"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
    ids=["wrong-verifier", "no-verifier", "other-redirect-uri", "unknown-code", "password-grant"],
)
def test_a_bad_exchange_is_refused(issuer, changes, status, error):
    code, params = _authorize(issuer, "alice@example.com")
    answer, _, body = _exchange(issuer, code, params, changes)
    assert (answer, json.loads(body)["error"]) == (status, error)


def test_a_code_works_once_and_only_for_its_client(issuer):
    code, params = _authorize(issuer, "alice@example.com")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    wrong = _post(f"{issuer.url}/token", form, _basic(issuer.client_id, "wrong"))
    assert wrong[0] == 401
    assert _exchange(issuer, code, params)[0] == 200
    assert _exchange(issuer, code, params)[0] == 400  # replayed
    status, headers, _ = _get(f"{issuer.url}/userinfo", {"Authorization": "Bearer made-up"})
    assert (status, headers["WWW-Authenticate"]) == (401, "Bearer")


def test_an_unknown_redirect_uri_is_shown_not_followed(issuer):
    query = urlencode(
        {
            "response_type": "code",
            "client_id": issuer.client_id,
            "redirect_uri": "https://attacker.example/callback",
            "scope": "openid",
        }
    )
    status, headers, body = _get(f"{issuer.url}/authorize?{query}")
    assert status == 400 and "Location" not in headers
    assert b"not registered" in body


def test_the_secrets_name_the_issuer(issuer):
    auth = tomllib.loads(auth_secrets(issuer))["auth"]
    assert auth["redirect_uri"] == "http://127.0.0.1:{port}/oauth2callback"  # Streamlit fills it
    assert tomllib.loads(auth_secrets(issuer, 8765))["auth"]["redirect_uri"] == (
        "http://127.0.0.1:8765/oauth2callback"
    )
    assert (auth["client_id"], auth["client_secret"]) == (issuer.client_id, issuer.client_secret)
    assert auth["server_metadata_url"] == issuer.metadata_url
    assert len(auth["cookie_secret"]) >= 32


# --- A real `streamlit run` app signing in through Chromium -------------------------------

SCRATCH_APP = """\
import json

import streamlit as st

if not st.user.is_logged_in:
    if st.button("Sign in"):
        st.login()
else:
    st.write(f"Signed in as {st.user.email}")
    st.text(f"iss: {st.user.iss}")
    st.text(f"sub: {st.user.sub}")
    st.text("user: " + json.dumps(st.user.to_dict(), sort_keys=True))
    if st.button("Sign out"):
        st.logout()
"""


@contextlib.contextmanager
def _streamlit(app: Path, secrets_file: Path) -> Iterator[str]:
    """Run `streamlit run app` from the repository's folder with its secrets elsewhere."""
    port = server_tools._free_port()
    log = app.parent / "server.log"  # a file, not a pipe: a full pipe would stall the server
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(app),
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--secrets.files", str(secrets_file)],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    server = server_tools.Server(f"http://127.0.0.1:{port}", process.pid, log)
    with server_tools.running(process, server, server.alive, "streamlit", seconds=60):
        yield server.url


def _user(page) -> dict:
    """What st.user holds in the page's session, as the scratch app shows it."""
    return json.loads(page.get_by_text(re.compile(r"^user: ")).inner_text().removeprefix("user: "))


@pytest.mark.browser
@pytest.mark.parametrize("end_session", [False, True], ids=["local-logout", "rp-logout"])
def test_two_people_sign_in_and_out_of_a_real_app(tmp_path, end_session):
    _require_chromium()
    app = tmp_path / "app.py"
    app.write_text(SCRATCH_APP)
    with (
        Issuer(end_session=end_session) as issuer,
        contextlib.ExitStack() as stack,
    ):
        secrets_file = tmp_path / "secrets.toml"
        secrets_file.write_text(auth_secrets(issuer))
        url = stack.enter_context(_streamlit(app, secrets_file))
        browser = stack.enter_context(server_tools.chromium())

        def open_app():
            context = stack.enter_context(contextlib.closing(browser.new_context()))
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_role("button", name="Sign in").wait_for()
            return page

        alice, bob = open_app(), open_app()  # two browser contexts: two people's cookies
        sign_in(alice, "alice@example.com")
        alice.get_by_text("Signed in as alice@example.com").wait_for()
        sign_in(bob, "bob@example.com")
        bob.get_by_text("Signed in as bob@example.com").wait_for()

        alice_user, bob_user = _user(alice), _user(bob)
        assert alice_user["is_logged_in"] is True
        assert alice_user["iss"] == issuer.url
        assert alice_user["sub"] == Issuer.subject("alice@example.com") != bob_user["sub"]
        assert (alice_user["name"], alice_user["email_verified"]) == ("Alice", True)
        assert alice_user["provider"] == "default"
        alice.get_by_text(f"sub: {alice_user['sub']}").wait_for()

        alice.reload()  # a new session reads the identity cookie
        alice.get_by_text("Signed in as alice@example.com").wait_for()

        # st.logout(): /auth/logout clears the cookies and redirects (through the issuer's
        # end_session_endpoint, if it has one) to the app's /, which loads anew.
        with alice.expect_navigation(url=f"{url}/"):
            alice.get_by_role("button", name="Sign out").click()
        alice.get_by_role("button", name="Sign in").wait_for()
        assert alice.get_by_text("Signed in as").count() == 0
        assert "_streamlit_user" not in {cookie["name"] for cookie in alice.context.cookies()}
        assert issuer.sign_outs == ([alice_user["sub"]] if end_session else [])

        bob.reload()  # bob's own cookies: still signed in
        bob.get_by_text("Signed in as bob@example.com").wait_for()

        sign_in(alice, "alice@example.com")  # the same person again: the same subject
        alice.get_by_text("Signed in as alice@example.com").wait_for()
        assert _user(alice)["sub"] == alice_user["sub"]
        assert issuer.sign_ins == ["alice@example.com", "bob@example.com", "alice@example.com"]
