"""Sign-in against a real OpenID provider (oidc-provider-mock on loopback, the one `budkavle up` runs):
the whole code flow through Budkavle's routes, ID tokens that must be refused, and the bad input of a
callback (a forged state, a replayed code, a refusal), each ending on a Swedish page without a session."""

import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy.ext.asyncio import AsyncEngine

from programs import Program, Role
from services.common.db import create_tables
from services.common.ended_sessions import EndedSessions
from services.common.sessions import Sessions
from services.common.signin import People, Provider, SignInRefused, build_signin_router
from services.embedded.broker import free_port
from services.insights.store import ENDED_SESSIONS
from services.insights.store import metadata as insights_md
from tests.conftest import TEMPLATES_DIR

BASE = "http://bk"
CLIENT_ID = "budkavle-test"
CALLBACK = f"{BASE}/auth/callback"


@pytest.fixture
def issuer(oidc_issuer: str) -> str:
    return oidc_issuer


async def app_for(provider: Provider | None, programs: dict[str, Program], engine: AsyncEngine) -> FastAPI:
    """The sign-in's routes, and one page that needs a reader of FVM, over a table of ended sessions."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined)
    await create_tables(engine, insights_md)
    ended = EndedSessions(engine, ENDED_SESSIONS)
    sessions = Sessions(b"a-session-key-that-is-long-enough-too", BASE, timedelta(minutes=30), timedelta(hours=8),
                        ended=ended.ended)
    people = People(sessions, env, BASE)
    app = FastAPI()
    app.include_router(build_signin_router(provider, people, programs, "groups", ended.end))

    @app.get("/whoami")
    async def whoami(request: Request) -> Response:
        session = await people.require(request, "fvm", Role.READER)
        if isinstance(session, Response):
            return session
        return PlainTextResponse(f"{session.person.sub} {session.person.roles_json()}")

    return app


@pytest.fixture
async def client(issuer: str, fvm: Program, sqlite_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = await app_for(Provider(issuer, CLIENT_ID, "secret"), {"fvm": fvm}, sqlite_engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


async def authorize(url: str, sub: str) -> str:
    """The provider's own form, submitted as `sub`: where the provider sends the browser back to."""
    async with httpx.AsyncClient(timeout=10) as browser:
        granted = await browser.post(url, data={"sub": sub})
    assert granted.status_code == 302, granted.text
    return str(granted.headers["location"])


