"""People act through the gateway as themselves: a person-facing service (the console) passes on their session,
and the gateway, not the page, checks their role in the event's programme on every write, records who
published, and honours a sign-out announced on the bus."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from contracts import topics
from contracts.people import SessionEnded
from programs import Role
from services.common.auth import token_handle
from services.common.bus import Bus
from services.gateway.store import GatewayStore
from tests.conftest import sign_in_as
from tests.service.conftest import BASE, Console


def decision(program: str = "fvm", audiences: list[str] | None = None, importance: str = "awareness") -> dict[str, Any]:
    return {"type": "design.decision", "program": program, "publisher": "whatever the form said",
            "importance": importance, "audiences": audiences or ["politisk-styrgrupp"],
            "payload": {"workstream": "Vårdadministration", "level": "clinical_leadership",
                        "title": "Nytt arbetssätt vid utskrivning", "summary": "Utskrivningen blir gemensam."}}


async def test_an_editor_publishes_as_themselves_and_the_event_names_them(
        console: tuple[Console, GatewayStore], oidc_issuer: str) -> None:
    browser, store = console
    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    published = await browser.client.post("/v1/events", json=decision(), headers=await browser.headers())
    assert published.status_code == 202, published.text
    status = await browser.client.get(published.json()["status_url"].removeprefix(BASE),
                                      headers=await browser.headers(csrf=False))
    assert status.status_code == 200 and status.json()["status"] == "accepted"
    stored = await store.get(UUID(published.json()["event_id"]))
    assert stored is not None and stored.body["publisher"] == "redaktor@fvm.example"
    listed = await browser.client.get("/v1/events", headers=await browser.headers(csrf=False))
    [event] = listed.json()["events"]
    assert (event["title"], event["publisher"], event["status"]) == (
        "Nytt arbetssätt vid utskrivning", "redaktor@fvm.example", "accepted")
    other = await browser.client.get("/v1/events?program=fvis", headers=await browser.headers(csrf=False))
    assert other.status_code == 403  # an FVM editor reads nothing of FVIS


@pytest.mark.parametrize(("sub", "roles", "program", "detail"), [
    ("lasare@fvm.example", {"fvm": {Role.READER}}, "fvm", "you may not publish for programme 'fvm'"),
    ("redaktor@fvis.example", {"fvis": {Role.EDITOR}}, "fvm", "you may not publish for programme 'fvm'"),
])
async def test_the_gateway_refuses_a_person_without_the_role_in_the_events_programme(
        console: tuple[Console, GatewayStore], oidc_issuer: str, sub: str, roles: dict[str, set[Role]],
        program: str, detail: str) -> None:
    """A reader sees events but does not publish; an FVIS editor's crafted post of an FVM event is refused."""
    browser, store = console
    await sign_in_as(browser.client, oidc_issuer, sub, **roles)
    refused = await browser.client.post("/v1/events", json=decision(program), headers=await browser.headers())
    assert (refused.status_code, refused.json()["detail"]) == (403, detail)
    assert await store.pending_outbox(10) == []


async def test_a_persons_write_without_the_forms_csrf_token_writes_nothing(
        console: tuple[Console, GatewayStore], oidc_issuer: str) -> None:
    browser, store = console
    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    for headers in (await browser.headers(csrf=False), {**await browser.headers(), "X-CSRF-Token": "0" * 32}):
        refused = await browser.client.post("/v1/events", json=decision(), headers=headers)
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert await store.pending_outbox(10) == []


