"""Google sign-in: OpenID Connect authorization-code flow with PKCE (S256), through Authlib.

`state`, `nonce` and the PKCE `code_verifier` live between the two requests in a short-lived
(10 min) HMAC-signed cookie, HttpOnly, SameSite=Lax, path `/auth/google`, rather than in a
server-side session: there is no session middleware (Authlib's Starlette integration needs
itsdangerous and SessionMiddleware) and a stateless cookie means a failed or abandoned sign-in
writes nothing to the database. Signing stops a browser from forging the values; they need no
secrecy from the browser that holds them, since the verifier only helps together with the code
and the client secret, and the cookie binds the sign-in to the browser that started it (login CSRF).
Codes are single-use at the provider, so a replayed callback fails at the token endpoint.
"""

from __future__ import annotations

import functools
import hmac
import logging
import re
import secrets
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from clearbg_app.api.web.forms import offer_restore, read_form, redirect, same_origin
from clearbg_app.api.web.privacy import PRIVACY_CENTER, deletion_scheduled
from clearbg_app.clock import utcnow
from clearbg_app.db import session_scope
from clearbg_app.http import cookies
from clearbg_app.http.redirects import safe_next
from clearbg_app.services import accounts, deletion
from clearbg_app.services.deletion_lock import DeletionPending
from clearbg_app.services.errors import ServiceError
from clearbg_app.services.security import InvalidToken, sign, unsign
from clearbg_app.settings import Settings, get_settings
from clearbg_app.storage import get_blob_store

with warnings.catch_warnings():  # Authlib 1.9 prefers httpx2; the pinned httpx is its supported fallback
    warnings.filterwarnings("ignore", "The httpx module is deprecated", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

logger = logging.getLogger(__name__)

STATE_COOKIE = "clearbg_google"
STATE_COOKIE_PATH = "/auth/google"
STATE_PURPOSE = "google-sign-in"
STATE_MINUTES = 10
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
METADATA_TTL_SECONDS = 3600
LEEWAY_SECONDS = 60
DEFAULT_NEXT = "/account"
DELETE_PURPOSE = "delete"  # a fresh sign-in that confirms an account deletion
REAUTH_MAX_AGE = 300
NOT_ENABLED = "Google sign-in is not enabled on this server."
# Google issues ID tokens with either form of its issuer (see its OpenID Connect documentation).
ISSUER_ALIASES = {"https://accounts.google.com": ["accounts.google.com"]}

_metadata_cache: dict[str, tuple[float, dict]] = {}


class GoogleSignInFailed(Exception):
    """A sign-in that must not go on: a reason safe to log (no codes, tokens or emails), and where
    the browser goes with which `error` code for the page to explain."""

    def __init__(self, reason: str, *, error: str = "google_failed", page: str = "/login") -> None:
        super().__init__(reason)
        self.error, self.page = error, page


def clear_caches() -> None:
    """Forget the cached discovery documents and key sets (tests; a changed configuration)."""
    _metadata_cache.clear()


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


def _loggable(text: str) -> str:
    """Provider-sent or library text (like `access_denied`) cut down to harmless characters."""
    return re.sub(r"[^A-Za-z0-9_.:' -]", "?", text)[:80]


async def _get_json(client: httpx.AsyncClient, url: str) -> dict:
    response = await client.get(url)
    response.raise_for_status()
    document = response.json()
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


async def _cached_json(client: httpx.AsyncClient, url: str, *, refresh: bool = False) -> dict:
    """`url`'s JSON object, fetched at most once an hour per process unless `refresh`."""
    cached = _metadata_cache.get(url)
    if cached and not refresh and cached[0] > time.monotonic():
        return cached[1]
    document = await _get_json(client, url)
    _metadata_cache[url] = (time.monotonic() + METADATA_TTL_SECONDS, document)
    return document


async def _discovery(client: httpx.AsyncClient, settings: Settings) -> dict:
    """The provider's discovery document, checked to belong to the issuer it names (OIDC Discovery 4.3)."""
    url = settings.google_discovery_url
    try:
        document = await _cached_json(client, url)
    except (httpx.HTTPError, ValueError) as error:
        raise GoogleSignInFailed(f"discovery document unavailable ({type(error).__name__})") from None
    issuer = document.get("issuer")
    problem = None
    if not isinstance(issuer, str) or url != issuer.rstrip("/") + "/.well-known/openid-configuration":
        problem = "discovery document names another issuer"
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(document.get(field), str):
            problem = f"discovery document lacks {field}"
    if problem:
        _metadata_cache.pop(url, None)  # ask again next time rather than keep a bad document for an hour
        raise GoogleSignInFailed(problem)
    return document


def _auth_method(discovery: dict) -> str:
    supported = discovery.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    for method in ("client_secret_basic", "client_secret_post"):
        if method in supported:
            return method
    raise GoogleSignInFailed("token endpoint supports no client-secret authentication")


def _oauth_client(settings: Settings, discovery: dict) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret.get_secret_value(),
        scope="openid email profile",
        redirect_uri=settings.public_url.rstrip("/") + "/auth/google/callback",
        code_challenge_method="S256",
        token_endpoint_auth_method=_auth_method(discovery),
        timeout=HTTP_TIMEOUT,
    )


