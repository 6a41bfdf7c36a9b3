"""A small, real OpenID Connect provider on loopback for the Google sign-in tests.

It serves discovery, a JWKS, an auto-approving `/authorize` and a `/token` endpoint that checks the
client's credentials, the redirect URI and the PKCE verifier, spends each code once, and returns an
RS256-signed ID token. `misbehave` makes it break one rule at a time, as a hostile or broken
provider would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.loopback import serve_asgi

CLIENT_ID = "clearbg-test-client.apps.example"
CLIENT_SECRET = "loopback-client-secret-0123456789"
# What `misbehave` may hold: each breaks one thing the relying party must check.
MISBEHAVIOURS = frozenset(
    {"wrong_key", "wrong_audience", "wrong_issuer", "expired", "wrong_nonce", "slow_token", "deny", "foreign_discovery", "stale_auth"}
)


@dataclass
class TestUser:
    """The person the provider signs in (every `/authorize` approves them)."""

    __test__ = False  # not a pytest test class
    sub: str = "google-sub-1001"
    email: str = "ada@example.com"
    email_verified: bool = True
    name: str = "Ada Lovelace"


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    user: TestUser
    auth_time: int | None = None  # set when the client asked for a fresh sign-in (max_age or prompt=login)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _oauth_error(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status, headers={"Cache-Control": "no-store"})


@dataclass
class OIDCProvider:
    """The provider's keys, behaviour and bookkeeping; `serve()` runs it on a free 127.0.0.1 port."""

    user: TestUser = field(default_factory=TestUser)
    misbehave: set[str] = field(default_factory=set)
    kid: str = "key-1"
    auth_methods: list[str] = field(default_factory=lambda: ["client_secret_basic", "client_secret_post"])
    hits: Counter = field(default_factory=Counter)
    url: str = ""

    def __post_init__(self) -> None:
        self.key = RSAKey.generate_key(2048, {"kid": self.kid, "use": "sig", "alg": "RS256"})
        # A forger's key published nowhere, under the real key's id.
        self.forged_key = RSAKey.generate_key(2048, {"kid": self.kid, "use": "sig", "alg": "RS256"})
        self._codes: dict[str, _Grant] = {}
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        """Back to the well-behaved provider with the default user (between tests)."""
        self.user, self.misbehave = TestUser(), set()
        self.auth_methods = ["client_secret_basic", "client_secret_post"]
        self.hits.clear()
        self._codes.clear()

    def break_rule(self, name: str) -> None:
        """Misbehave in one of the `MISBEHAVIOURS` ways until `reset()`."""
        if name not in MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {name!r}")
        self.misbehave.add(name)

    def rotate_key(self) -> None:
        """Sign with a new key under a new key id from now on (as providers do every few weeks)."""
        self.kid = f"key-{secrets.token_hex(4)}"
        self.key = RSAKey.generate_key(2048, {"kid": self.kid, "use": "sig", "alg": "RS256"})

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    async def discovery(self, request: Request) -> Response:
        self.hits["discovery"] += 1
        return JSONResponse(
            {
                "issuer": "https://evil.example" if "foreign_discovery" in self.misbehave else self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": self.auth_methods,
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        self.hits["jwks"] += 1
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        """Approves at once: back to `redirect_uri` with a one-time code (or `error=access_denied`)."""
        params = request.query_params
        self.hits["authorize"] += 1
        if params.get("client_id") != CLIENT_ID or not params.get("redirect_uri"):
            return _oauth_error("invalid_request")
        if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256":
            return _oauth_error("invalid_request")
        if "openid" not in params.get("scope", "").split():
            return _oauth_error("invalid_scope")
        answer = {"state": params.get("state", "")}
        if "deny" in self.misbehave:
            answer["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(24)
            self._codes[code] = _Grant(
                client_id=CLIENT_ID,
                redirect_uri=params["redirect_uri"],
                challenge=params.get("code_challenge", ""),
                nonce=params.get("nonce"),
                user=TestUser(**vars(self.user)),
                auth_time=(int(time.time()) - (3600 if "stale_auth" in self.misbehave else 0))
                if params.get("max_age") is not None or params.get("prompt") == "login"
                else None,
            )
            answer["code"] = code
        return RedirectResponse(f"{params['redirect_uri']}?{urlencode(answer)}", status_code=302)

    def _client_id(self, request: Request, form) -> str | None:
        """The authenticated client (HTTP Basic or form credentials, as advertised), or None."""
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            method = "client_secret_basic"
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        else:
            method = "client_secret_post"
            client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        self.hits[f"auth:{method}"] += 1
        ok = client_id == CLIENT_ID and secrets.compare_digest(secret.encode(), CLIENT_SECRET.encode())
        return client_id if ok and method in self.auth_methods else None

    async def token(self, request: Request) -> Response:
        """Code for tokens: client, redirect URI and PKCE verifier checked; each code works once."""
        self.hits["token"] += 1
        form = await request.form()
        if self._client_id(request, form) is None:
            return _oauth_error("invalid_client", 401)
        grant = self._codes.pop(str(form.get("code", "")), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return _oauth_error("invalid_grant")
        verifier = str(form.get("code_verifier", ""))
        if form.get("redirect_uri") != grant.redirect_uri or _s256(verifier) != grant.challenge:
            return _oauth_error("invalid_grant")
        if "slow_token" in self.misbehave:
            await asyncio.sleep(2.0)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "openid email profile",
                "id_token": self.id_token(grant),
            },
            headers={"Cache-Control": "no-store"},
        )

    def id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        if "expired" in self.misbehave:
            now -= 3600
        claims = {
            "iss": "https://evil.example" if "wrong_issuer" in self.misbehave else self.url,
            "aud": "someone-else.apps.example" if "wrong_audience" in self.misbehave else grant.client_id,
            "sub": grant.user.sub,
            "email": grant.user.email,
            "email_verified": grant.user.email_verified,
            "name": grant.user.name,
            "iat": now,
            "exp": now + 600,
        }
        if grant.auth_time is not None:
            claims["auth_time"] = grant.auth_time
        if grant.nonce is not None:
            claims["nonce"] = "a-different-nonce" if "wrong_nonce" in self.misbehave else grant.nonce
        key = self.forged_key if "wrong_key" in self.misbehave else self.key
        return jwt.encode({"alg": "RS256", "kid": self.kid, "typ": "JWT"}, claims, key)

    @contextmanager
    def serve(self) -> Iterator[OIDCProvider]:
        """Run the provider with uvicorn in a background thread until the block ends."""
        with serve_asgi(self.app, "loopback OIDC provider") as url:
            self.url = url
            yield self