async def test_a_session_signed_out_elsewhere_acts_no_more_once_announced(
        console: tuple[Console, GatewayStore], oidc_issuer: str, broker: KafkaBroker, bus: Bus) -> None:
    browser, store = console
    sid = await sign_in_as(browser.client, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    headers = await browser.headers()
    now = datetime.now(UTC)
    async with TestKafkaBroker(broker):  # the sign-out, as the insights service announces it
        await bus.publish(topics.SESSION_ENDED, SessionEnded(sid=sid, ended_at=now, expires_at=now + timedelta(hours=8)),
                          sid)
    refused = await browser.client.post("/v1/events", json=decision(), headers=headers)
    assert refused.status_code == 401
    forged = await browser.client.post("/v1/events", json=decision(), headers={"Authorization": "Session nope.nope"})
    assert forged.status_code == 401
    assert await store.pending_outbox(10) == []


async def test_a_draft_is_kept_for_the_programmes_editors_and_a_newer_change_is_never_overwritten(
        console: tuple[Console, GatewayStore], oidc_issuer: str) -> None:
    """Two editors open one draft; the second to save is told whose change is newer, and nothing of theirs is
    written over it. An FVIS editor finds no FVM draft; a write without the form's CSRF token writes nothing."""
    browser, _store = console
    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    fields = {"payload.title": "Ny tidplan", "audiences": ["vardpersonal", "chefer"]}
    assert (await browser.client.post("/v1/drafts", json={"program": "fvm", "type": "design.decision",
                                                          "fields": fields},
                                      headers=await browser.headers(csrf=False))).status_code == 403
    created = await browser.client.post("/v1/drafts", json={"program": "fvm", "type": "design.decision",
                                                             "fields": fields}, headers=await browser.headers())
    assert created.status_code == 201, created.text
    draft = created.json()
    assert (draft["version"], draft["title"], draft["created_by"]) == (1, "Ny tidplan", "redaktor@fvm.example")
    url = f"/v1/drafts/{draft['draft_id']}"

    first = await browser.client.put(url, json={"version": 1, "fields": {**fields, "payload.title": "Första"}},
                                     headers=await browser.headers())
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = await browser.client.put(url, json={"version": 1, "fields": {**fields, "payload.title": "Andra"}},
                                     headers=await browser.headers())
    assert stale.status_code == 409 and stale.json()["detail"].startswith("changed by redaktor@fvm.example at ")
    kept = await browser.client.get(url, headers=await browser.headers(csrf=False))
    assert kept.json()["fields"]["payload.title"] == "Första" and kept.json()["fields"]["audiences"] == [
        "vardpersonal", "chefer"]
    listed = await browser.client.get("/v1/drafts", headers=await browser.headers(csrf=False))
    assert [d["title"] for d in listed.json()["drafts"]] == ["Första"]

    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvis.example", fvis={Role.EDITOR})
    assert (await browser.client.get(url, headers=await browser.headers(csrf=False))).status_code == 404
    crafted = await browser.client.put(url, json={"version": 2, "fields": {}}, headers=await browser.headers())
    assert crafted.status_code == 404
    assert (await browser.client.post("/v1/drafts", json={"program": "fvm", "type": "design.decision", "fields": {}},
                                      headers=await browser.headers())).status_code == 403
    assert (await browser.client.get("/v1/drafts", headers=await browser.headers(csrf=False))).json()["drafts"] == []

    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    assert (await browser.client.delete(f"{url}?version=1", headers=await browser.headers())).status_code == 409
    assert (await browser.client.delete(f"{url}?version=2", headers=await browser.headers())).status_code == 204
    assert (await browser.client.get(url, headers=await browser.headers(csrf=False))).status_code == 404


@pytest.mark.parametrize(("body", "path"), [
    ({"program": "fvm", "type": "design.decision", "fields": {"Payload.Title": "x"}}, "fields.Payload.Title.[key]"),
    ({"program": "fvm", "type": "design.decision"}, "fields"),
    ({"program": "FVM!", "type": "design.decision", "fields": {}}, "program"),
])
async def test_a_draft_that_is_not_one_is_refused_with_its_path(
        console: tuple[Console, GatewayStore], oidc_issuer: str, body: dict[str, Any], path: str) -> None:
    browser, _store = console
    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    refused = await browser.client.post("/v1/drafts", json=body, headers=await browser.headers())
    assert refused.status_code == 422 and [e["path"] for e in refused.json()["errors"]] == [path]


async def test_every_publication_is_in_the_audit_register_which_only_a_programmes_admin_reads(
        console: tuple[Console, GatewayStore], oidc_issuer: str) -> None:
    """The register names the person who published (their subject), the action, the event and its content's
    hash; a token's row names its handle, never the token. An editor, or another programme's editor, reads none."""
    browser, _store = console
    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    published = await browser.client.post("/v1/events", json=decision(), headers=await browser.headers())
    embargo = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    held = await browser.client.post("/v1/events", json={**decision(), "embargo_until": embargo},
                                     headers=await browser.headers())
    by_token = await browser.client.post("/v1/events", json=decision(), headers={"Authorization": "Bearer fvm-token-123"})
    assert {published.status_code, held.status_code, by_token.status_code} == {202}, (held.text, by_token.text)
    assert (await browser.client.get("/v1/audit?program=fvm", headers=await browser.headers(csrf=False))).status_code == 403

    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvis.example", fvis={Role.EDITOR})
    assert (await browser.client.get("/v1/audit?program=fvm", headers=await browser.headers(csrf=False))).status_code == 403
    await sign_in_as(browser.client, oidc_issuer, "admin@budkavle.example", fvm={Role.ADMIN})  # the admins' group
    rows = (await browser.client.get("/v1/audit?program=fvm", headers=await browser.headers(csrf=False))).json()["rows"]
    assert [(r["seq"], r["actor"], r["action"], r["target"]) for r in rows] == [
        (1, "redaktor@fvm.example", "publish", published.json()["event_id"]),
        (2, "redaktor@fvm.example", "schedule", held.json()["event_id"]),
        (3, f"token:{token_handle('fvm-token-123')}", "publish", by_token.json()["event_id"])]
    assert all(len(r["content_hash"]) == 64 for r in rows) and "fvm-token-123" not in str(rows)
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    exported = await browser.client.get("/v1/audit?program=fvm&format=csv", headers=await browser.headers(csrf=False))
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines()[0] == "seq,at,actor,action,program,target,content_hash,detail,prev_hash,hash"
    assert len(exported.text.splitlines()) == 4
    everything = await browser.client.get("/v1/audit", headers=await browser.headers(csrf=False))
    assert len(everything.json()["rows"]) == 3  # without `program`: every programme's (its group admins both)
