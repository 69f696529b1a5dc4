"""The insights service with a test broker: the follow-up links over HTTP, what its consumers count, and
the retention that forgets the people and keeps the figures."""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import KafkaBroker, TestKafkaBroker
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import DeliveryPlan, DigestSent, EventPlanned
from programs import Program, Role, load_program
from services.common.bus import Bus
from services.common.db import create_tables
from services.common.links import FEEDBACK, FEEDBACK_TTL, LinkSigner, feedback_claims
from services.common.sessions import Sessions
from services.common.signin import People
from services.insights.click_pages import build_click_router
from services.insights.clicks import Clicks
from services.insights.figures import by_group
from services.insights.handlers import build_router
from services.insights.store import InsightsStore, answers, deliveries, metadata, reads
from tests.conftest import PROGRAMS_DIR, TEMPLATES_DIR, make_event, sign_in_as, signin_router
from tests.outcomes import chunk_state
from tests.service.conftest import Clock, Recorder

KEY = b"a-test-key-that-is-long-enough-for-hmac"
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
GROUP = "politisk-styrgrupp"
SESSIONS = Sessions(b"a-session-key-that-is-long-enough-too", "http://bk", timedelta(minutes=30), timedelta(hours=8))
HIDDEN = re.compile(r'<input type="hidden" name="([a-z]+)" value="([^"]*)">')


async def follow(client: httpx.AsyncClient, url: str, **params: str) -> httpx.Response:
    """What a browser does with a follow-up link: open the page, then send its form (the page's script does)."""
    page = await client.get(url, params=params) if params else await client.get(url)
    if page.status_code != 200 or 'id="skicka"' not in page.text:
        return page
    return await client.post(url.split("?")[0], data=dict(HIDDEN.findall(page.text)))




@pytest.fixture
async def store(engine: AsyncEngine) -> InsightsStore:
    await create_tables(engine, metadata)
    return InsightsStore(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def client(store: InsightsStore, bus: Bus, broker: KafkaBroker, fvm: Program, clock: Clock,
                 recorder: Recorder, oidc_issuer: str) -> AsyncIterator[httpx.AsyncClient]:
    """The click pages and the service's consumers over one started test broker."""
    broker.include_router(build_router(store, bus))
    clicks = Clicks(store, bus, LinkSigner(KEY, clock), {"fvm": fvm}, "http://bk", timedelta(days=365), clock)
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined)
    people = People(SESSIONS, env, "http://bk")
    app = FastAPI()
    app.include_router(signin_router(oidc_issuer, people, {"fvm": fvm, "fvis": load_program(PROGRAMS_DIR / "fvis.yaml")}))
    app.include_router(build_click_router(clicks, people, env))
    async with TestKafkaBroker(broker), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                          base_url="http://bk") as c:
        yield c


def token(event_id: str, person: str | None = "p1", program: str = "fvm", signer: LinkSigner | None = None) -> str:
    return (signer or LinkSigner(KEY, Clock(NOW))).sign(FEEDBACK, feedback_claims(program, event_id, GROUP, person),
                                                        FEEDBACK_TTL)


async def count(store: InsightsStore, table: object) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_an_answer_is_announced_counted_once_and_a_later_one_replaces_it(
        client: httpx.AsyncClient, store: InsightsStore, recorder: Recorder, clock: Clock) -> None:
    event_id = str(uuid4())
    page = await follow(client, f"/feedback/{token(event_id)}", q="understood", a="nej")
    assert page.status_code == 200 and "Du svarade: <strong>Nej</strong>" in page.text
    assert f'href="http://bk/intranet/items/{event_id}"' in page.text  # back to the item
    for _ in range(10):  # the same answer again: nothing new to say
        await follow(client, f"/feedback/{token(event_id)}", q="understood", a="nej")
    clock.now += timedelta(minutes=1)
    await follow(client, f"/feedback/{token(event_id)}", q="understood", a="ja")
    counts = await store.counts([event_id])
    assert counts[(event_id, GROUP)]["understood:ja"] == 1 and counts[(event_id, GROUP)]["understood:nej"] == 0
    assert await count(store, answers) == 1
    announced = recorder[topics.FEEDBACK_GIVEN]
    assert [a["answer"] for a in announced] == ["nej", "ja"]  # on the bus: the first, and the change
    assert announced[0]["respondent"].startswith("p:") and "p1" not in announced[0]["respondent"]


