import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import DeadLetter, DeliveryPlan, EventPlanned
from contracts.events import Event
from programs import Program
from services.common.auth import TokenAuthority, parse_tokens
from services.common.bus import Bus
from services.common.db import create_tables
from services.common.ended_sessions import EndedSessions
from services.common.problems import install_problem_handler
from services.gateway.accept import AcceptEvent
from services.gateway.api import build_http
from services.gateway.dead_letters import DeadLetterStore
from services.gateway.dead_letters import build_http as dead_letters_http
from services.gateway.handlers import build_router
from services.gateway.relay import OutboxRelay
from services.gateway.store import ENDED_SESSIONS, GatewayStore, metadata
from services.tailor.channels import preview
from services.tailor.directory import Recipient
from services.tailor.planning import plan_deliveries
from services.tailor.rendering import Renderer
from tests.conftest import TEMPLATES_DIR, make_event, without_approval
from tests.outcomes import chunk_state
from tests.service.conftest import Recorder

Gateway = tuple[httpx.AsyncClient, GatewayStore, OutboxRelay]
TOKEN = {"Authorization": "Bearer fvm-token-123"}
FVIS_ONLY = {"Authorization": "Bearer fvis-token-123"}


def event_json(**over: Any) -> dict[str, Any]:
    return json.loads(make_event(audiences=["politisk-styrgrupp"], **over).model_dump_json(exclude={"event_id"}))


