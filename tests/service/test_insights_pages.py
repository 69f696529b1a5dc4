"""Who may see the insights pages, and what the CSV export holds: per group only, never a formula."""

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlencode
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.feedback import FeedbackGiven
from programs import Program, Role, load_program
from services.common.auth import TokenAuthority, parse_tokens
from services.common.db import create_tables
from services.common.sessions import Sessions
from services.common.signin import People
from services.insights.pages import Viewers, build_insights_router
from services.insights.store import InsightsStore, metadata
from tests.conftest import PROGRAMS_DIR, TEMPLATES_DIR, make_event, sign_in_as, signin_router
from tests.outcomes import chunk_state

KEY = b"a-test-key-that-is-long-enough-for-hmac"
BASE = "https://budkavle.example.se"
SESSIONS = Sessions(KEY, BASE, timedelta(minutes=30), timedelta(hours=8))
READER = {"Authorization": "Bearer fvm-reader-token"}


@pytest.fixture
async def store(engine: AsyncEngine) -> InsightsStore:
    await create_tables(engine, metadata)
    return InsightsStore(engine)


def app_for(store: InsightsStore, fvm: Program, issuer: str) -> FastAPI:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined)
    tokens = "fvm-publisher-token=fvm,fvm-reader-token=fvm:reader,fvis-reader-token=fvis:reader"
    people = People(SESSIONS, env, BASE)
    viewers = Viewers(TokenAuthority(parse_tokens(tokens)), people, {"fvm": fvm})
    app = FastAPI()
    app.include_router(signin_router(issuer, people, {"fvm": fvm, "fvis": load_program(PROGRAMS_DIR / "fvis.yaml")}))
    app.include_router(build_insights_router(store, viewers, env, BASE))
    return app


@pytest.fixture
async def client(store: InsightsStore, fvm: Program, oidc_issuer: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_for(store, fvm, oidc_issuer), client=("127.0.0.1", 5000))  # no loopback door
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        yield c


async def test_a_visitor_who_has_not_signed_in_is_sent_to_sign_in_and_comes_back_here(client: httpx.AsyncClient) -> None:
    for path in ("/insights/", "/insights/fvm/", "/insights/fvm/export.csv"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"{BASE}/auth/login?{urlencode({'next': path})}"
    client.cookies.set(SESSIONS.cookie, "forged.session")
    assert (await client.get("/insights/fvm/")).status_code == 303
    # The token form is gone: a session comes from the sign-in only.
    old_form = await client.get("/insights/login", follow_redirects=False)
    assert old_form.status_code == 307 and old_form.headers["location"].endswith("/insights/login/")  # no such page
    assert 'type="password"' not in (await client.get("/insights/login/")).text


async def test_a_reader_of_a_programme_sees_it_and_a_person_without_a_role_there_gets_the_no_access_page(
        client: httpx.AsyncClient, oidc_issuer: str) -> None:
    await sign_in_as(client, oidc_issuer, "Någon", fvm={Role.READER})
    assert (await client.get("/insights/fvm/")).status_code == 200
    assert "Inloggad som Någon" in (await client.get("/insights/")).text
    for roles in ({"fvm": {Role.MEMBER}}, {"fvis": {Role.READER}}, {}):
        await sign_in_as(client, oidc_issuer, "Någon", **roles)
        refused = await client.get("/insights/fvm/")
        assert refused.status_code == 403 and "Du har inte behörighet" in refused.text
    await sign_in_as(client, oidc_issuer, "Någon", fvm={Role.EDITOR})  # an editor reads too
    assert (await client.get("/insights/fvm/export.csv")).status_code == 200


async def test_a_token_reads_only_with_the_reader_role_and_only_its_own_programmes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/insights/fvm/", headers=READER)).status_code == 200
    publisher = await client.get("/insights/fvm/", headers={"Authorization": "Bearer fvm-publisher-token"})
    assert publisher.status_code == 403 and "Nyckeln som skickades med ger ingen behörighet" in publisher.text
    assert (await client.get("/insights/fvm/", headers={"Authorization": "Bearer fvis-reader-token"})).status_code == 403
    assert (await client.get("/insights/fvm/", headers={"Authorization": "Bearer wrong"})).status_code == 303


async def test_a_title_written_as_mathematics_is_shown_as_text(client: httpx.AsyncClient, store: InsightsStore) -> None:
    """A probe's `Pris $\\foo$ för licenser` made the programme page answer 500 for everyone."""
    event = make_event(payload={"committee": "Regionstyrelsen", "title": "Pris $\\foo$ för licenser",
                                "decision_text": "Text."})
    await store.record_event(event)
    await store.record_outcomes([chunk_state(event.event_id, "programstyrgrupp", 3, sent=3, at=event.occurred_at)])
    page = await client.get("/insights/fvm/", headers=READER)
    assert page.status_code == 200 and page.text.count("Pris $\\foo$ för licenser") >= 2  # the chart and the table


async def test_the_export_has_a_row_per_event_and_group_with_answers_only_where_five_answered(
        client: httpx.AsyncClient, store: InsightsStore) -> None:
    event = make_event(payload={"committee": "Regionstyrelsen", "title": "=HYPERLINK(\"http://evil\")",
                                "decision_text": "Text."})
    await store.record_event(event)
    at = event.occurred_at
    await store.record_outcomes([chunk_state(event.event_id, g, 6, sent=6, at=at)
                                 for g in ("politisk-styrgrupp", "programstyrgrupp")])
    await store.record_answers(FeedbackGiven(program="fvm", event_id=event.event_id, audience_id=g,
                                             respondent=f"p:{g[:4]}{i:08d}", question="understood", answer="ja",
                                             answered_at=at)
                               for g, n in (("politisk-styrgrupp", 5), ("programstyrgrupp", 4)) for i in range(n))
    response = await client.get("/insights/fvm/export.csv", headers={"Authorization": "Bearer fvm-reader-token"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = {r["målgrupp_id"]: r for r in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))}
    assert rows["politisk-styrgrupp"]["understood_ja"] == "5" and rows["politisk-styrgrupp"]["email_levererade"] == "6"
    assert rows["programstyrgrupp"]["understood_ja"] == "" and rows["programstyrgrupp"]["svar"] == "för få svar"
    assert rows["politisk-styrgrupp"]["rubrik"].startswith("'=")  # a spreadsheet takes it as text
    assert not any(value.startswith(("p:", "a:")) for r in rows.values() for value in r.values())  # nobody named
    page = await client.get(f"/insights/fvm/events/{event.event_id}", headers={"Authorization": "Bearer fvm-reader-token"})
    assert page.status_code == 200 and "<svg" in page.text and "för få svar" in page.text
    missing = await client.get(f"/insights/fvm/events/{uuid4()}", headers={"Authorization": "Bearer fvm-reader-token"})
    assert missing.status_code == 404