def _state_cookie_attributes() -> dict:
    return {"path": STATE_COOKIE_PATH, "httponly": True, "samesite": "lax", "secure": get_settings().is_production}


def _google_endpoint(handler: Callable[[Request, Settings], Awaitable[Response]]) -> Callable:
    """404 while Google sign-in is off; every failure a logged 303 to the page its error code names,
    with the state cookie dropped (each sign-in gets one try)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        settings = get_settings()
        if not settings.google_enabled:
            return PlainTextResponse(NOT_ENABLED, status_code=404)
        try:
            return await handler(request, settings)
        except GoogleSignInFailed as failure:
            refusal = failure
        except Exception as error:  # noqa: BLE001 - its text may hold an email or a token: log the type only
            refusal = GoogleSignInFailed(f"unexpected {type(error).__name__}")
        logger.warning("Google sign-in refused: %s", refusal)
        response = RedirectResponse(f"{refusal.page}?{urlencode({'error': refusal.error})}", status_code=303)
        response.delete_cookie(STATE_COOKIE, **_state_cookie_attributes())
        return response

    return endpoint


@_google_endpoint
async def google_login(request: Request, settings: Settings) -> Response:
    """Off to the provider with state, nonce and PKCE: GET ?next=/path to sign in, or POST from the
    sign-up page with `adult` and `accept` to create an account."""
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    if request.method == "POST":  # the sign-up page's form: the consents are ticked on our own page
        if not same_origin(request):
            raise GoogleSignInFailed("consent form sent from another site")
        params = await read_form(request)
        consents = {"adult": _flag(params.get("adult")), "accept": _flag(params.get("accept"))}
    else:  # a link can start a sign-in, never give consent
        params, consents = request.query_params, {"adult": False, "accept": False}
    extra = {}
    if request.method == "POST" and params.get("purpose") == DELETE_PURPOSE:  # the privacy center's deletion form
        if not _flag(params.get("confirm")):
            raise GoogleSignInFailed("deletion not confirmed", error="delete_unconfirmed", page=PRIVACY_CENTER)
        consents = {"purpose": DELETE_PURPOSE, "started": int(time.time())}
        extra = {"prompt": "login", "max_age": REAUTH_MAX_AGE}  # a fresh sign-in, proven by auth_time
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        discovery = await _discovery(http, settings)
    async with _oauth_client(settings, discovery) as client:
        url, _ = client.create_authorization_url(
            discovery["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce, **extra
        )
    saved = {"s": state, "n": nonce, "v": verifier, "next": safe_next(params.get("next"), DEFAULT_NEXT), **consents}
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        sign(STATE_PURPOSE, saved, expires_at=utcnow() + timedelta(minutes=STATE_MINUTES)),
        max_age=STATE_MINUTES * 60,
        **_state_cookie_attributes(),
    )
    return response


@dataclass(frozen=True)
class _Callback:
    """What a good callback proves: who the person is, and what they asked for at the start."""

    identity: accounts.ExternalIdentity
    next: str
    adult: bool
    accept: bool
    purpose: str = ""
    fresh: bool = False  # the provider says the person signed in after we asked (auth_time)


def _saved_state(request: Request) -> dict:
    """The state cookie's values, after checking the `state` parameter against it in constant time."""
    if not request.cookies.get(STATE_COOKIE):
        raise GoogleSignInFailed("no state cookie (started in another browser, or too long ago)")
    try:
        saved = unsign(STATE_PURPOSE, request.cookies[STATE_COOKIE], now=utcnow())
    except InvalidToken:
        raise GoogleSignInFailed("state cookie invalid or expired") from None
    given = request.query_params.get("state", "")
    if not hmac.compare_digest(given.encode(), str(saved.get("s", "")).encode()):
        raise GoogleSignInFailed("state does not match")
    return saved