async def test_untrusted_or_invalid_clicks_get_a_page_and_record_nothing(
        client: httpx.AsyncClient, store: InsightsStore, clock: Clock) -> None:
    event_id = str(uuid4())
    good = token(event_id)
    old = LinkSigner(KEY, Clock(NOW - FEEDBACK_TTL - timedelta(days=1)))
    cases = {
        f"/feedback/{good[:-3]}xyz?q=understood&a=ja": 400,  # altered
        f"/feedback/{token(event_id, signer=LinkSigner(b'another-key-that-is-long-enough-x'))}?q=understood&a=ja": 400,
        f"/feedback/{token(event_id, signer=old)}?q=understood&a=ja": 410,  # expired
        f"/feedback/{token(event_id, program='okand')}?q=understood&a=ja": 404,  # foreign programme
        f"/feedback/{good}?q=understood&a=delvis": 422,  # not an answer to that question
        f"/feedback/{good}?q=understood": 422,
        f"/feedback/{good}?q=lon&a=ja": 422,
        f"/r/{good}?to=https://evil.example/": 400,  # the request names no target
        f"/r/{good}?to=more": 404,  # the event has no page elsewhere
        "/feedback/é.x?q=understood&a=ja": 400,  # not a token Budkavle makes (a probe's: it answered 500)
        "/r/é.x": 400,
        "/feedback/%00.%ff?q=understood&a=ja": 400,
    }
    for url, status in cases.items():
        response = await follow(client, url)
        assert response.status_code == status, url
        assert 'lang="sv"' in response.text and "Inget har sparats" in response.text
    for url in ("/feedback/é.x", f"/feedback/{good[:-3]}xyz"):  # a form sent without its page
        refused = await client.post(url, data={"q": "understood", "a": "ja"})
        assert refused.status_code == 400 and "Inget har sparats" in refused.text
    group = f"/feedback/{token(event_id, person=None)}?q=understood&a=ja"  # a malformed session cookie is none
    odd = await client.get(group, headers=[(b"cookie", "budkavle_session=é.x; x=\x00".encode())])
    assert odd.status_code == 303 and "/auth/login" in odd.headers["location"]
    assert await count(store, answers) == await count(store, reads) == 0


async def test_read_more_leads_to_the_events_own_page_and_counts_a_person_once(
        client: httpx.AsyncClient, store: InsightsStore, broker: KafkaBroker) -> None:
    event = make_event("status.update", payload={"title": "Läget", "summary": "Text.",
                                                 "read_more_url": "https://www.vgregion.se/fvm"})
    await broker.publish(event.model_dump_json().encode(), topics.event_topic(event.type))
    event_id = str(event.event_id)
    for _ in range(3):
        response = await follow(client, f"/r/{token(event_id)}")
        assert response.status_code == 303 and response.headers["location"] == "https://www.vgregion.se/fvm"
    item = await follow(client, f"/r/{token(event_id)}", to="item")
    assert item.headers["location"] == f"http://bk/intranet/items/{event_id}"
    assert (await store.counts([event_id]))[(event_id, GROUP)]["read"] == 1


async def test_a_group_link_needs_a_signed_in_person_of_the_programme_and_counts_each_once(
        client: httpx.AsyncClient, store: InsightsStore, oidc_issuer: str) -> None:
    """A probe posted twelve answers through an intranet item's link, each with a fresh cookie: all counted."""
    event_id = str(uuid4())
    url = f"/feedback/{token(event_id, person=None)}"
    for _ in range(12):  # a stranger, fresh each time: sent to sign in, nothing counted
        client.cookies.clear()
        stranger = await follow(client, url, q="involved", a="delvis")
        assert stranger.status_code == 303 and stranger.headers["location"].startswith("http://bk/auth/login?next=")
        assert (await client.post(url, data={"q": "involved", "a": "delvis"})).status_code == 303
    await sign_in_as(client, oidc_issuer, "fvis-person", fvis={Role.READER})  # a person of another programme
    assert (await follow(client, url, q="involved", a="delvis")).status_code == 403
    assert await count(store, answers) == 0
    await sign_in_as(client, oidc_issuer, "anna", fvm={Role.MEMBER})
    forged = await client.post(url, data={"q": "involved", "a": "delvis", "csrf": "0" * 32})  # no CSRF token of hers
    assert forged.status_code == 403 and await count(store, answers) == 0
    for _ in range(3):
        assert (await follow(client, url, q="involved", a="delvis")).status_code == 200
    await sign_in_as(client, oidc_issuer, "bertil", fvm={Role.EDITOR})
    assert (await follow(client, url, q="involved", a="delvis")).status_code == 200
    assert (await store.counts([event_id]))[(event_id, GROUP)]["involved:delvis"] == 2


