"""The preference centre over HTTP (its pages, one-click unsubscribe) with a test broker."""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from programs import Program
from services.common.bus import Bus
from services.common.db import create_tables
from services.common.links import LinkSigner
from services.preferences.centre import PreferenceCentre
from services.preferences.pages import build_http
from services.preferences.store import PreferencesStore, metadata
from tests.conftest import TEMPLATES_DIR
from tests.service.conftest import Clock, Recorder

KEY = b"a-test-key-that-is-long-enough-for-hmac"


@pytest.fixture
async def centre(engine: AsyncEngine, bus: Bus) -> PreferenceCentre:
    await create_tables(engine, metadata)
    return PreferenceCentre(PreferencesStore(engine), bus)


@pytest.fixture
async def client(centre: PreferenceCentre, fvm: Program, broker: KafkaBroker,
                 recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    """Over a started test broker; the recorder subscribes before it starts."""
    app = FastAPI()
    app.include_router(build_http(centre, LinkSigner(KEY), {"fvm": fvm}, TEMPLATES_DIR, "http://bk"))
    async with TestKafkaBroker(broker), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                          base_url="http://bk") as c:
        yield c


def token(signer: LinkSigner | None = None, **claims: str) -> str:
    return (signer or LinkSigner(KEY)).sign("prefs", {"program": "fvm", "person": "p1",
                                                      "audience": "politisk-styrgrupp", **claims}, timedelta(days=60))


def nonce_of(page: str) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', page)
    assert found is not None
    return found[1]


async def test_a_person_sees_their_choices_changes_them_and_the_change_is_announced(
        client: httpx.AsyncClient, recorder: Recorder) -> None:
    link = f"/preferences/{token()}"
    page = await client.get(link)
    assert page.status_code == 200 and 'lang="sv"' in page.text
    assert "Det du måste känna till får du alltid." in page.text and "Som min grupp (varje månad)" in page.text
    form = {"nonce": nonce_of(page.text), "digest": "weekly", "newsletters": "nej", "awareness_email": "ja"}
    saved = await client.post(link, data=form)
    assert saved.status_code == 200 and "Dina val är sparade" in saved.text
    [changed] = recorder[topics.PREFERENCES_CHANGED]
    assert (changed["person_id"], changed["digest"], changed["newsletters"], changed["awareness_email"]) == (
        "p1", "weekly", False, True)
    again = await client.get(link)
    assert 'value="weekly" checked' in again.text
    replayed = await client.post(link, data=form)
    assert replayed.status_code == 409 and "redan skickat" in replayed.text
    assert len(recorder[topics.PREFERENCES_CHANGED]) == 1


async def test_one_click_unsubscribe_takes_effect_at_once_and_a_repeat_changes_nothing_more(
        client: httpx.AsyncClient, recorder: Recorder, centre: PreferenceCentre) -> None:
    link = f"/unsubscribe/{token()}"
    assert "Avsluta" in (await client.get(link)).text  # a page with a button; a GET changes nothing
    assert recorder[topics.PREFERENCES_CHANGED] == []
    for _ in range(2):
        done = await client.post(link, content=b"List-Unsubscribe=One-Click",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200 and "inte fler nyhetsbrev" in done.text
    choice = await centre.current("fvm", "p1")
    assert (choice.digest, choice.newsletters) == ("none", False)
    assert {(c["digest"], c["newsletters"]) for c in recorder[topics.PREFERENCES_CHANGED]} == {("none", False)}
    bare = await client.post(link, content=b"")
    assert bare.status_code == 400


@pytest.mark.parametrize(("link", "status", "words"), [
    (lambda: token(LinkSigner(b"another-key-another-key-another-key")), 400, "inte en som vi har skickat"),
    (lambda: token()[:-2] + "xx", 400, "ändrats"),
    (lambda: "inte-en-länk", 400, "Länken fungerar inte"),
    (lambda: "é.x", 400, "Länken fungerar inte"),  # a probe's: it answered 500
    (lambda: token() + "é", 400, "Länken fungerar inte"),
    (lambda: token(program="okand"), 404, "program som inte finns"),
    (lambda: LinkSigner(KEY, Clock(datetime.now(UTC) - timedelta(days=90))).sign(
        "prefs", {"program": "fvm", "person": "p1"}, timedelta(days=60)), 410, "gått ut")])
async def test_a_link_that_cannot_be_trusted_gets_a_clear_swedish_page_and_changes_nothing(
        client: httpx.AsyncClient, recorder: Recorder, link: object, status: int, words: str) -> None:
    bad = link()  # type: ignore[operator]
    for response in (await client.get(f"/preferences/{bad}"),
                     await client.post(f"/unsubscribe/{bad}", content=b"List-Unsubscribe=One-Click")):
        assert response.status_code == status and words in response.text and 'lang="sv"' in response.text
    assert recorder[topics.PREFERENCES_CHANGED] == []


async def test_a_choice_that_is_not_one_of_the_options_is_refused(client: httpx.AsyncClient) -> None:
    link = f"/preferences/{token()}"
    nonce = nonce_of((await client.get(link)).text)
    refused = await client.post(link, data={"nonce": nonce, "digest": "daily", "newsletters": "ja",
                                            "awareness_email": "nej"})
    assert refused.status_code == 422 and "Välj ett alternativ" in refused.text


async def test_a_change_saved_but_not_announced_is_announced_after_a_start(
        centre: PreferenceCentre, broker: KafkaBroker, recorder: Recorder) -> None:
    from contracts.preferences import PreferencesChanged

    await centre.store.save(PreferencesChanged(program="fvm", person_id="p9", digest="none",
                                               changed_at=datetime.now(UTC)))
    async with TestKafkaBroker(broker):
        assert await centre.announce_pending() == 1
        assert await centre.announce_pending() == 0
    assert [c["person_id"] for c in recorder[topics.PREFERENCES_CHANGED]] == ["p9"]
