"""Sign-in with OpenID Connect: the authorization code flow with PKCE through Authlib, the ID token verified
against the provider's published keys (signature, issuer, audience, expiry, nonce), and the person's roles
read from their roles claim. `/auth/login`, `/auth/callback` and `/auth/logout`, with Swedish pages.

What the flow needs between the two legs (state, nonce, PKCE verifier, where to go back to) travels in a
short-lived signed cookie of its own, used once. The provider is asked for its metadata and keys when someone
first signs in, not at start: a provider that is down stops sign-in (with a page that says so), nothing else.
"""

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from authlib.integrations.starlette_client import OAuth
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment

from contracts.people import SessionEnded
from programs import Program, Role
from services.common.ended_sessions import EndedSessions
from services.common.links import BadLink, session_key
from services.common.people import person_from_claims
from services.common.problems import Problem, read_form
from services.common.sessions import Session, Sessions
from services.common.settings import CommonSettings

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Response)

LOGIN = "login"
LOGIN_COOKIE = "budkavle_login"
LOGIN_TTL = timedelta(minutes=10)
SCOPE = "openid profile email"


class ProviderUnreachable(Exception):
    """The OpenID provider did not answer (metadata, keys or token endpoint)."""


class SignInRefused(Exception):
    """The provider's answer cannot be trusted or was a refusal (bad code, bad ID token)."""


@dataclass(frozen=True)
class Started:
    url: str
    state: str
    nonce: str
    code_verifier: str


class Provider:
    """The OpenID provider, through Authlib's client: PKCE (S256), nonce, ID token verified with its keys."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, timeout: float = 10.0) -> None:
        self.issuer = issuer.rstrip("/")
        oauth = OAuth()
        oauth.register("budkavle", client_id=client_id, client_secret=client_secret,
                       server_metadata_url=f"{self.issuer}/.well-known/openid-configuration",
                       client_kwargs={"scope": SCOPE, "code_challenge_method": "S256", "timeout": timeout})
        self.client = oauth.create_client("budkavle")

    async def start(self, redirect_uri: str) -> Started:
        try:
            rv = await self.client.create_authorization_url(redirect_uri)
        except httpx.HTTPError as exc:
            raise ProviderUnreachable(f"{type(exc).__name__}: {exc}") from exc
        return Started(rv["url"], rv["state"], rv["nonce"], rv["code_verifier"])

    async def finish(self, redirect_uri: str, code: str, code_verifier: str, nonce: str) -> dict[str, Any]:
        """The verified claims of the ID token the code is exchanged for."""
        try:
            token = await self.client.fetch_access_token(redirect_uri=redirect_uri, code=code,
                                                         code_verifier=code_verifier)
        except httpx.HTTPError as exc:
            raise ProviderUnreachable(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # the provider refused the code (used, expired, foreign)
            raise SignInRefused(f"token request refused: {exc}") from exc
        return await self.verify(token, nonce)

    async def verify(self, token: Mapping[str, Any], nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature (the provider's published keys), issuer, audience, expiry
        and nonce hold; SignInRefused otherwise."""
        if not isinstance(token.get("id_token"), str):
            raise SignInRefused("the provider sent no ID token")
        try:
            claims = await self.client.parse_id_token(dict(token), nonce=nonce)
        except httpx.HTTPError as exc:
            raise ProviderUnreachable(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # joserfc's and Authlib's claim errors alike: nothing here is trusted
            raise SignInRefused(f"ID token refused: {type(exc).__name__}: {exc}") from exc
        if claims is None or not claims.get("sub"):
            raise SignInRefused("the ID token names no subject")
        return dict(claims)


class People:
    """Who is signed in, and what a page needs of them: the one thing person-facing pages ask."""

    def __init__(self, sessions: Sessions, env: Environment, base: str) -> None:
        self.sessions, self.env, self.base = sessions, env, base

    def page(self, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(base=self.base, **ctx), status_code=status)

    async def session(self, request: Request) -> Session | None:
        """The request's session (kept on the request, for `personal`)."""
        session = await self.sessions.read(request)
        request.state.budkavle_session = session
        return session

    def personal(self, request: Request, response: R) -> R:
        """`response` to a request whose session was read: made for that person (no shared cache keeps it), and
        the session's idle limit moved on. Every page a signed-in person is served passes here."""
        session: Session | None = getattr(request.state, "budkavle_session", None)
        if session is not None:
            response.headers["Cache-Control"] = "private, no-store"
            self.sessions.touch(response, session)
        return response

    def login_url(self, request: Request) -> str:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return f"{self.base}/auth/login?{urlencode({'next': here})}"

    async def require(self, request: Request, program: str | None, role: Role) -> Session | Response:
        """The session of someone who has `role` in `program` (in any programme, when None); otherwise the way
        to sign in, or the Swedish "no access" page (403) for a person who has not."""
        return self.check(request, await self.session(request), program, role)

    def check(self, request: Request, session: Session | None, program: str | None, role: Role) -> Session | Response:
        """`require` for a session already read."""
        if session is None:
            return RedirectResponse(self.login_url(request), status_code=303)
        allowed = session.person.programs(role)
        if (program is None and not allowed) or (program is not None and program not in allowed):
            return self.page("auth/no_access.html.j2", 403, person=session.person)
        return session


def sessions_for(settings: CommonSettings, embedded: bool, ended: EndedSessions | None) -> Sessions:
    """The sessions every service that reads them checks, with the same key and timeouts, and its own table of
    the sessions ended by sign-out (None only behind a service that checked that table already)."""
    return Sessions(session_key(settings.session_key, settings.data_dir, embedded), settings.resolved_public_url(),
                    timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_max_hours),
                    ended=ended.ended if ended is not None else None)