@pytest.fixture
async def gateway(engine: AsyncEngine, bus: Bus, broker: KafkaBroker, fvm: Program,
                  small_directory: list[Recipient]) -> AsyncIterator[Gateway]:
    await create_tables(engine, metadata)
    store = GatewayStore(engine)
    relay = OutboxRelay(store, bus)

    async def planner(event: Event, _authorization: str) -> DeliveryPlan:
        return plan_deliveries(event, fvm, small_directory).contract

    authority = TokenAuthority(parse_tokens("fvm-token-123=fvm,fvis-token-123=fvis,all-token-123=fvm|okand,"
                                            "admin-token-123=fvm|fvis:admin,reader-token-123=fvm:reader"))
    app = FastAPI()
    install_problem_handler(app)
    letters = DeadLetterStore(engine)
    renderer = Renderer(TEMPLATES_DIR, "http://gw")

    async def previewer(event: Event, audience: str, channel: str, _authorization: str) -> dict[str, str]:
        group = fvm.audience(audience)
        assert group is not None
        return preview(event, fvm, group, channel, renderer)

    app.include_router(build_http(store, letters, authority, {"fvm": without_approval(fvm)}, planner,
                                  AcceptEvent(store, relay.notify), "http://gw", previewer))
    app.include_router(dead_letters_http(letters, authority, bus))
    broker.include_router(build_router(store, letters, bus, EndedSessions(engine, ENDED_SESSIONS)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client, store, relay


async def test_accepted_event_is_relayed_from_the_outbox_to_its_topic(
        gateway: Gateway, broker: KafkaBroker) -> None:
    client, store, relay = gateway
    seen = Recorder(broker, topics.event_topic("steering.decision"))
    # The status link comes from BUDKAVLE_PUBLIC_URL, never from what the request says its host is.
    response = await client.post("/v1/events", json=event_json(), headers={**TOKEN, "Host": "evil.example"})
    assert response.status_code == 202
    body = response.json()
    assert body["status_url"] == f"http://gw/v1/events/{body['event_id']}"
    async with TestKafkaBroker(broker):
        assert await relay.relay_once() == 1
        assert await relay.relay_once() == 0
    [relayed] = seen[topics.event_topic("steering.decision")]
    assert relayed["event_id"] == body["event_id"] and relayed["published_at"]


async def test_status_follows_the_plan_and_the_outcomes_heard_on_the_bus(
        gateway: Gateway, broker: KafkaBroker, bus: Bus) -> None:
    client, store, _ = gateway
    event_id = (await client.post("/v1/events", json=event_json(), headers=TOKEN)).json()["event_id"]
    assert (await client.get(f"/v1/events/{event_id}", headers=TOKEN)).json()["status"] == "accepted"
    now = datetime.now(UTC)
    later = now + timedelta(minutes=5)
    plan = DeliveryPlan(event_id=event_id, program="fvm", groups=(), refused=(),
                        targeted={"politisk-styrgrupp": {"email": 3}})

    group = "politisk-styrgrupp"
    failed = ("p2", "failed", "permanent: SMTP 550", None)
    first = chunk_state(event_id, group, 3, sent=1, at=now,
                        unsent=(failed, ("p3", "deferred", "temporary: SMTP 451 greylisted", later)))
    retried = chunk_state(event_id, group, 3, sent=2, unsent=(failed,), at=later)

    async with TestKafkaBroker(broker):
        await bus.publish(topics.EVENT_PLANNED, EventPlanned(plan=plan, status="planned", planned_at=now), event_id)
        for _ in range(2):  # a redelivered announcement counts once
            await bus.publish(topics.DELIVERY_OUTCOMES, first, first.bus_key)
        waiting = (await client.get(f"/v1/events/{event_id}", headers=TOKEN)).json()
        await bus.publish(topics.DELIVERY_OUTCOMES, retried, retried.bus_key)
        await bus.publish(topics.DELIVERY_OUTCOMES, first, first.bus_key)  # late: an older state changes nothing
    status = (await client.get(f"/v1/events/{event_id}", headers=TOKEN)).json()
    assert waiting["status"] == "delivering"  # a deferred delivery is not done yet
    assert waiting["groups"][group]["email"] == {
        "targeted": 3, "sent": 1, "failed": 1, "deferred": 1, "next_attempt_at": later.isoformat().replace("+00:00", "Z")}
    assert status["status"] == "delivered"
    assert status["groups"][group]["email"] == {
        "targeted": 3, "sent": 2, "failed": 1, "deferred": 0, "next_attempt_at": None}
    assert status["failures"] == [{"audience_id": group, "channel": "email", "reason": "permanent: SMTP 550"}]


async def test_a_chunk_larger_than_the_plan_targeted_is_dead_lettered_and_counts_nothing(
        gateway: Gateway, broker: KafkaBroker, bus: Bus, recorder: Recorder) -> None:
    client, store, _ = gateway
    event_id = (await client.post("/v1/events", json=event_json(), headers=TOKEN)).json()["event_id"]
    now = datetime.now(UTC)
    plan = DeliveryPlan(event_id=event_id, program="fvm", groups=(), refused=(),
                        targeted={"politisk-styrgrupp": {"email": 3}})
    too_big = chunk_state(event_id, "politisk-styrgrupp", 4, sent=4)
    claims_more = chunk_state(event_id, "politisk-styrgrupp", 3, sent=3).model_dump(mode="json") | {"sent": 5}
    async with TestKafkaBroker(broker):
        await bus.publish(topics.EVENT_PLANNED, EventPlanned(plan=plan, status="planned", planned_at=now), event_id)
        await bus.publish(topics.DELIVERY_OUTCOMES, too_big, too_big.bus_key)
        await bus.publish_json(topics.DELIVERY_OUTCOMES, json.dumps(claims_more).encode(), "k")
        never = chunk_state(uuid4(), "politisk-styrgrupp", 1, sent=1)  # a digest's, or nothing the gateway took
        await bus.publish(topics.DELIVERY_OUTCOMES, never, never.bus_key)
    reasons = [d["reason"] for d in recorder[topics.DEAD_LETTER] if d["consumer"] == "gateway"]
    assert len(reasons) == 2
    assert "a email chunk of 4 deliveries to politisk-styrgrupp, but the plan targeted 3" in reasons[0]
    assert "claims 5 deliveries but its command carried 3" in reasons[1]
    assert await store.outcome_counts(UUID(event_id)) == {}
    assert await store.outcome_counts(never.event_id) == {}


async def test_a_retried_post_with_the_same_idempotency_key_returns_the_first_event(gateway: Gateway) -> None:
    client, store, _ = gateway
    body = event_json()
    headers = {**TOKEN, "Idempotency-Key": "retry-1"}
    first = await client.post("/v1/events", json=body, headers=headers)
    again = await client.post("/v1/events", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["event_id"] == again.json()["event_id"]
    assert len(await store.pending_outbox(10)) == 1
    changed = await client.post("/v1/events", json={**body, "publisher": "other"}, headers=headers)
    assert changed.status_code == 409


async def test_dry_run_returns_the_plan_and_sends_nothing(gateway: Gateway) -> None:
    client, store, _ = gateway
    body = event_json(sensitivity="confidential")
    body["audiences"] = ["politisk-styrgrupp", "facklig-referensgrupp"]
    response = await client.post("/v1/events?dry_run=true", json=body, headers=TOKEN)
    assert response.status_code == 200
    plan = response.json()["plan"]
    assert [g["audience_id"] for g in plan["groups"]] == ["politisk-styrgrupp"]
    assert plan["groups"][0]["recipients"] == 9 and plan["groups"][0]["channels"] == ["email"]
    assert plan["refused"][0]["audience_id"] == "facklig-referensgrupp"
    assert plan["refused"][0]["rule"] == "sensitivity"
    assert await store.pending_outbox(10) == []


async def test_a_misspelt_query_parameter_is_refused_and_publishes_nothing(gateway: Gateway) -> None:
    """`dry_rn=true` was ignored: the event went out for real where the caller meant to look at its plan."""
    client, store, _ = gateway
    response = await client.post("/v1/events?dry_rn=true", json=event_json(), headers=TOKEN)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"path": "query.dry_rn",
                                          "reason": "not a parameter of this operation (it has: dry_run)"}]
    assert await store.pending_outbox(10) == []


@pytest.mark.parametrize("headers,status", [({}, 401), ({"Authorization": "Bearer nope-nope-nope"}, 401),
                                            ({"Authorization": "Basic fvm-token-123"}, 401), (FVIS_ONLY, 403)])
async def test_a_request_without_a_token_for_the_programme_is_refused_and_leaves_nothing_behind(gateway: Gateway,
                                                headers: dict[str, str], status: int) -> None:
    client, store, _ = gateway
    response = await client.post("/v1/events", json=event_json(), headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    assert await store.pending_outbox(10) == []


async def test_an_invalid_event_is_refused_naming_every_invalid_field_and_leaves_nothing_behind(
        gateway: Gateway) -> None:
    client, store, _ = gateway
    body = event_json()
    del body["payload"]["title"]
    body["importance"] = "urgent"
    body["payload"]["effective_date"] = "soon"
    response = await client.post("/v1/events", json=body, headers=TOKEN)
    assert response.status_code == 422
    paths = {e["path"] for e in response.json()["errors"]}
    assert {"steering.decision.importance", "steering.decision.payload.title",
            "steering.decision.payload.effective_date"} <= paths
    assert await store.pending_outbox(10) == []


@pytest.mark.parametrize("mutate,path", [
    (lambda b: b.update(type="gossip"), None),
    (lambda b: b.update(program="okand"), "program"),
    (lambda b: b.update(audiences=["politisk-styrgrupp", "no-such-group"]), "audiences.1"),
])
async def test_an_unknown_type_programme_or_target_group_is_refused_and_leaves_nothing_behind(gateway: Gateway,
                                                         mutate: Any, path: str | None) -> None:
    client, store, _ = gateway
    body = event_json()
    mutate(body)
    response = await client.post("/v1/events", json=body, headers={"Authorization": "Bearer all-token-123"})
    assert response.status_code == 422
    errors = response.json()["errors"]
    if path is None:
        assert "gossip" in errors[0]["reason"]
    else:
        assert [e["path"] for e in errors] == [path]
    assert await store.pending_outbox(10) == []


async def test_a_malformed_or_oversized_body_is_refused_and_leaves_nothing_behind(
        gateway: Gateway) -> None:
    client, store, _ = gateway
    bad = await client.post("/v1/events", content=b"{not json", headers=TOKEN)
    assert bad.status_code == 422 and bad.json()["detail"] == "body is not valid JSON"
    array = await client.post("/v1/events", json=[1, 2], headers=TOKEN)
    assert array.status_code == 422
    body = event_json()
    body["payload"]["decision_text"] = "x" * (300 * 1024)
    big = await client.post("/v1/events", json=body, headers=TOKEN)
    assert big.status_code == 413

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds as the body streams in
        for _ in range(300):
            yield b" " * 1024
    chunked = await client.post("/v1/events", content=streamed(), headers=TOKEN)
    assert chunked.status_code == 413
    assert await store.pending_outbox(10) == []


async def test_a_programmes_target_groups_are_listed_for_its_tokens_only(gateway: Gateway) -> None:
    client, _, _ = gateway
    response = await client.get("/v1/programs/fvm/audiences", headers=TOKEN)
    assert response.status_code == 200
    ids = [a["id"] for a in response.json()["audiences"]]
    assert "politisk-styrgrupp" in ids and len(ids) == 30
    assert (await client.get("/v1/programs/fvm/audiences", headers=FVIS_ONLY)).status_code == 403
    assert (await client.get("/v1/programs/fvm/audiences")).status_code == 401


async def test_bad_query_header_or_path_is_422_in_the_same_shape(
        gateway: Gateway) -> None:
    client, _, _ = gateway
    bad_flag = await client.post("/v1/events?dry_run=maybe", json=event_json(), headers=TOKEN)
    assert bad_flag.status_code == 422 and bad_flag.json()["errors"][0]["path"] == "query.dry_run"
    long_key = await client.post("/v1/events", json=event_json(), headers={**TOKEN, "Idempotency-Key": "k" * 201})
    assert long_key.status_code == 422 and long_key.json()["errors"][0]["path"] == "header.idempotency-key"
    bad_id = await client.get("/v1/events/not-a-uuid", headers=TOKEN)
    assert bad_id.status_code == 422 and bad_id.json()["errors"][0]["path"] == "path.event_id"


async def test_a_dry_run_when_the_tailor_cannot_be_reached_is_503(engine: AsyncEngine, fvm: Program) -> None:
    from services.embedded.broker import free_port
    from services.gateway.main import http_planner

    await create_tables(engine, metadata)
    app = FastAPI()
    install_problem_handler(app)
    store = GatewayStore(engine)
    app.include_router(build_http(store, DeadLetterStore(engine), TokenAuthority(parse_tokens("fvm-token-123=fvm")),
                                  {"fvm": fvm},
                                  http_planner(f"http://127.0.0.1:{free_port()}"), AcceptEvent(store, lambda: None),
                                  "http://gw"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        response = await client.post("/v1/events?dry_run=true", json=event_json(), headers=TOKEN)
    assert response.status_code == 503 and response.json()["detail"].startswith("cannot plan now: ConnectError")


async def test_dead_letters_are_listed_per_programme_without_payloads_and_can_be_sent_again(
        gateway: Gateway, broker: KafkaBroker, bus: Bus) -> None:
    client, _, _ = gateway
    event_id = (await client.post("/v1/events", json=event_json(), headers=TOKEN)).json()["event_id"]
    now = datetime.now(UTC)
    fvm_chunk = json.dumps({"event_id": event_id, "program": "fvm", "recipients": [{"address": "anna@example.se"}]})
    letters = [DeadLetter(topic=topics.EMAIL_DELIVERY_REQUESTED, consumer="email", reason="handler failed 3 times: X",
                          payload=fvm_chunk, at=now),
               DeadLetter(topic=topics.event_topic("status.update"), consumer="tailor", reason="invalid",
                          payload='{"program": "fvis", "event_id": "x"}', at=now),
               DeadLetter(topic=topics.event_topic("status.update"), consumer="tailor", reason="not JSON",
                          payload="\ufffd garbage", at=now)]
    redriven = Recorder(broker, topics.EMAIL_DELIVERY_REQUESTED)
    async with TestKafkaBroker(broker):
        for letter in letters:
            await bus.publish(topics.DEAD_LETTER, letter, "chunk-key")
        listed = (await client.get("/v1/dead-letters", headers=TOKEN)).json()["dead_letters"]
        status = (await client.get(f"/v1/events/{event_id}", headers=TOKEN)).json()
        [chunk] = [d for d in listed if d["consumer"] == "email"]
        again = await client.post(f"/v1/dead-letters/{chunk['id']}/redrive", headers=TOKEN)
        [fvis_id] = [d["id"] for d in (await client.get("/v1/dead-letters", headers=FVIS_ONLY)).json()["dead_letters"]
                     if d["program"] == "fvis"]
        foreign = await client.post(f"/v1/dead-letters/{fvis_id}/redrive", headers=TOKEN)
    assert [(d["consumer"], d["program"]) for d in listed] == [("email", "fvm")]  # not fvis's, nor the unreadable one
    assert "anna@example.se" not in json.dumps(listed)  # no payloads, no addresses
    assert status["dead_letters"][0]["reason"] == "handler failed 3 times: X"
    assert again.status_code == 202 and again.json()["redrives"] == 1
    [sent_again] = redriven[topics.EMAIL_DELIVERY_REQUESTED]
    assert sent_again["event_id"] == event_id
    assert foreign.status_code == 404
    assert (await client.get("/v1/dead-letters")).status_code == 401


async def test_a_dead_letter_of_no_programme_is_seen_and_sent_again_by_an_admin_token_only(
        gateway: Gateway, broker: KafkaBroker, bus: Bus) -> None:
    """A probe listed and redrove a letter whose programme could not be read with every token."""
    client, _, _ = gateway
    unreadable = DeadLetter(topic=topics.event_topic("status.update"), consumer="tailor", reason="not JSON",
                            payload="\ufffd garbage", at=datetime.now(UTC))
    async with TestKafkaBroker(broker):
        await bus.publish(topics.DEAD_LETTER, unreadable, "k")
        seen = {name: (await client.get("/v1/dead-letters", headers={"Authorization": f"Bearer {name}-token-123"})
                       ).json()["dead_letters"] for name in ("fvm", "fvis", "all", "reader", "admin")}
        [letter] = seen["admin"]
        tried = {name: (await client.post(f"/v1/dead-letters/{letter['id']}/redrive",
                                          headers={"Authorization": f"Bearer {name}-token-123"})).status_code
                 for name in ("fvm", "fvis", "reader", "admin")}
    assert letter["program"] is None and letter["reason"] == "not JSON"
    assert all(listed == [] for name, listed in seen.items() if name != "admin")
    assert tried == {"fvm": 404, "fvis": 404, "reader": 404, "admin": 202}


async def test_a_reader_token_reads_but_never_publishes(gateway: Gateway) -> None:
    client, _, _ = gateway
    reader = {"Authorization": "Bearer reader-token-123"}
    refused = await client.post("/v1/events", json=event_json(), headers=reader)
    assert refused.status_code == 403
    event_id = (await client.post("/v1/events", json=event_json(), headers=TOKEN)).json()["event_id"]
    assert (await client.get(f"/v1/events/{event_id}", headers=reader)).status_code == 200


def newsletter_json(send_at: datetime, **over: Any) -> dict[str, Any]:
    event = make_event("newsletter.issue", audiences=["politisk-styrgrupp"], payload={
        "title": "Nyhetsbrev", "sections": [{"heading": "Rubrik", "body": "Text."}], "send_at": send_at.isoformat()},
        **over)
    return json.loads(event.model_dump_json(exclude={"event_id"}))


async def test_a_newsletter_for_later_shows_as_scheduled_with_its_time_and_one_for_the_past_is_sent_now_and_said_so(
        gateway: Gateway, broker: KafkaBroker, bus: Bus) -> None:
    client, _, _ = gateway
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    accepted = (await client.post("/v1/events", json=newsletter_json(later), headers=TOKEN)).json()
    assert accepted["notice"] is None
    plan = DeliveryPlan(event_id=accepted["event_id"], program="fvm", groups=(), refused=(),
                        targeted={"politisk-styrgrupp": {"email": 9}}, embargoed_until=later)
    async with TestKafkaBroker(broker):
        await bus.publish(topics.EVENT_PLANNED, EventPlanned(plan=plan, status="embargoed", planned_at=later),
                          accepted["event_id"])
    status = (await client.get(f"/v1/events/{accepted['event_id']}", headers=TOKEN)).json()
    assert status["status"] == "scheduled" and datetime.fromisoformat(status["send_at"]) == later

    past = (await client.post("/v1/events", json=newsletter_json(datetime.now(UTC) - timedelta(hours=1)),
                              headers=TOKEN)).json()
    assert "has passed: the newsletter is sent now" in past["notice"]


@pytest.mark.parametrize(("payload", "path"), [
    ({"title": "Tomt", "sections": []}, "payload.sections"),
    ({"title": "För sent", "sections": [{"heading": "R", "body": "T"}],
      "send_at": (datetime.now(UTC) + timedelta(days=400)).isoformat()}, "payload.send_at")])
async def test_a_newsletter_without_sections_or_too_far_ahead_is_refused_with_the_path(
        gateway: Gateway, payload: dict[str, Any], path: str) -> None:
    client, _, _ = gateway
    body = {**event_json(), "type": "newsletter.issue", "payload": payload}
    response = await client.post("/v1/events", json=body, headers=TOKEN)
    assert response.status_code == 422
    assert path in json.dumps(response.json())


async def test_a_preview_renders_an_event_for_one_group_and_channel_and_refuses_what_cannot_be_previewed(
        gateway: Gateway) -> None:
    client, _, _ = gateway
    body = event_json()
    email = await client.post("/v1/previews", params={"audience": "politisk-styrgrupp", "channel": "email"},
                              json=body, headers=TOKEN)
    assert email.status_code == 200, email.text
    parts = email.json()["parts"]
    assert parts[".txt"].startswith("Ämne: ") and "Ny tidplan" in parts[".html"]
    card = await client.post("/v1/previews", params={"audience": "programstyrgrupp", "channel": "teams"}, json=body,
                             headers=TOKEN)
    assert '"AdaptiveCard"' in card.json()["parts"][".json"]
    for params, path in (({"audience": "okand-grupp", "channel": "email"}, "audience"),
                         ({"audience": "politisk-styrgrupp", "channel": "brevduva"}, "channel")):
        refused = await client.post("/v1/previews", params=params, json=body, headers=TOKEN)
        assert refused.status_code == 422 and refused.json()["errors"][0]["path"] == path
    foreign = await client.post("/v1/previews", params={"audience": "politisk-styrgrupp", "channel": "email"},
                                json=body, headers=FVIS_ONLY)
    assert foreign.status_code == 403