async def _key_set(http: httpx.AsyncClient, uri: str, *, refresh: bool = False) -> KeySet:
    try:
        return KeySet.import_key_set(await _cached_json(http, uri, refresh=refresh))
    except (httpx.HTTPError, ValueError, KeyError, TypeError, JoseError) as error:
        raise GoogleSignInFailed(f"key set unavailable ({type(error).__name__})") from None


async def _id_token_claims(http: httpx.AsyncClient, settings: Settings, discovery: dict, token: dict, nonce: str):
    """The ID token's claims after checking signature (JWKS), issuer, audience, azp, times and nonce."""
    raw = token.get("id_token")
    if not isinstance(raw, str):
        raise GoogleSignInFailed("token response has no ID token")
    algorithms = discovery.get("id_token_signing_alg_values_supported") or ["RS256"]
    registry = JWSRegistry(algorithms=[alg for alg in algorithms if alg != "none"], strict_check_header=False)
    try:
        try:
            decoded = jwt.decode(raw, await _key_set(http, discovery["jwks_uri"]), registry=registry)
        except InvalidKeyIdError:  # the provider rotated its keys since we cached them
            decoded = jwt.decode(raw, await _key_set(http, discovery["jwks_uri"], refresh=True), registry=registry)
    except (JoseError, ValueError) as error:
        raise GoogleSignInFailed(f"ID token signature rejected ({_loggable(str(error))})") from None
    issuers = [discovery["issuer"], *ISSUER_ALIASES.get(discovery["issuer"], [])]
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {"iss": {"essential": True, "values": issuers}, "aud": {"essential": True, "value": settings.google_client_id}},
        {"nonce": nonce, "client_id": settings.google_client_id, "access_token": token.get("access_token")},
    )
    try:
        claims.validate(leeway=LEEWAY_SECONDS)
    except JoseError as error:
        raise GoogleSignInFailed(f"ID token rejected ({_loggable(str(error))})") from None
    return claims


def _display_name(raw: object) -> str:
    """Google's name cut to what ClearBG accepts, or "" (the account service then uses the email's
    local part) for one it refuses, such as an emoji joined with an invisible zero-width joiner."""
    try:
        return accounts.clean_display_name(str(raw or "")[: accounts.MAX_NAME])
    except accounts.AccountError:
        return ""