def people_for(settings: CommonSettings, env: Environment, embedded: bool, ended: EndedSessions) -> People:
    """What every person-facing page asks: `sessions_for`, with the pages' environment."""
    return People(sessions_for(settings, embedded, ended), env, settings.resolved_public_url())


def provider_for(settings: CommonSettings) -> "Provider | None":
    """The configured OpenID provider; None where none is (sign-in then says so, and nothing else changes)."""
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_client_id:
        raise SystemExit("BUDKAVLE_OIDC_CLIENT_ID is not set (the client id Budkavle has at BUDKAVLE_OIDC_ISSUER)")
    return Provider(settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret)


def local_path(value: str | None) -> str:
    """Where to go after sign-in: a path on this site only (never `//host` or a URL)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def build_signin_router(provider: Provider | None, people: People, programs: Mapping[str, Program],
                        roles_claim: str, end: Callable[[SessionEnded], Awaitable[None]]) -> APIRouter:
    """`/auth/login`, `/auth/callback`, `/auth/logout`: served by one service (insights); every person-facing
    service reads the sessions they make (`People`). `end` keeps a session as ended and announces it."""
    router = APIRouter(prefix="/auth", include_in_schema=False)
    sessions, page, base = people.sessions, people.page, people.base
    signer = sessions.signer
    callback = f"{base}/auth/callback"
    secure = base.startswith("https://")

    async def ended(session: Session) -> None:
        await end(SessionEnded(sid=session.sid, ended_at=datetime.now(UTC), expires_at=sessions.expires_at(session)))

    def refused(heading: str, message: str, status: int = 400) -> HTMLResponse:
        response = page("auth/message.html.j2", status, heading=heading, message=message, again=True)
        response.delete_cookie(LOGIN_COOKIE, path="/auth/", secure=secure, httponly=True, samesite="lax")
        return response

    def unreachable() -> HTMLResponse:
        return page("auth/message.html.j2", 503, heading="Inloggningen går inte att nå just nu",
                    message="Tjänsten för inloggning svarar inte. Försök igen om en stund. Nyheter och "
                            "statussidan fungerar som vanligt utan inloggning.", again=True)

    @router.get("/login")
    async def login(request: Request) -> Response:
        if provider is None:
            return page("auth/message.html.j2", 503, heading="Inloggning är inte inställd",
                        message="Den här installationen har ingen inloggning (BUDKAVLE_OIDC_ISSUER saknas).", again=False)
        try:
            started = await provider.start(callback)
        except ProviderUnreachable as exc:
            log.warning("OpenID provider unreachable", extra={"reason": str(exc)[:300]})
            return unreachable()
        pending = signer.sign(LOGIN, {"st": started.state, "no": started.nonce, "cv": started.code_verifier,
                                      "nx": local_path(request.query_params.get("next"))}, LOGIN_TTL)
        response = RedirectResponse(started.url, status_code=303)
        response.set_cookie(LOGIN_COOKIE, pending, max_age=int(LOGIN_TTL.total_seconds()), path="/auth/",
                            httponly=True, samesite="lax", secure=secure)
        return response

    @router.get("/callback")
    async def finish(request: Request) -> Response:
        q = request.query_params
        try:
            pending = signer.verify(LOGIN, request.cookies.get(LOGIN_COOKIE, ""))
        except BadLink:
            return refused("Inloggningen gick inte att slutföra",
                           "Inloggningen hade gått ut eller var redan använd. Logga in igen.")
        if q.get("error"):
            return refused("Inloggningen avbröts", "Du loggades inte in. Du kan försöka igen.")
        if not q.get("code") or not q.get("state") or not _same(q["state"], pending["st"]):
            log.warning("sign-in callback with a state that does not match; refused")
            return refused("Inloggningen gick inte att slutföra",
                           "Svaret från inloggningen hörde inte till den här webbläsaren. Logga in igen.")
        if provider is None:
            return unreachable()
        try:
            claims = await provider.finish(callback, q["code"], pending["cv"], pending["no"])
        except ProviderUnreachable:
            return unreachable()
        except SignInRefused as exc:
            log.warning("sign-in refused", extra={"reason": str(exc)[:300]})
            return refused("Inloggningen gick inte att slutföra",
                           "Inloggningen kunde inte bekräftas. Logga in igen.")
        person = person_from_claims(claims, roles_claim, programs)
        response = RedirectResponse(f"{base}{pending['nx']}", status_code=303)
        response.delete_cookie(LOGIN_COOKIE, path="/auth/", secure=secure, httponly=True, samesite="lax")
        before = await sessions.read(request)
        if before is not None:
            await ended(before)  # a new session id, whatever the browser had: that one is over
        sessions.open(response, person)
        log.info("signed in", extra={"programmes": sorted(person.roles)})
        return response

    @router.get("/logout")
    async def logout_page(request: Request) -> Response:
        session = await sessions.read(request)
        if session is None:
            return page("auth/signed_out.html.j2")
        return page("auth/logout.html.j2", person=session.person, csrf=sessions.csrf(session))

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = await sessions.read(request)
        if session is not None:
            try:
                form = await read_form(request)
            except Problem:
                form = {}
            if not sessions.csrf_ok(session, form.get("csrf", "")):
                return page("auth/message.html.j2", 403, heading="Utloggningen gick inte att genomföra",
                            message="Formuläret var för gammalt eller kom inte från den här sidan. Försök igen.",
                            again=False)
            await ended(session)
            log.info("signed out")
        response = page("auth/signed_out.html.j2")
        sessions.clear(response)
        return response

    return router


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))

