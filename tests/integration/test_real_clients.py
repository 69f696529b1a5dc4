"""Budkavle's output read by real clients: Microsoft's Adaptive Cards library, feedparser."""

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import feedparser
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import PublishIntranetItem
from contracts.events import Event
from programs import Program, Role, load_program
from programs.labels import sv_period
from services.common.db import create_tables
from services.common.sessions import Sessions
from services.common.signin import People
from services.intranet.pages import build_http, intranet_environment
from services.intranet.store import IntranetStore, metadata
from services.scheduler.periods import parse_period
from services.tailor.channels import COMPOSERS, Composition
from services.tailor.digests import build_digest, render_card
from services.tailor.rendering import Renderer
from services.tailor.samples import sample_events
from tests.conftest import PROGRAMS_DIR, ROOT, TEMPLATES_DIR, make_event, sign_in_as, signin_router


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)  # the provider's tokens are checked against real time

    def __call__(self) -> datetime:
        return self.now


SESSIONS = Sessions(b"a-session-key-that-is-long-enough-too", "http://bk", timedelta(minutes=30), timedelta(hours=8))

VALIDATE = """
const AC = require(process.argv[1]);
const cards = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = cards.map((json) => {
  const card = new AC.AdaptiveCard();
  const context = new AC.SerializationContext();
  card.parse(json, context);
  const events = card.validateProperties().validationEvents.map((e) => `${e.phase}/${e.event}: ${e.message}`);
  const parseEvents = context.eventCount;
  return { events, parseEvents };
});
console.log(JSON.stringify(out));
"""


