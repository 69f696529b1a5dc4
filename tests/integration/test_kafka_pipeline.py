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
from contracts.deliveries import EmailRecipient, SendEmail
from services.common.runtime import Runtime
from services.email.main import EmailSettings
from services.email.main import build as build_email
from services.email.sender import Mail
from services.embedded.platform import PlatformSettings, build_platform
from tests.conftest import ROOT, make_event
from tests.integration.conftest import HttpReceiver, SmtpServer
from tests.waiting import wait_for


async def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """`count` messages of `topic`."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,  # no group: no join wait
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got: list[dict[str, Any]] = []
    try:
        async def enough() -> bool:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for body in (json.loads(r.value) for r in records):
                    got.append(body)
            return len(got) >= count
        await wait_for(enough, timeout=timeout, interval=0)
    finally:
        await consumer.stop()
    return got


@pytest.fixture
def shared(tmp_path: Path, kafka_bootstrap: str, open_programs_dir: Path) -> dict[str, Any]:
    """The settings every service of a test shares: this test's broker and data directory (SQLite in it), and
    the programmes without their approval rules (what happens once an event is released is tested here)."""
    return {"kafka_bootstrap_servers": kafka_bootstrap, "data_dir": tmp_path, "database_url": "",
            "programs_dir": open_programs_dir, "templates_dir": ROOT / "templates",
            "link_key": "a-link-key-for-these-tests-only-0123456789"}


def one_mail(recipient: str = "p1") -> SendEmail:
    return SendEmail(event_id=uuid4(), program="fvm", audience_id="a", sender_name="FVM",
                     sender_address="fvm@vgregion.se", subject="Hej", text_body="t", html_body="<p>h</p>",
                     recipients=(EmailRecipient(id=recipient, address=f"{recipient}@example.se", name="P"),))


async def test_email_service_on_real_kafka_sends_once_and_dead_letters_garbage(
        shared: dict[str, Any], kafka_bootstrap: str, smtp_server: SmtpServer) -> None:
    settings = EmailSettings(**shared, smtp_url=f"smtp://127.0.0.1:{smtp_server.port}")
    runtime = Runtime.create(settings, client_id="it-email", service="email")
    runtime.add(build_email(settings, runtime))
    await runtime.start()
    try:
        cmd = one_mail()
        await runtime.bus.publish_json(topics.EMAIL_DELIVERY_REQUESTED, b"\xffnot json at all", "p0")
        await runtime.bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.bus_key)
        await runtime.bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.bus_key)  # a redelivery
        outcomes = await read_topic(kafka_bootstrap, topics.DELIVERY_OUTCOMES, 2)
        letters = await read_topic(kafka_bootstrap, topics.DEAD_LETTER, 1)
    finally:
        await runtime.stop()
    assert len(smtp_server.messages) == 1
    assert [(o["chunk"], o["sent"]) for o in outcomes] == [(cmd.bus_key, 1)] * 2  # the same state, twice
    assert letters[0]["consumer"] == "email" and letters[0]["topic"] == topics.EMAIL_DELIVERY_REQUESTED


async def test_every_service_on_one_runtime_delivers_a_go_live(
        shared: dict[str, Any], smtp_server: SmtpServer, http_receiver: HttpReceiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The webhook is a secret in the environment, under the name the programme file gives.
    monkeypatch.setenv("TEAMS_WEBHOOK_FVM_PROGRAMSTYRGRUPP", f"{http_receiver.url}/hook/programstyrgrupp")
    settings = PlatformSettings.load(shared, gateway={"api_tokens": "integration-token=fvm"},
                                     email={"smtp_url": f"smtp://127.0.0.1:{smtp_server.port}"},
                                     teams={"sink_url": "", "allow_loopback_http": True})
    runtime = build_platform(settings, staff_scale=0.01)
    app = runtime.http_app()
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bk") as client:
            body = json.loads(make_event("golive.milestone", audiences=["programstyrgrupp", "kommuner"],
                                         sensitivity="public").model_dump_json(exclude={"event_id"}))
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
    assert status["totals"]["email"] == {"targeted": 30, "sent": 30, "failed": 0, "deferred": 0, "next_attempt_at": None}
    assert len(smtp_server.messages) == 30
    assert [r["name"] for r in http_receiver.received] == ["programstyrgrupp"]
    assert page.status_code == 200 and "Södra inför Millennium" in page.text


async def test_mail_accepted_while_the_smtp_server_is_down_goes_out_when_it_is_back(
        shared: dict[str, Any], kafka_bootstrap: str) -> None:
    from aiosmtpd.controller import Controller

    from services.embedded.broker import free_port

    port = free_port()
    settings = EmailSettings(**shared, smtp_url=f"smtp://127.0.0.1:{port}")
    redelivered = REGISTRY.get_sample_value("budkavle_redeliveries_total") or 0.0
    runtime = Runtime.create(settings, client_id="it-email-down", service="email")
    runtime.add(build_email(settings, runtime))
    await runtime.start()
    server = SmtpServer(port=port)
    controller = Controller(server, hostname="127.0.0.1", port=port)
    try:
        cmd = one_mail()
        await runtime.bus.publish(topics.EMAIL_DELIVERY_REQUESTED, cmd, cmd.bus_key)
        # the server is down: the consumer keeps the command (no outcome is recorded) and retries with back-off
        await wait_for(lambda: (REGISTRY.get_sample_value("budkavle_redeliveries_total") or 0.0) > redelivered,
                       timeout=30)
        controller.start()
        outcomes = await read_topic(kafka_bootstrap, topics.DELIVERY_OUTCOMES, 1, timeout=60)
    finally:
        await runtime.stop()
        controller.stop()
    assert [(o["sent"], o["deferred"]) for o in outcomes] == [(1, 0)]
    assert len(server.messages) == 1


class BuggySender:
    """An email sender with a bug that bites one recipient: not a refusal, not the server being down."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.tries = 0

    async def send(self, mail: Mail, /) -> int:
        if mail.recipient.id == "poison":
            self.tries += 1
            raise RuntimeError("a bug that bites one recipient")
        self.sent.append(mail.recipient.id)
        return 1

    async def close(self) -> None:
        pass


