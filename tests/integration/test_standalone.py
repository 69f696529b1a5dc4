"""Each service runs alone (`python -m services.<name>`) against KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import httpx
from fastapi import Response

from contracts import topics
from contracts.deliveries import PublishIntranetItem
from programs import Role
from services.common.bus import Bus, create_broker
from services.common.people import Person
from services.common.sessions import Sessions
from tests.conftest import ROOT
from tests.integration.processes import ServiceProcess
from tests.waiting import wait_for, wait_until


@contextmanager
def service(name: str, tmp_path: Path, kafka: str, **env: str) -> Iterator[str]:
    """One service alone on its own SQLite file; stopped with Ctrl-C, which must end it cleanly."""
    process = ServiceProcess(name, tmp_path, {"KAFKA_BOOTSTRAP_SERVERS": kafka,
                                              "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}",
                                              **env}).start()
    try:
        yield process.wait_ready(60).url
    finally:
        assert process.stop() == 0


async def test_intranet_service_alone_serves_what_it_consumes(tmp_path: Path, kafka_bootstrap: str) -> None:
    with service("intranet", tmp_path, kafka_bootstrap,
                 BUDKAVLE_SESSION_KEY="a-session-key-for-the-standalone-test-only-0123") as url:
        broker = create_broker(kafka_bootstrap, "it-standalone")
        await broker.start()
        try:
            event_id = uuid4()
            from datetime import UTC, datetime

            now = datetime.now(UTC)
            await Bus(broker).publish(topics.INTRANET_DELIVERY_REQUESTED, PublishIntranetItem(
                event_id=event_id, program="fvm", audience_id="intranet", event_type="status.update",
                title="Läget i november",
                summary="Allt enligt plan.", html_body="<p>Allt enligt plan.</p>", importance="awareness",
                sensitivity="public", occurred_at=now, published_at=now, audiences=()), str(event_id))
        finally:
            await broker.stop()

        async def shown() -> bool:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{url}/intranet/items/{event_id}")).status_code == 200
        await wait_for(shown, timeout=60)
        async with httpx.AsyncClient() as client:
            item = (await client.get(f"{url}/intranet/items/{event_id}")).text
            listed = (await client.get(f"{url}/intranet/?program=fvm")).text
            feed = (await client.get(f"{url}/intranet/feed.atom")).text
    # What it consumed is what it serves: the item's page, the news list and the feed.
    assert "<title>Läget i november – Budkavle</title>" in item and "<p>Allt enligt plan.</p>" in item
    assert f'/intranet/items/{event_id}">Läget i november</a>' in listed
    assert f"urn:uuid:{event_id}" in feed


def test_gateway_alone_asks_the_tailor_alone_for_dry_runs(tmp_path: Path, kafka_bootstrap: str) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("id,name,email,organisation,role,profession,area,municipality,options\n"
                   "p1,Anna,anna@example.se,VGR,politisk-styrgrupp,,västra,,\n")
    db = f"sqlite+aiosqlite:///{tmp_path / 'tailor.db'}"
    imported = subprocess.run([sys.executable, "-m", "services.cli", "recipients", "import", str(csv)], cwd=ROOT,
                              env={**os.environ, "DATABASE_URL": db}, capture_output=True, text=True, timeout=60)
    assert imported.returncode == 0, imported.stderr
    tokens = "standalone-token=fvm,fvis-only-token=fvis"
    session_key = "a-session-key-for-the-standalone-test-0123456789"
    # A person signed in (as the insights service would have made their session), acting through the console.
    sessions = Sessions(session_key.encode(), "http://standalone", timedelta(minutes=30), timedelta(hours=8))
    cookie = Response()
    session = sessions.open(cookie, Person("redaktor@fvm.example", "Rebecka", {"fvm": frozenset({Role.EDITOR})}))
    person = {"Authorization": f"Session {cookie.headers['set-cookie'].split(';')[0].split('=', 1)[1]}",
              "X-CSRF-Token": sessions.csrf(session)}
    with service("tailor", tmp_path, kafka_bootstrap, BUDKAVLE_API_TOKENS=tokens, BUDKAVLE_SESSION_KEY=session_key,
                 BUDKAVLE_LINK_KEY="a-link-key-for-the-standalone-test-only-0123456789") as tailor_url, \
            service("gateway", tmp_path, kafka_bootstrap, BUDKAVLE_API_TOKENS=tokens, BUDKAVLE_SESSION_KEY=session_key,
                    BUDKAVLE_TAILOR_URL=tailor_url) as gateway_url:
        event = (ROOT / "deploy" / "examples" / "steering-decision.json").read_bytes()
        response = httpx.post(f"{gateway_url}/v1/events?dry_run=true", content=event, timeout=30,
                              headers={"Authorization": "Bearer standalone-token"})
        as_person = httpx.post(f"{gateway_url}/v1/events?dry_run=true", content=event, timeout=30, headers=person)
        previewed = httpx.post(f"{gateway_url}/v1/previews?audience=politisk-styrgrupp&channel=email", content=event,
                               timeout=30, headers=person)
        groups_of = httpx.get(f"{gateway_url}/v1/programs/fvm/audiences", timeout=30, headers=person)
        # The tailor's own port answers only a publisher's token, for that token's programmes.
        plans = f"{tailor_url}/internal/v1/plans"
        anonymous = httpx.post(plans, content=event, timeout=30)
        foreign = httpx.post(plans, content=event, timeout=30, headers={"Authorization": "Bearer fvis-only-token"})
        huge = httpx.post(plans, content=b" " * (300 * 1024), timeout=30,
                          headers={"Authorization": "Bearer standalone-token"})
    assert response.status_code == 200, response.text
    assert as_person.status_code == 200
    assert as_person.json()["plan"]["groups"] == response.json()["plan"]["groups"]
    assert previewed.status_code == 200 and "Ämne: " in previewed.json()["parts"][".txt"]
    members = {g["id"]: g["members"] for g in groups_of.json()["audiences"]}
    assert members["politisk-styrgrupp"] == 1 and members["media"] == 0
    assert (anonymous.status_code, foreign.status_code, huge.status_code) == (401, 403, 413)
    groups = {g["audience_id"]: g for g in response.json()["plan"]["groups"]}
    assert groups["politisk-styrgrupp"]["recipients"] == 1


def test_a_gateway_whose_kafka_answers_nothing_serves_keeps_what_it_accepts_and_catches_up(
        tmp_path: Path, open_programs_dir: Path) -> None:
    from services.embedded.broker import EmbeddedKafka, free_port
    from tests.integration.test_kafka_pipeline import read_topic

    port = free_port()  # nothing listens here until the broker starts below
    gateway = ServiceProcess("gateway", tmp_path, {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}", "BUDKAVLE_PROGRAMS_DIR": str(open_programs_dir),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", "BUDKAVLE_API_TOKENS": "patient-token=fvm",
        "BUDKAVLE_SESSION_KEY": "a-session-key-for-the-standalone-test-0123456789",
        "BUDKAVLE_TAILOR_URL": "http://127.0.0.1:9"}).start()
    try:
        def serving() -> bool:
            try:
                return httpx.get(f"{gateway.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(serving, 60, "the gateway to serve without Kafka")
        unready = httpx.get(f"{gateway.url}/readyz", timeout=10)
        event = (ROOT / "deploy" / "examples" / "steering-decision.json").read_bytes()
        accepted = httpx.post(f"{gateway.url}/v1/events", content=event, timeout=30,
                              headers={"Authorization": "Bearer patient-token"})
        with EmbeddedKafka(port=port) as broker:
            gateway.wait_ready(90)
            relayed = asyncio.run(read_topic(broker.bootstrap_servers, topics.event_topic("steering.decision"), 1, 60))
            status = httpx.get(f"{gateway.url}/v1/events/{accepted.json()['event_id']}", timeout=10,
                               headers={"Authorization": "Bearer patient-token"}).json()
    finally:
        assert gateway.stop() == 0
    assert unready.status_code == 503 and unready.json()["kafka"] == "unavailable"
    assert accepted.status_code == 202, accepted.text
    assert [e["event_id"] for e in relayed] == [accepted.json()["event_id"]]
    assert status["status"] in ("accepted", "published")