async def _verify_callback(request: Request, settings: Settings) -> _Callback:
    saved = _saved_state(request)
    params = request.query_params
    if params.get("error"):
        raise GoogleSignInFailed(f"provider answered error={_loggable(params['error'])}")
    code = params.get("code")
    if not code:
        raise GoogleSignInFailed("callback without a code")
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
        discovery = await _discovery(http, settings)
        try:
            async with _oauth_client(settings, discovery) as client:
                token = await client.fetch_token(
                    discovery["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=saved["v"],
                )
        except AuthlibBaseError as error:
            raise GoogleSignInFailed(f"token endpoint refused the code ({_loggable(error.error or '')})") from None
        except (httpx.HTTPError, ValueError) as error:
            raise GoogleSignInFailed(f"token endpoint unavailable ({type(error).__name__})") from None
        claims = await _id_token_claims(http, settings, discovery, token, saved["n"])
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        raise GoogleSignInFailed("ID token has no email")
    identity = accounts.ExternalIdentity(
        provider="google",
        subject=str(claims["sub"]),
        email=email,
        email_verified=claims.get("email_verified") is True,
        name=_display_name(claims.get("name")),
    )
    auth_time = claims.get("auth_time")
    started = saved.get("started")
    return _Callback(
        identity=identity,
        next=safe_next(saved.get("next"), DEFAULT_NEXT),
        adult=saved.get("adult") is True,
        accept=saved.get("accept") is True,
        purpose=str(saved.get("purpose", "")),
        fresh=isinstance(auth_time, int) and isinstance(started, int) and auth_time >= started - LEEWAY_SECONDS,
    )


def _record_sign_in(callback: _Callback, *, user_agent: str | None, ip: str | None) -> str:
    """The account for the identity (found, linked or created) and a new session; its cookie token."""
    try:
        with session_scope() as session:
            user = accounts.sign_in_with_identity(
                session, identity=callback.identity, adult_confirmed=callback.adult, policy_accepted=callback.accept
            )
            return accounts.start_session(session, user=user, user_agent=user_agent, ip=ip)
    except accounts.ConsentNeeded:
        raise GoogleSignInFailed(
            "a new account needs the sign-up confirmations", error="google_consent", page="/signup"
        ) from None
    except accounts.AccountError:
        if not callback.identity.email_verified:
            raise GoogleSignInFailed(
                "unverified Google address matches an existing account", error="google_unverified"
            ) from None
        raise GoogleSignInFailed("the account service refused the identity") from None


def _delete_after_reauth(callback: _Callback, session_token: str | None) -> Response:
    """The deletion a Google-only account confirmed by signing in again: only for the signed-in
    person's own linked identity, and only if the provider vouches the sign-in was fresh."""
    if not callback.fresh:
        raise GoogleSignInFailed("re-authentication not fresh (auth_time)", error="reauth_stale", page=PRIVACY_CENTER)
    with session_scope() as session:
        signed_in = accounts.resolve_session(session, token=session_token)
        if signed_in is None:
            raise GoogleSignInFailed("deletion confirmed without a session", error="reauth_signed_out")
        if not accounts.has_identity(session, user=signed_in.user, provider=callback.identity.provider, subject=callback.identity.subject):
            raise GoogleSignInFailed("re-authenticated as another identity", error="reauth_mismatch", page=PRIVACY_CENTER)
        try:
            scheduled = deletion.request_deletion(session, user=signed_in.user, store=get_blob_store(), reauthenticated=True)
        except ServiceError as error:
            return redirect(PRIVACY_CENTER, message=str(error))
    response = deletion_scheduled(scheduled)
    response.delete_cookie(STATE_COOKIE, **_state_cookie_attributes())
    return response


@_google_endpoint
async def google_callback(request: Request, settings: Settings) -> Response:
    """GET /auth/google/callback?code=&state=: verify everything, sign in, set the session cookie."""
    callback = await _verify_callback(request, settings)
    if callback.purpose == DELETE_PURPOSE:
        return await run_in_threadpool(_delete_after_reauth, callback, cookies.session_token(request))
    try:
        token = await run_in_threadpool(
            _record_sign_in, callback, user_agent=request.headers.get("user-agent"), ip=cookies.client_ip(request)
        )
    except DeletionPending as pending:  # offer to cancel the deletion instead of signing in
        response = offer_restore(pending)
        response.delete_cookie(STATE_COOKIE, **_state_cookie_attributes())
        return response
    response = RedirectResponse(callback.next, status_code=303)
    cookies.set_session_cookie(response, token)
    response.delete_cookie(STATE_COOKIE, **_state_cookie_attributes())
    return response


def google_routes() -> list[Route]:
    """The two routes to mount beside the app's other HTTP routes."""
    return [
        Route("/auth/google/login", google_login, methods=["GET", "POST"]),
        Route("/auth/google/callback", google_callback, methods=["GET"]),
    ]
