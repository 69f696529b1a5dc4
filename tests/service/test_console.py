"""The console alone: what it answers when the gateway is down, when the page's own asking finds the session
ended, and for an asset it does not have."""

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from programs import Program, Role
from services.common.sessions import Sessions
from services.common.signin import People
from services.console.gateway import Gateway
from services.console.pages import build_http, console_environment
from tests.conftest import ROOT, TEMPLATES_DIR, sign_in_as, signin_router

BASE = "http://console.test"


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
async def console(fvm: Program, oidc_issuer: str) -> AsyncIterator[httpx.AsyncClient]:
    env = console_environment(TEMPLATES_DIR, {"fvm": fvm}, BASE)
    people = People(Sessions(b"a-session-key-that-is-long-enough-too", BASE, timedelta(minutes=30), timedelta(hours=8)),
                    env, BASE)
    app = FastAPI()
    app.include_router(signin_router(oidc_issuer, people, {"fvm": fvm}))
    gateway = Gateway("http://gateway.invalid", transport=httpx.MockTransport(unreachable))
    app.include_router(build_http(gateway, people, {"fvm": fvm}, env, ROOT / "node_modules"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


async def test_a_gateway_that_cannot_be_reached_gets_a_swedish_page_not_a_crash(
        console: httpx.AsyncClient, oidc_issuer: str) -> None:
    await sign_in_as(console, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    page = await console.get("/console/")
    assert page.status_code == 503 and "kan inte visa händelserna just nu" in page.text


async def test_the_pages_own_asking_takes_the_page_to_sign_in_once_the_session_has_ended(
        console: httpx.AsyncClient) -> None:
    polled = await console.get("/console/", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and polled.headers["HX-Redirect"].startswith(f"{BASE}/auth/login?next=")
    assert polled.text == ""
    opened = await console.get("/console/")
    assert opened.status_code == 303 and "/auth/login" in opened.headers["location"]


async def test_only_the_consoles_own_assets_are_served(console: httpx.AsyncClient) -> None:
    script = await console.get("/console/assets/htmx.min.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert (await console.get("/console/assets/..%2F..%2Fpackage.json")).status_code == 404
    assert (await console.get("/console/assets/other.js")).status_code == 404