async def test_a_chunk_the_handler_keeps_failing_on_is_dead_lettered_after_a_few_tries_and_the_rest_go_on(
        shared: dict[str, Any], kafka_bootstrap: str) -> None:
    settings = EmailSettings(**shared, smtp_url="smtp://unused.invalid:25")
    sender = BuggySender()
    runtime = Runtime.create(settings, client_id="it-email-poison", service="email")
    runtime.add(build_email(settings, runtime, sender=sender))
    await runtime.start()
    try:
        poisoned = SendEmail(event_id=uuid4(), program="fvm", audience_id="a", sender_name="FVM",
                             sender_address="fvm@vgregion.se", subject="Hej", text_body="t", html_body="<p>h</p>",
                             recipients=tuple(EmailRecipient(id=r, address=f"{r}@example.se", name="P")
                                              for r in ("p1", "poison")))
        behind = one_mail("p2")
        await runtime.bus.publish(topics.EMAIL_DELIVERY_REQUESTED, poisoned, "same-key")
        await runtime.bus.publish(topics.EMAIL_DELIVERY_REQUESTED, behind, "same-key")  # same partition, behind it
        [letter] = await read_topic(kafka_bootstrap, topics.DEAD_LETTER, 1)
        await wait_for(lambda: "p2" in sender.sent, timeout=30, what="the mail behind the poison chunk")
    finally:
        await runtime.stop()
    assert letter["consumer"] == "email"
    assert letter["reason"] == "handler failed 3 times: RuntimeError: a bug that bites one recipient"
    assert json.loads(letter["payload"])["event_id"] == str(poisoned.event_id)
    assert sender.tries == 3
    assert sorted(sender.sent) == ["p1", "p2"]  # p1 once, although its chunk was tried three times