def test_every_teams_card_validates_in_microsofts_adaptive_cards_library(fvm: Program) -> None:
    library = ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.js"
    assert library.is_file(), "run `npm install` (make does) for the adaptivecards library"
    node = shutil.which("node")
    assert node is not None
    renderer = Renderer(TEMPLATES_DIR, "https://budkavle.example.se")
    cards = [renderer.teams_card(e, fvm, a) for e in sample_events("fvm") for a in fvm.audiences[:6]]
    group = fvm.audiences[0]
    month = parse_period("2026-11")
    published = [e.model_copy(update={"published_at": month.start}) for e in sample_events("fvm")]
    cards += [render_card(build_digest(fvm, group, p, sv_period(p.label), events, published), renderer)
              for p, events in ((month, published), (parse_period("2026-W49"), []))]  # a busy and a quiet period
    # A control the library must complain about, so the check is known to bite.
    cards.append({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlok", "text": "x"}]})
    result = subprocess.run([node, "-e", VALIDATE, str(library)], input=json.dumps(cards), capture_output=True,
                            text=True, timeout=60, check=True)
    reports = json.loads(result.stdout)
    assert len(reports) == len(cards)
    control = reports.pop()
    assert control["parseEvents"] > 0
    for report in reports:
        assert report["events"] == [] and report["parseEvents"] == 0, report


async def intranet_with(engine: AsyncEngine, fvm: Program, events: list[Event], issuer: str,
                        sessions: Sessions = SESSIONS) -> FastAPI:
    """The intranet's pages over a store holding the rendered items of `events`, and the sign-in beside them."""
    await create_tables(engine, metadata)
    store = IntranetStore(engine)
    renderer = Renderer(TEMPLATES_DIR, "http://bk")
    for event in events:
        target = Composition(event, fvm, "intranet", None, (), (), event.occurred_at)
        for item in COMPOSERS["intranet"].compose(target, renderer):
            assert isinstance(item, PublishIntranetItem)
            await store.save(item)
    app = FastAPI()
    env = intranet_environment(TEMPLATES_DIR, {"fvm": fvm}, "http://bk")
    people = People(sessions, env, "http://bk")
    app.include_router(signin_router(issuer, people, {"fvm": fvm, "fvis": load_program(PROGRAMS_DIR / "fvis.yaml")}))
    app.include_router(build_http(store, {"fvm": fvm}, env, people))
    return app


@asynccontextmanager
async def reader(app: FastAPI, issuer: str, **roles: set[Role]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the intranet's pages, signed in through the provider with `roles` (none: not signed in)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bk") as client:
        if roles:
            await sign_in_as(client, issuer, "signe", **roles)
        yield client


async def test_internal_items_are_for_signed_in_people_of_their_programme_and_public_ones_for_everyone(
        sqlite_engine: AsyncEngine, fvm: Program, oidc_issuer: str) -> None:
    internal, public = make_event(sensitivity="internal"), make_event("status.update", sensitivity="public")
    app = await intranet_with(sqlite_engine, fvm, [internal, public], oidc_issuer)
    shown: dict[str, dict[str, object]] = {}
    for who, roles in (("anonymous", {}), ("fvm member", {"fvm": {Role.MEMBER}}), ("fvis reader", {"fvis": {Role.READER}})):
        async with reader(app, oidc_issuer, **roles) as client:
            item = await client.get(f"/intranet/items/{internal.event_id}")
            lists = [(await client.get(path)).text for path in ("/intranet/", "/intranet/feed.atom", "/intranet/status")]
            shown[who] = {"item": item.status_code, "listed": [internal.payload.title in text for text in lists],
                          "public item": (await client.get(f"/intranet/items/{public.event_id}")).status_code,
                          "public listed": all(public.payload.title in text for text in lists[:2]),
                          "cache": item.headers.get("cache-control")}
            if who == "anonymous":
                here = urlencode({"next": f"/intranet/items/{internal.event_id}"})
                assert item.headers["location"] == f"http://bk/auth/login?{here}"
    assert shown["anonymous"] == {"item": 303, "listed": [False, False, False], "public item": 200, "public listed": True,
                                  "cache": None}
    assert shown["fvm member"] == {"item": 200, "listed": [True, True, True], "public item": 200, "public listed": True,
                                   "cache": "private, no-store"}
    assert shown["fvis reader"]["item"] == 403 and shown["fvis reader"]["listed"] == [False, False, False]


async def test_a_session_in_use_outlives_its_idle_limit_and_one_left_alone_ends_there(
        sqlite_engine: AsyncEngine, fvm: Program, oidc_issuer: str) -> None:
    clock = Clock()
    sessions = Sessions(b"a-session-key-that-is-long-enough-too", "http://bk", timedelta(minutes=30), timedelta(hours=8),
                        clock=clock)
    internal = make_event(sensitivity="internal")
    app = await intranet_with(sqlite_engine, fvm, [internal], oidc_issuer, sessions)
    async with reader(app, oidc_issuer, fvm={Role.MEMBER}) as client:
        for _ in range(4):  # a page every 20 minutes: 80 minutes in all, each page moves the idle limit on
            clock.now += timedelta(minutes=20)
            page = await client.get(f"/intranet/items/{internal.event_id}")
            assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
        clock.now += timedelta(minutes=31)  # then nothing for longer than the idle limit
        assert (await client.get(f"/intranet/items/{internal.event_id}")).status_code == 303


async def test_atom_feed_parses_in_feedparser(sqlite_engine: AsyncEngine, fvm: Program, oidc_issuer: str) -> None:
    app = await intranet_with(sqlite_engine, fvm, sample_events("fvm")[:3], oidc_issuer)
    async with reader(app, oidc_issuer, fvm={Role.MEMBER}) as client:
        response = await client.get("/intranet/feed.atom?program=fvm")
        missing = await client.get("/intranet/feed.atom?program=nope")
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    assert [e.title for e in feed.entries] == [e.payload.title for e in sample_events("fvm")[:3]]
    assert feed.entries[0].link.startswith("http://bk/intranet/items/")
    assert "FVM (Framtidens vårdinformationsmiljö)" in feed.entries[0].content[0].value
    assert missing.status_code == 404


@pytest.mark.parametrize("path", ["/intranet/", "/intranet/status"])
async def test_pages_render_with_no_items(sqlite_engine: AsyncEngine, fvm: Program, path: str, oidc_issuer: str) -> None:
    app = await intranet_with(sqlite_engine, fvm, [], oidc_issuer)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bk") as client:
        response = await client.get(path)
    assert response.status_code == 200 and 'lang="sv"' in response.text


async def test_item_page_carries_its_programmes_brand(sqlite_engine: AsyncEngine, fvm: Program, oidc_issuer: str) -> None:
    event = sample_events("fvm")[0]
    app = await intranet_with(sqlite_engine, fvm, [event], oidc_issuer)
    async with reader(app, oidc_issuer, fvm={Role.MEMBER}) as client:
        page = await client.get(f"/intranet/items/{event.event_id}")
    assert page.status_code == 200
    assert 'class="brand" style="background:#0074bc' in page.text and "Västra Götalandsregionen" in page.text


async def test_the_status_page_shows_the_plans_timeline_before_any_news_and_each_go_live_update_over_it(
        sqlite_engine: AsyncEngine, fvm: Program, oidc_issuer: str) -> None:
    empty = await intranet_with(sqlite_engine, fvm, [], oidc_issuer)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=empty), base_url="http://bk") as client:
        before = (await client.get("/intranet/status?program=fvm")).text
    assert "Programmets fas: Införande." in before
    assert "<strong>Västra området</strong> (västra): hösten 2026 – Planerad." in before
    moved = make_event("golive.milestone", payload={
        "area": "västra", "planned_date": "2027-03-01", "status": "rescheduled", "title": "Västra flyttas",
        "what_changes": "Införandet i västra området sker våren 2027."})
    updated = await intranet_with(sqlite_engine, fvm, [moved], oidc_issuer)
    async with reader(updated, oidc_issuer, fvm={Role.MEMBER}) as client:
        after = (await client.get("/intranet/status?program=fvm")).text
    assert "<strong>Västra området</strong> (västra): 1 mars 2027 – Ny tidpunkt." in after
    assert f'/intranet/items/{moved.event_id}">Senaste beskedet' in after
    status = make_event("status.update", payload={"title": "Läget", "summary": "Västra förbereds.",
                                                  "phase": "Förberedelser inför västra"})
    newer = await intranet_with(sqlite_engine, fvm, [status], oidc_issuer)
    async with reader(newer, oidc_issuer, fvm={Role.MEMBER}) as client:
        assert "Programmets fas: Förberedelser inför västra." in (await client.get("/intranet/status?program=fvm")).text