async def test_a_person_signs_in_with_code_and_pkce_and_gets_the_roles_the_programme_file_maps(
        client: httpx.AsyncClient) -> None:
    start = await client.get("/auth/login", params={"next": "/whoami"})
    assert start.status_code == 303
    location = start.headers["location"]
    assert "code_challenge_method=S256" in location and "code_challenge=" in location and "nonce=" in location
    login_cookie = start.headers["set-cookie"]
    assert "HttpOnly" in login_cookie and "SameSite=lax" in login_cookie and "Path=/auth/" in login_cookie
    back = await client.get(await authorize(location, "lasare@fvm.example"))
    assert back.status_code == 303 and back.headers["location"] == f"{BASE}/whoami"
    session_cookie = next(c for c in back.headers.get_list("set-cookie") if c.startswith("budkavle_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie and "Path=/" in session_cookie
    me = await client.get("/whoami")
    assert me.text == 'lasare@fvm.example {"fvm":["reader"]}'


async def as_session(client: httpx.AsyncClient, cookie: str) -> int:
    """What /whoami answers a browser that sends `cookie` as its session."""
    client.cookies.clear()
    client.cookies.set("budkavle_session", cookie)
    return (await client.get("/whoami")).status_code


async def test_a_new_sign_in_makes_a_new_session_and_sign_out_ends_it(client: httpx.AsyncClient) -> None:
    async def sign_in(sub: str) -> str:
        start = await client.get("/auth/login")
        await client.get(await authorize(start.headers["location"], sub))
        return client.cookies["budkavle_session"]

    first = await sign_in("lasare@fvm.example")
    second = await sign_in("admin@budkavle.example")
    claims = [json.loads(base64.urlsafe_b64decode(c.split(".")[0] + "==")) for c in (first, second)]
    assert claims[0]["sid"] != claims[1]["sid"]  # rotated, not carried over
    assert (await client.get("/whoami")).text.startswith("admin@budkavle.example")
    assert await as_session(client, first) == 303  # the session the browser had before is over
    assert await as_session(client, second) == 200
    page = await client.get("/auth/logout")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    refused = await client.post("/auth/logout", data={"csrf": "0" * 32})  # a form from somewhere else
    assert refused.status_code == 403 and (await client.get("/whoami")).status_code == 200
    out = await client.post("/auth/logout", data={"csrf": csrf})
    assert out.status_code == 200 and "Du är utloggad" in out.text
    assert out.headers["set-cookie"].startswith('budkavle_session=""') and "Max-Age=0" in out.headers["set-cookie"]
    assert await as_session(client, second) == 303  # a copy of the cookie, kept from before the sign-out


async def test_a_person_without_a_role_in_the_programme_gets_the_swedish_no_access_page(
        client: httpx.AsyncClient) -> None:
    start = await client.get("/auth/login", params={"next": "/whoami"})
    await client.get(await authorize(start.headers["location"], "redaktor@fvis.example"))
    page = await client.get("/whoami")
    assert page.status_code == 403 and "Du har inte behörighet" in page.text and 'lang="sv"' in page.text


async def test_a_forged_state_a_replayed_code_or_a_refusal_ends_on_a_page_without_a_session(
        client: httpx.AsyncClient) -> None:
    def no_session(response: httpx.Response) -> bool:
        return not any(c.startswith("budkavle_session=") for c in response.headers.get_list("set-cookie"))

    start = await client.get("/auth/login")
    callback = await authorize(start.headers["location"], "lasare@fvm.example")
    pending = client.cookies["budkavle_login"]
    forged = await client.get(callback.replace("state=", "state=x"))
    assert forged.status_code == 400 and "hörde inte till den här webbläsaren" in forged.text and no_session(forged)
    assert "budkavle_login" not in client.cookies  # the attempt is over
    client.cookies.set("budkavle_login", pending, path="/auth/")
    first = await client.get(callback)
    assert first.status_code == 303 and not no_session(first)
    client.cookies.clear()
    client.cookies.set("budkavle_login", pending, path="/auth/")  # the whole first leg, replayed
    replayed = await client.get(callback)
    assert replayed.status_code == 400 and "kunde inte bekräftas" in replayed.text and no_session(replayed)
    client.cookies.clear()
    stale = await client.get(callback)  # no pending sign-in in this browser (expired, or never)
    assert stale.status_code == 400 and "gått ut" in stale.text and no_session(stale)
    start = await client.get("/auth/login")
    async with httpx.AsyncClient(timeout=10) as browser:
        denied = await browser.post(start.headers["location"], data={"action": "deny"})
    refusal = await client.get(denied.headers["location"])
    assert refusal.status_code == 400 and "avbröts" in refusal.text and no_session(refusal)


async def test_a_provider_that_is_down_stops_sign_in_with_a_page_and_nothing_else(
        fvm: Program, sqlite_engine: AsyncEngine) -> None:
    app = await app_for(Provider(f"http://127.0.0.1:{free_port()}", CLIENT_ID, "secret"), {"fvm": fvm}, sqlite_engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        page = await client.get("/auth/login")
        assert page.status_code == 503 and "går inte att nå just nu" in page.text
        assert (await client.get("/whoami")).status_code == 303  # the page itself still answers
    unset = await app_for(None, {"fvm": fvm}, sqlite_engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=unset), base_url=BASE) as client:
        assert (await client.get("/auth/login")).status_code == 503


async def token_for(issuer: str, client_id: str, sub: str = "lasare@fvm.example") -> tuple[dict[str, Any], str]:
    """An ID token (with its access token) from the provider at `issuer` for `client_id`, and its nonce."""
    provider = Provider(issuer, client_id, "secret")
    started = await provider.start(CALLBACK)
    code = httpx.URL(await authorize(started.url, sub)).params["code"]
    token = await provider.client.fetch_access_token(redirect_uri=CALLBACK, code=code,
                                                     code_verifier=started.code_verifier)
    return dict(token), started.nonce


async def test_an_id_token_with_a_wrong_signature_audience_issuer_or_nonce_is_refused(issuer: str) -> None:
    ours = Provider(issuer, CLIENT_ID, "secret")
    token, nonce = await token_for(issuer, CLIENT_ID)
    assert (await ours.verify(token, nonce))["sub"] == "lasare@fvm.example"  # the genuine one passes

    header, payload, signature = token["id_token"].split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    impostor = jwt.encode(json.loads(base64.urlsafe_b64decode(header + "==")), claims, RSAKey.generate_key(2048))
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + f".{payload}."
    localhost = issuer.replace("127.0.0.1", "localhost")  # the same provider and keys, named otherwise
    cases = {
        "signature altered": ({**token, "id_token": f"{header}.{payload}.{flipped}"}, nonce),
        "signed by another key": ({**token, "id_token": impostor}, nonce),
        "not signed": ({**token, "id_token": unsigned}, nonce),
        "audience": await token_for(issuer, "another-client"),
        "issuer": await token_for(localhost, CLIENT_ID),
        "nonce": (token, "another-nonce"),
    }
    for name, (bad, expected_nonce) in cases.items():
        with pytest.raises(SignInRefused):
            await ours.verify(bad, expected_nonce)
        assert name
