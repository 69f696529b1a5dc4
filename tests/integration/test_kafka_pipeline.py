"""Services on a real Kafka-protocol broker: the email channel alone, then every service in one runtime."""

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY

from contracts import topics
from contracts.deliveries import SendEmail
from services.common.runtime import Runtime
from services.common.settings import CommonSettings
from services.email.main import EmailSettings
from services.email.main import build as build_email
from services.embedded.platform import build_platform
from tests.conftest import make_event
from tests.integration.conftest import HttpReceiver, SmtpServer, wait_for


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,  # no group: no join wait
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got: list[dict[str, Any]] = []
    try:
        async def enough() -> bool:
            batch = await consumer.getmany(timeout_ms=500)
            got.extend(json.loads(r.value) for records in batch.values() for r in records)
            return len(got) >= count
        await wait_for(enough, timeout=timeout, interval=0)
    finally:
        await consumer.stop()
    return got


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kafka_bootstrap: str) -> Path:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("BUDKAVLE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("BUDKAVLE_PROGRAMS_DIR", str(root / "deploy" / "programs"))
    monkeypatch.setenv("BUDKAVLE_TEMPLATES_DIR", str(root / "templates"))
    return tmp_path


async def test_email_service_on_real_kafka_sends_once_and_dead_letters_garbage(
        env: Path, kafka_bootstrap: str, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}")
    runtime = Runtime.create(CommonSettings(), client_id="it-email")
    runtime.add(build_email(EmailSettings(), runtime))
    await runtime.start()
    try:
        cmd = SendEmail(event_id=uuid4(), program="fvm", audience_id="a", recipient_id="p1",
                        to_address="p1@example.se", to_name="P", sender_name="FVM", sender_address="fvm@vgregion.se",
                        subject="Hej", text_body="t", html_body="<p>h</p>")
        await runtime.bus.publish_json(topics.EMAIL_DELIVERY_REQUESTED, b"\xffnot json at all", "p0")
        await runtime.bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, "p1")
        await runtime.bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, "p1")  # a redelivery
        outcomes = await read_topic(kafka_bootstrap, topics.DELIVERY_OUTCOMES, 2)
        letters = await read_topic(kafka_bootstrap, topics.DEAD_LETTER, 1)
    finally:
        await runtime.stop()
    assert len(smtp_server.messages) == 1
    assert [o["status"] for o in outcomes] == ["sent", "sent"]
    assert letters[0]["consumer"] == "email" and letters[0]["topic"] == topics.EMAIL_DELIVERY_REQUESTED


async def test_every_service_on_one_runtime_delivers_a_go_live(
        env: Path, kafka_bootstrap: str, smtp_server: SmtpServer, http_receiver: HttpReceiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}")
    monkeypatch.setenv("BUDKAVLE_API_TOKENS", "integration-token=fvm")
    monkeypatch.setenv("TEAMS_WEBHOOK_FVM_PROGRAMSTYRGRUPP", f"{http_receiver.url}/hook/programstyrgrupp")
    monkeypatch.setenv("BUDKAVLE_TEAMS_ALLOW_LOOPBACK", "true")
    monkeypatch.delenv("BUDKAVLE_TEAMS_SINK_URL", raising=False)
    runtime = build_platform(env, staff_scale=0.01)
    app = runtime.http_app()
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bk") as client:
            body = json.loads(make_event("golive.milestone", audiences=["programstyrgrupp", "kommuner"])
                              .model_dump_json(exclude={"event_id"}))
            auth = {"Authorization": "Bearer integration-token"}
            response = await client.post("/v1/events", json=body, headers=auth)
            assert response.status_code == 202
            event_id = response.json()["event_id"]

            async def delivered() -> bool:
                status = (await client.get(f"/v1/events/{event_id}", headers=auth)).json()
                return bool(status["status"] == "delivered")
            await wait_for(delivered, timeout=60)
            status = (await client.get(f"/v1/events/{event_id}", headers=auth)).json()
            page = await client.get(f"/intranet/items/{event_id}")
    finally:
        await runtime.stop()
    # programstyrgrupp (14) + the södra municipalities' two contacts each (8 × 2)
    assert status["totals"]["email"] == {"targeted": 30, "sent": 30, "failed": 0}
    assert len(smtp_server.messages) == 30
    assert [r["name"] for r in http_receiver.received] == ["programstyrgrupp"]
    assert page.status_code == 200 and "Södra inför Millennium" in page.text


async def test_mail_accepted_while_the_smtp_server_is_down_goes_out_when_it_is_back(
        env: Path, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiosmtpd.controller import Controller

    from services.embedded.broker import free_port
    from tests.integration.conftest import SmtpServer

    port = free_port()
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{port}")
    redelivered = REGISTRY.get_sample_value("budkavle_redeliveries_total") or 0.0
    runtime = Runtime.create(CommonSettings(), client_id="it-email-down")
    runtime.add(build_email(EmailSettings(), runtime))
    await runtime.start()
    server = SmtpServer(port=port)
    controller = Controller(server, hostname="127.0.0.1", port=port)
    try:
        cmd = SendEmail(event_id=uuid4(), program="fvm", audience_id="a", recipient_id="p1",
                        to_address="p1@example.se", to_name="P", sender_name="FVM", sender_address="fvm@vgregion.se",
                        subject="Hej", text_body="t", html_body="<p>h</p>")
        await runtime.bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, "p1")
        # the server is down: the consumer keeps the command (no outcome is recorded) and retries with back-off
        await wait_for(lambda: (REGISTRY.get_sample_value("budkavle_redeliveries_total") or 0.0) > redelivered,
                       timeout=30)
        controller.start()
        outcomes = await read_topic(kafka_bootstrap, topics.DELIVERY_OUTCOMES, 1, timeout=60)
    finally:
        await runtime.stop()
        controller.stop()
    assert [o["status"] for o in outcomes] == ["sent"]
    assert len(server.messages) == 1
