"""Who may see the insights pages, and what the CSV export holds: per group only, never a formula."""

import csv
import io
from collections.abc import AsyncIterator
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import DeliveryOutcome
from contracts.feedback import FeedbackGiven
from programs import Program
from services.common.auth import TokenAuthority, parse_tokens
from services.common.db import create_tables
from services.common.links import LinkSigner
from services.insights.pages import SESSION_COOKIE, Viewers, build_insights_router
from services.insights.store import InsightsStore, metadata
from tests.conftest import TEMPLATES_DIR, make_event

KEY = b"a-test-key-that-is-long-enough-for-hmac"


@pytest.fixture
async def store(engine: AsyncEngine) -> InsightsStore:
    await create_tables(engine, metadata)
    return InsightsStore(engine)


def app_for(store: InsightsStore, fvm: Program, open_on_loopback: bool) -> FastAPI:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined)
    viewers = Viewers(TokenAuthority(parse_tokens("fvm-token=fvm,fvis-token=fvis")), LinkSigner(KEY),
                      {"fvm": fvm}, open_on_loopback)
    app = FastAPI()
    app.include_router(build_insights_router(store, viewers, env, "https://budkavle.example.se"))
    return app


@pytest.fixture
async def client(store: InsightsStore, fvm: Program) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_for(store, fvm, open_on_loopback=False), client=("10.0.0.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="https://budkavle.example.se") as c:
        yield c


async def test_a_visitor_without_a_token_is_sent_to_the_login_and_a_wrong_token_is_refused(
        client: httpx.AsyncClient) -> None:
    for path in ("/insights/", "/insights/fvm/", "/insights/fvm/export.csv"):
        response = await client.get(path)
        assert response.status_code == 303 and response.headers["location"].endswith("/insights/login")
    login = await client.get("/insights/login")
    assert login.status_code == 200 and 'type="password"' in login.text
    wrong = await client.post("/insights/login", data={"token": "guess"})
    assert wrong.status_code == 401 and "Nyckeln gäller inte" in wrong.text
    assert SESSION_COOKIE not in wrong.cookies


async def test_a_publisher_token_opens_its_own_programmes_only(client: httpx.AsyncClient) -> None:
    login = await client.post("/insights/login", data={"token": "fvm-token"})
    assert login.status_code == 303
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie
    assert (await client.get("/insights/fvm/")).status_code == 200
    client.cookies.clear()
    other = {"Authorization": "Bearer fvis-token"}
    assert (await client.get("/insights/fvm/", headers=other)).status_code == 404  # not its programme
    assert (await client.get("/insights/fvm/", headers={"Authorization": "Bearer fvm-token"})).status_code == 200
    client.cookies.set(SESSION_COOKIE, "forged.session")
    assert (await client.get("/insights/fvm/")).status_code == 303


async def test_the_loopback_is_open_only_where_the_embedded_mode_says_so(store: InsightsStore, fvm: Program) -> None:
    for is_open, status in ((True, 200), (False, 303)):
        transport = httpx.ASGITransport(app=app_for(store, fvm, is_open), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            assert (await c.get("/insights/fvm/")).status_code == status


async def test_the_export_has_a_row_per_event_and_group_with_answers_only_where_five_answered(
        client: httpx.AsyncClient, store: InsightsStore) -> None:
    event = make_event(payload={"committee": "Regionstyrelsen", "title": "=HYPERLINK(\"http://evil\")",
                                "decision_text": "Text."})
    await store.record_event(event)
    at = event.occurred_at
    await store.record_outcomes([DeliveryOutcome(event_id=event.event_id, program="fvm", channel="email",
                                                 audience_id=g, recipient_id=f"{g}{i}", status="sent", at=at)
                                 for g in ("politisk-styrgrupp", "programstyrgrupp") for i in range(6)])
    await store.record_answers(FeedbackGiven(program="fvm", event_id=event.event_id, audience_id=g,
                                             respondent=f"p:{g[:4]}{i:08d}", question="understood", answer="ja",
                                             answered_at=at)
                               for g, n in (("politisk-styrgrupp", 5), ("programstyrgrupp", 4)) for i in range(n))
    response = await client.get("/insights/fvm/export.csv", headers={"Authorization": "Bearer fvm-token"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = {r["målgrupp_id"]: r for r in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))}
    assert rows["politisk-styrgrupp"]["understood_ja"] == "5" and rows["politisk-styrgrupp"]["email_levererade"] == "6"
    assert rows["programstyrgrupp"]["understood_ja"] == "" and rows["programstyrgrupp"]["svar"] == "för få svar"
    assert rows["politisk-styrgrupp"]["rubrik"].startswith("'=")  # a spreadsheet takes it as text
    assert not any(value.startswith(("p:", "a:")) for r in rows.values() for value in r.values())  # nobody named
    page = await client.get(f"/insights/fvm/events/{event.event_id}", headers={"Authorization": "Bearer fvm-token"})
    assert page.status_code == 200 and "<svg" in page.text and "för få svar" in page.text
    missing = await client.get(f"/insights/fvm/events/{uuid4()}", headers={"Authorization": "Bearer fvm-token"})
    assert missing.status_code == 404
