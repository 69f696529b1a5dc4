"""Four eyes at the gateway, with the programme files as they are (must-know, external groups and more than
1 000 recipients need approval): what is held sends nothing, who may approve, what voids an approval, expiry,
rejection, cancellation, and the register of it all."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from contracts import topics
from programs import Role
from services.common.bus import Bus
from services.gateway.relay import OutboxRelay
from services.gateway.store import GatewayStore
from tests.conftest import sign_in_as
from tests.service.conftest import BASE, Clock, Console, Recorder

Gateway = tuple[Console, GatewayStore]


def decision(importance: str = "must_know", **over: Any) -> dict[str, Any]:
    return {"type": "design.decision", "program": "fvm", "publisher": "-", "importance": importance,
            "audiences": ["politisk-styrgrupp"], **over,
            "payload": {"workstream": "Vårdadministration", "level": "clinical_leadership",
                        "title": "Nytt arbetssätt vid utskrivning", "summary": "Utskrivningen blir gemensam."}}


async def submit(browser: Console, issuer: str, body: dict[str, Any], sub: str = "redaktor@fvm.example",
                 **roles: set[Role]) -> str:
    await sign_in_as(browser.client, issuer, sub, **(roles or {"fvm": {Role.EDITOR}}))
    response = await browser.client.post("/v1/events", json=body, headers=await browser.headers())
    assert response.status_code == 202, response.text
    return str(response.json()["event_id"])


async def status(browser: Console, event_id: str) -> dict[str, Any]:
    response = await browser.client.get(f"/v1/events/{event_id}", headers=await browser.headers(csrf=False))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def decide(browser: Console, event_id: str, content_hash: str, decision: str = "approve",
                 comment: str | None = None) -> Any:
    return await browser.client.post(f"/v1/events/{event_id}/approval", headers=await browser.headers(),
                                     json={"decision": decision, "content_hash": content_hash, "comment": comment})


async def relayed(store: GatewayStore, broker: KafkaBroker, bus: Bus) -> int:
    async with TestKafkaBroker(broker):
        return await OutboxRelay(store, bus).relay_once()


async def test_a_must_know_event_waits_sends_nothing_and_goes_out_when_a_second_person_approves(
        console: Gateway, broker: KafkaBroker, bus: Bus, oidc_issuer: str) -> None:
    browser, store = console
    seen = Recorder(broker, topics.event_topic("design.decision"))
    event_id = await submit(browser, oidc_issuer, decision(), fvm={Role.EDITOR, Role.APPROVER})
    held = await status(browser, event_id)
    assert held["status"] == "awaiting_approval"
    approval = held["approval"]
    assert approval["reasons"] == [{"rule": "importance", "detail": "must_know"}]
    assert (approval["submitted_by"], approval["changed_by"]) == ("redaktor@fvm.example", "redaktor@fvm.example")
    # Nothing of it left the gateway.
    assert await relayed(store, broker, bus) == 0 and seen[topics.event_topic("design.decision")] == []

    # Its author may approve in the programme, but never their own.
    own = await decide(browser, event_id, approval["content_hash"])
    assert own.status_code == 403 and "wrote or changed" in own.json()["detail"]
    # A system's token never approves.
    by_token = await browser.client.post(f"/v1/events/{event_id}/approval",
                                         headers={"Authorization": "Bearer fvm-token-123"},
                                         json={"decision": "approve", "content_hash": approval["content_hash"]})
    assert by_token.status_code == 403 and "token never approves" in by_token.json()["detail"]
    # An editor who is not an approver may not.
    await sign_in_as(browser.client, oidc_issuer, "annan-redaktor@fvm.example", fvm={Role.EDITOR})
    assert (await decide(browser, event_id, approval["content_hash"])).status_code == 403

    await sign_in_as(browser.client, oidc_issuer, "godkannare@fvm.example", fvm={Role.APPROVER})
    approved = await decide(browser, event_id, approval["content_hash"], comment="Stämmer med protokollet.")
    assert approved.status_code == 200, approved.text
    assert await relayed(store, broker, bus) == 1
    assert [m["event_id"] for m in seen[topics.event_topic("design.decision")]] == [event_id]
    after = await status(browser, event_id)
    assert after["status"] == "accepted"
    assert [(d["action"], d["actor"], d["comment"]) for d in after["approval"]["history"]] == [
        ("submit", "redaktor@fvm.example", None), ("approve", "godkannare@fvm.example", "Stämmer med protokollet.")]
    again = await decide(browser, event_id, approval["content_hash"])
    assert again.status_code == 409 and "approved already by godkannare@fvm.example" in again.json()["detail"]


async def test_a_change_voids_what_the_approver_saw_and_who_changed_it_may_not_approve_it(
        console: Gateway, oidc_issuer: str) -> None:
    browser, _store = console
    event_id = await submit(browser, oidc_issuer, decision())
    seen = (await status(browser, event_id))["approval"]["content_hash"]

    # A second editor (who is also an approver) changes the text: it is submitted again, with a new hash.
    await sign_in_as(browser.client, oidc_issuer, "andra@fvm.example", fvm={Role.EDITOR, Role.APPROVER})
    changed_body = decision()
    changed_body["payload"]["summary"] = "Utskrivningen blir gemensam från och med i höst."
    changed = await browser.client.put(f"/v1/events/{event_id}", json=changed_body, headers=await browser.headers())
    assert changed.status_code == 200 and changed.json()["status"] == "awaiting_approval", changed.text
    now = (await status(browser, event_id))["approval"]
    assert now["content_hash"] != seen and now["changed_by"] == "andra@fvm.example"
    assert (await decide(browser, event_id, now["content_hash"])).status_code == 403  # they changed it last

    await sign_in_as(browser.client, oidc_issuer, "godkannare@fvm.example", fvm={Role.APPROVER})
    stale = await decide(browser, event_id, seen)
    assert stale.status_code == 409 and "changed since you saw it" in stale.json()["detail"]
    assert (await status(browser, event_id))["status"] == "awaiting_approval"  # still in the queue
    queue = await browser.client.get("/v1/approvals?program=fvm", headers=await browser.headers(csrf=False))
    assert queue.json()["events"] == [event_id]
    assert (await decide(browser, event_id, now["content_hash"])).status_code == 200
    assert (await browser.client.get("/v1/approvals", headers=await browser.headers(csrf=False))).json()["events"] == []


async def test_an_expired_submission_is_not_honoured_and_a_change_submits_it_again(
        console: Gateway, oidc_issuer: str, gateway_clock: Clock) -> None:
    browser, _store = console
    event_id = await submit(browser, oidc_issuer, decision())
    await sign_in_as(browser.client, oidc_issuer, "godkannare@fvm.example", fvm={Role.APPROVER})
    held = await status(browser, event_id)
    gateway_clock.now += timedelta(hours=72, seconds=1)
    assert (await status(browser, event_id))["status"] == "approval_expired"
    late = await decide(browser, event_id, held["approval"]["content_hash"])
    assert late.status_code == 409 and "expired" in late.json()["detail"]

    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    again = await browser.client.put(f"/v1/events/{event_id}", json=decision(), headers=await browser.headers())
    assert again.status_code == 200
    await sign_in_as(browser.client, oidc_issuer, "godkannare@fvm.example", fvm={Role.APPROVER})
    fresh = await status(browser, event_id)
    assert fresh["status"] == "awaiting_approval"
    assert datetime.fromisoformat(fresh["approval"]["expires_at"]) > gateway_clock.now
    assert (await decide(browser, event_id, fresh["approval"]["content_hash"])).status_code == 200


async def test_a_rejection_says_why_and_a_rejected_event_is_changed_or_cancelled_never_sent(
        console: Gateway, broker: KafkaBroker, bus: Bus, oidc_issuer: str) -> None:
    browser, store = console
    event_id = await submit(browser, oidc_issuer, decision())
    await sign_in_as(browser.client, oidc_issuer, "godkannare@fvm.example", fvm={Role.APPROVER})
    digest = (await status(browser, event_id))["approval"]["content_hash"]
    silent = await decide(browser, event_id, digest, "reject")
    assert silent.status_code == 422 and silent.json()["errors"][0]["path"] == "comment"
    rejected = await decide(browser, event_id, digest, "reject", "Datumet saknas.")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    after = await status(browser, event_id)
    assert after["status"] == "rejected" and after["approval"]["history"][-1]["comment"] == "Datumet saknas."
    assert (await decide(browser, event_id, digest)).status_code == 409  # decided: a change submits it again

    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    cancelled = await browser.client.post(f"/v1/events/{event_id}/cancellation", json={"comment": "Ersätts."},
                                          headers=await browser.headers())
    assert cancelled.status_code == 200 and (await status(browser, event_id))["status"] == "cancelled"
    refused = await browser.client.put(f"/v1/events/{event_id}", json=decision(), headers=await browser.headers())
    assert refused.status_code == 409 and "cancelled" in refused.json()["detail"]
    assert await relayed(store, broker, bus) == 0


async def test_what_the_rules_do_not_name_goes_out_at_once_and_a_dry_run_says_what_would_wait(
        console: Gateway, oidc_issuer: str) -> None:
    browser, _store = console
    plain = await submit(browser, oidc_issuer, decision("awareness"))
    assert (await status(browser, plain))["status"] == "accepted"
    dry = await browser.client.post("/v1/events?dry_run=true", headers=await browser.headers(), json=decision())
    assert dry.status_code == 200 and dry.json()["approval"] == [{"rule": "importance", "detail": "must_know"}]
    calm = await browser.client.post("/v1/events?dry_run=true", headers=await browser.headers(),
                                     json=decision("awareness"))
    assert calm.json()["approval"] == []
    await sign_in_as(browser.client, oidc_issuer, "godkannare@fvm.example", fvm={Role.APPROVER})
    needless = await decide(browser, plain, "0" * 64)
    assert needless.status_code == 409 and "needs no approval" in needless.json()["detail"]


async def test_a_held_event_is_cancelled_before_its_instant_and_one_that_went_out_is_not(
        console: Gateway, broker: KafkaBroker, bus: Bus, oidc_issuer: str) -> None:
    """An embargoed event went to the tailor, which holds it: cancelling it is announced to the tailor and the
    scheduler. One that went out at once can only be retracted: 409, with what went out."""
    browser, store = console
    cancelled = Recorder(broker, topics.EVENT_CANCELLED)
    embargo = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    later = await submit(browser, oidc_issuer, decision("awareness", embargo_until=embargo))
    now = await submit(browser, oidc_issuer, decision("awareness"))
    assert await relayed(store, broker, bus) == 2
    done = await browser.client.post(f"/v1/events/{later}/cancellation", json={}, headers=await browser.headers())
    assert done.status_code == 200 and (await status(browser, later))["status"] == "cancelled"
    assert await relayed(store, broker, bus) == 1
    assert [m["event_id"] for m in cancelled[topics.EVENT_CANCELLED]] == [later]
    again = await browser.client.post(f"/v1/events/{later}/cancellation", json={}, headers=await browser.headers())
    assert again.status_code == 409 and "cancelled by redaktor@fvm.example" in again.json()["detail"]
    too_late = await browser.client.post(f"/v1/events/{now}/cancellation", json={}, headers=await browser.headers())
    assert too_late.status_code == 409 and "sending began" in too_late.json()["detail"]
    await sign_in_as(browser.client, oidc_issuer, "lasare@fvm.example", fvm={Role.READER})
    denied = await browser.client.post(f"/v1/events/{later}/cancellation", json={}, headers=await browser.headers())
    assert denied.status_code == 403


async def test_the_register_holds_submit_approve_reject_and_cancel(console: Gateway, oidc_issuer: str) -> None:
    browser, _store = console
    approved = await submit(browser, oidc_issuer, decision())
    rejected = await submit(browser, oidc_issuer, decision())
    await sign_in_as(browser.client, oidc_issuer, "godkannare@fvm.example", fvm={Role.APPROVER})
    for event_id, verdict in ((approved, "approve"), (rejected, "reject")):
        digest = (await status(browser, event_id))["approval"]["content_hash"]
        assert (await decide(browser, event_id, digest, verdict, "Nej.")).status_code == 200
    await sign_in_as(browser.client, oidc_issuer, "redaktor@fvm.example", fvm={Role.EDITOR})
    await browser.client.post(f"/v1/events/{rejected}/cancellation", json={}, headers=await browser.headers())
    await sign_in_as(browser.client, oidc_issuer, "admin@budkavle.example", fvm={Role.ADMIN})
    rows = (await browser.client.get("/v1/audit?program=fvm", headers=await browser.headers(csrf=False))).json()["rows"]
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [
        ("redaktor@fvm.example", "submit", approved), ("redaktor@fvm.example", "submit", rejected),
        ("godkannare@fvm.example", "approve", approved), ("godkannare@fvm.example", "reject", rejected),
        ("redaktor@fvm.example", "cancel", rejected)]
    assert "Nej." not in str(rows)  # comments stay with the event, not in the register


@pytest.mark.parametrize("body, status_code, words", [
    ({"decision": "approve"}, 422, "content_hash"),
    ({"decision": "maybe", "content_hash": "0" * 64}, 422, "decision"),
    ({"decision": "approve", "content_hash": "0" * 64, "extra": 1}, 422, "extra"),
])
async def test_a_malformed_approval_is_refused_with_its_path(console: Gateway, oidc_issuer: str,
                                                             body: dict[str, Any], status_code: int, words: str) -> None:
    browser, _store = console
    event_id = await submit(browser, oidc_issuer, decision())
    await sign_in_as(browser.client, oidc_issuer, "godkannare@fvm.example", fvm={Role.APPROVER})
    refused = await browser.client.post(f"/v1/events/{event_id}/approval", json=body, headers=await browser.headers())
    assert refused.status_code == status_code and words in refused.text
    unknown = await browser.client.post(f"{BASE}/v1/events/00000000-0000-4000-8000-000000000000/approval",
                                        json={"decision": "approve", "content_hash": "0" * 64},
                                        headers=await browser.headers())
    assert unknown.status_code == 404
