"""The email adapter against a real SMTP server; the Teams adapter against a real HTTP receiver."""

import email
import email.policy
import time
from typing import Any
from uuid import uuid4

import httpx
import pytest

from contracts.deliveries import EmailRecipient, SendEmail, SendTeamsCard
from services.common.delivery import ChannelUnavailable, Delivery, PermanentDeliveryError, TransientDeliveryError
from services.email.sender import Mail
from services.email.smtp import SmtpSender, parse_smtp_url
from services.embedded.broker import free_port
from services.teams.sender import CardDelivery
from services.teams.webhook import WorkflowsWebhook
from tests.integration.conftest import HttpReceiver, SmtpServer


def mail(recipient: str = "p1") -> Mail:
    [one] = Mail.each_of(SendEmail(
        event_id=uuid4(), program="fvm", audience_id="programstyrgrupp",
        sender_name="FVM – Framtidens vårdinformationsmiljö", sender_address="fvm@vgregion.se",
        subject="Beslut om ny tidplan för FVM", text_body="Hej! Åäö.", html_body="<p>Hej! Åäö.</p>",
        recipients=(EmailRecipient(id=recipient, address=f"{recipient}@example.se", name="Åsa Öberg"),)))
    return one


async def test_email_reaches_a_real_smtp_server_as_multipart(smtp_server: SmtpServer) -> None:
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), pool_size=2)
    try:
        for n in range(5):
            assert await sender.send(mail(f"p{n}")) == 1
    finally:
        await sender.close()
    assert len(smtp_server.messages) == 5
    envelope = smtp_server.messages[0]
    assert envelope.mail_from == "fvm@vgregion.se" and envelope.rcpt_tos == ["p0@example.se"]
    parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert parsed["Subject"] == "Beslut om ny tidplan för FVM"
    assert parsed.get_body(("plain",)).get_content().strip() == "Hej! Åäö."  # type: ignore[union-attr]


async def test_smtp_4xx_is_retried_with_backoff_then_sent(smtp_server: SmtpServer) -> None:
    smtp_server.replies = ["451 4.3.0 Try again later"]
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), backoff_seconds=0.01)
    try:
        assert await sender.send(mail()) == 2
    finally:
        await sender.close()
    assert len(smtp_server.messages) == 1


async def test_smtp_5xx_fails_permanently_with_the_servers_reason(smtp_server: SmtpServer) -> None:
    smtp_server.replies = ["554 5.7.1 Message rejected"]
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), backoff_seconds=0.01)
    try:
        with pytest.raises(PermanentDeliveryError, match="554 5.7.1 Message rejected"):
            await sender.send(mail())
    finally:
        await sender.close()


async def test_unreachable_smtp_server_makes_the_channel_unavailable_after_retries() -> None:
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}"), attempts=2, backoff_seconds=0.01)
    with pytest.raises(ChannelUnavailable, match="gave up after 2 attempts"):
        await sender.send(mail())


async def test_a_rate_limit_spaces_the_sends_out(smtp_server: SmtpServer) -> None:
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), rate_per_second=20)
    started = time.monotonic()
    try:
        for n in range(6):
            await sender.send(mail(f"p{n}"))
    finally:
        await sender.close()
    # 6 sends at 20/s need at least 5 intervals of 50 ms; a functional bound, not a speed claim.
    assert time.monotonic() - started >= 0.25


def card(audience_id: str = "programstyrgrupp") -> CardDelivery:
    return Delivery(SendTeamsCard(event_id=uuid4(), program="fvm", audience_id=audience_id, card={
        "type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Hej"}]}), None)


def webhook(client: httpx.AsyncClient, receiver: HttpReceiver, **options: Any) -> WorkflowsWebhook:
    """The Teams sender, its groups' webhooks pointing at the real receiver (named after the group)."""
    hooks = {("fvm", "programstyrgrupp"): f"{receiver.url}/hook/styrgrupp", ("fvm", "a"): f"{receiver.url}/hook/a"}
    return WorkflowsWebhook(client, hooks, (), allow_loopback_http=True, **options)


async def test_teams_card_reaches_a_real_http_receiver_honouring_retry_after(http_receiver: HttpReceiver) -> None:
    http_receiver.script = [(429, {"Retry-After": "1"})]
    async with httpx.AsyncClient() as client:
        sender = webhook(client, http_receiver, backoff_seconds=0.01)
        started = time.monotonic()
        assert await sender.send(card()) == 2
        assert time.monotonic() - started >= 1.0  # waited as Retry-After asked
    [got] = http_receiver.received
    assert got["name"] == "styrgrupp"
    assert got["body"]["attachments"][0]["content"]["body"][0]["text"] == "Hej"


async def test_teams_5xx_gives_up_as_temporary_and_4xx_fails_at_once(http_receiver: HttpReceiver) -> None:
    http_receiver.script = [(503, {}), (503, {}), (404, {})]
    async with httpx.AsyncClient() as client:
        sender = webhook(client, http_receiver, attempts=2, backoff_seconds=0.01)
        with pytest.raises(TransientDeliveryError, match="HTTP 503"):
            await sender.send(card("a"))
        with pytest.raises(PermanentDeliveryError, match="HTTP 404"):
            await sender.send(card("a"))
    assert http_receiver.received == []