async def test_a_get_alone_records_nothing_as_when_a_mail_gateway_fetches_every_link(
        client: httpx.AsyncClient, store: InsightsStore, broker: KafkaBroker) -> None:
    event = make_event("status.update", payload={"title": "Läget", "summary": "Text.",
                                                 "read_more_url": "https://www.vgregion.se/fvm"})
    await broker.publish(event.model_dump_json().encode(), topics.event_topic(event.type))
    event_id = str(event.event_id)
    for person in ("p1", "p2", "p3"):  # three mails nobody read, every link fetched
        mine = token(event_id, person=person)
        for q, a in (("understood", "ja"), ("understood", "nej"), ("involved", "ja"), ("involved", "delvis"),
                     ("involved", "nej")):
            page = await client.get(f"/feedback/{mine}", params={"q": q, "a": a})
            assert page.status_code == 200 and 'id="skicka"' in page.text  # the form, not yet sent
        assert (await client.get(f"/r/{mine}")).status_code == 200
    assert await count(store, answers) == await count(store, reads) == 0
    assert (await store.counts([event_id])).get((event_id, GROUP), {}) == {}


async def test_an_answer_about_news_older_than_the_retention_is_refused(
        client: httpx.AsyncClient, store: InsightsStore, broker: KafkaBroker) -> None:
    event = make_event(published_at=(NOW - timedelta(days=400)).isoformat())
    await broker.publish(event.model_dump_json().encode(), topics.event_topic(event.type))
    response = await follow(client, f"/feedback/{token(str(event.event_id))}", q="understood", a="ja")
    assert response.status_code == 410 and await count(store, answers) == 0


async def test_the_retention_forgets_people_and_keeps_every_groups_figures(
        client: httpx.AsyncClient, store: InsightsStore, broker: KafkaBroker, fvm: Program, clock: Clock) -> None:
    event = make_event()
    event_id = str(event.event_id)
    await broker.publish(event.model_dump_json().encode(), topics.event_topic(event.type))
    plan = DeliveryPlan(event_id=event.event_id, program="fvm", groups=(), refused=(),
                        targeted={GROUP: {"email": 7, "teams": 1}})
    await broker.publish(EventPlanned(plan=plan, status="planned", planned_at=NOW).model_dump_json().encode(),
                         topics.EVENT_PLANNED)
    state = chunk_state(event.event_id, GROUP, 7, sent=6, unsent=(("p6", "failed", "permanent: 550", None),), at=NOW)
    await broker.publish(state.model_dump_json().encode(), topics.DELIVERY_OUTCOMES)
    for i in range(6):
        await follow(client, f"/feedback/{token(event_id, person=f'p{i}')}", q="understood", a="ja" if i < 5 else "nej")
        await follow(client, f"/r/{token(event_id, person=f'p{i}')}")
    names = {a.id: a.name for a in fvm.audiences}
    before = by_group(await store.counts([event_id]), event_id, names)
    assert before[0].answers("understood") == {"ja": 5, "nej": 1} and before[0].reads == 6
    assert before[0].channels(("email", "teams"))["email"].sent == 6

    assert await store.fold(NOW - timedelta(days=365)) == 0  # nothing is that old yet
    moved = await store.fold(NOW + timedelta(days=1))  # a year and a day later, with a retention of a year
    assert moved == 6 + 6  # the answers and reads; reach was never kept per person
    assert [await count(store, t) for t in (deliveries, answers, reads)] == [1, 0, 0]
    after = by_group(await store.counts([event_id]), event_id, names)
    assert after == before


async def test_a_sent_digest_is_an_item_of_its_own_and_its_answers_lead_back_to_the_status_page(
        client: httpx.AsyncClient, store: InsightsStore, broker: KafkaBroker) -> None:
    digest = uuid4()
    sent = DigestSent(digest_id=digest, program="fvm", audience_id=GROUP, period="2026-11",
                      title="Lägessummering november 2026 – Politisk styrgrupp", sent_at=NOW, targeted={"email": 9})
    await broker.publish(sent.model_dump_json().encode(), topics.DIGEST_SENT)
    [item] = [i for i in await store.items("fvm") if i.event_id == str(digest)]
    assert (item.type, item.title) == ("digest", "Lägessummering november 2026 – Politisk styrgrupp")
    assert (await store.counts([str(digest)]))[(str(digest), GROUP)]["targeted:email"] == 9
    page = await follow(client, f"/feedback/{token(str(digest))}", q="involved", a="ja")
    assert page.status_code == 200 and 'href="http://bk/intranet/status?program=fvm"' in page.text
