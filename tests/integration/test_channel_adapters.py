"""The email adapter against a real SMTP server; the Teams adapter against a real HTTP receiver."""

import asyncio
import email
import email.policy
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.deliveries import EmailRecipient, SendEmail, SendTeamsCard
from services.common.db import create_engine, create_tables
from services.common.delivery import (
    ChannelUnavailable,
    Delivery,
    PermanentDeliveryError,
    TransientDeliveryError,
    deliver_many,
)
from services.common.ledger import Ledger
from services.common.retry import Retrier, RetryPolicy
from services.email.sender import Mail
from services.email.smtp import SmtpSender, parse_smtp_url
from services.email.store import LEDGER as EMAIL_LEDGER
from services.email.store import PARKED as EMAIL_PARKED
from services.email.store import metadata as email_md
from services.embedded.broker import free_port
from services.teams.limits import WebhookLimiter
from services.teams.sender import CardDelivery
from services.teams.store import LEDGER as TEAMS_LEDGER
from services.teams.store import PARKED as TEAMS_PARKED
from services.teams.store import POSTS as TEAMS_POSTS
from services.teams.store import metadata as teams_md
from services.teams.webhook import WorkflowsWebhook
from tests.integration.conftest import POSTGRES_URL, HttpReceiver, SmtpServer, _with_search_path


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


async def test_smtp_4xx_is_a_temporary_refusal_at_once_never_a_wait_inside_the_batch(smtp_server: SmtpServer) -> None:
    smtp_server.replies = ["451 4.3.0 Try again later"]
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), backoff_seconds=0.01)
    try:
        with pytest.raises(TransientDeliveryError, match="SMTP 451 4.3.0 Try again later") as info:
            await sender.send(mail())
        assert info.value.attempts == 1
        assert await sender.send(mail()) == 1
    finally:
        await sender.close()
    assert len(smtp_server.messages) == 1


async def test_a_connection_dropped_mid_message_is_tried_once_more_then_deferred(smtp_server: SmtpServer) -> None:
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), backoff_seconds=0.01)
    try:
        smtp_server.drops = 1
        assert await sender.send(mail("p1")) == 2  # a stale or dropped connection: once more, on a fresh one
        smtp_server.drops = 2
        with pytest.raises(TransientDeliveryError, match="connection lost while sending"):
            await sender.send(mail("p2"))
    finally:
        await sender.close()
    assert [m.rcpt_tos for m in smtp_server.messages] == [["p1@example.se"]]


async def test_smtp_5xx_fails_permanently_with_the_servers_reason(smtp_server: SmtpServer) -> None:
    smtp_server.replies = ["554 5.7.1 Message rejected"]
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), backoff_seconds=0.01)
    try:
        with pytest.raises(PermanentDeliveryError, match="554 5.7.1 Message rejected"):
            await sender.send(mail())
    finally:
        await sender.close()


async def test_a_refusal_that_names_the_address_keeps_its_code_and_reason_without_it(smtp_server: SmtpServer) -> None:
    smtp_server.replies = ["550 5.1.1 <anna.andersson@vgregion.example>: Recipient address rejected (anna@x.se)"]
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), backoff_seconds=0.01)
    try:
        with pytest.raises(PermanentDeliveryError) as refused:
            await sender.send(mail())
    finally:
        await sender.close()
    assert refused.value.reason == "SMTP 550 5.1.1 <[adress]>: Recipient address rejected ([adress])"
    assert "@" not in str(refused.value)


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


def webhook(client: httpx.AsyncClient, receiver: HttpReceiver, limiter: WebhookLimiter,
            **options: Any) -> WorkflowsWebhook:
    """The Teams sender, its groups' webhooks pointing at the real receiver (named after the group)."""
    hooks = {("fvm", "programstyrgrupp"): f"{receiver.url}/hook/styrgrupp", ("fvm", "a"): f"{receiver.url}/hook/a"}
    return WorkflowsWebhook(client, hooks, limiter, (), allow_loopback_http=True, **options)


async def test_teams_429_by_status_or_by_body_and_5xx_defer_honouring_retry_after_and_4xx_fails(
        http_receiver: HttpReceiver, sqlite_engine: AsyncEngine) -> None:
    await create_tables(sqlite_engine, teams_md)
    http_receiver.script = [(429, {"Retry-After": "120"}), (200, {}, "Microsoft Teams endpoint returned HTTP "
                            "error 429 with ContextId tcid=0: Too many requests"), (503, {}), (404, {})]
    async with httpx.AsyncClient() as client:
        sender = webhook(client, http_receiver, WebhookLimiter(sqlite_engine, TEAMS_POSTS), backoff_seconds=0.01)
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match="HTTP 429") as status_429:
            await sender.send(card())
        with pytest.raises(TransientDeliveryError, match="HTTP 200 .*429") as body_429:
            await sender.send(card())
        with pytest.raises(TransientDeliveryError, match="HTTP 503"):
            await sender.send(card("a"))
        with pytest.raises(PermanentDeliveryError, match="HTTP 404"):
            await sender.send(card("a"))
        assert time.monotonic() - started < 5  # nothing waited inside the consumer
        assert await sender.send(card()) == 1
    assert status_429.value.retry_after == 120.0 and body_429.value.retry_after is None
    [got] = http_receiver.received
    assert got["name"] == "styrgrupp"
    assert got["body"]["attachments"][0]["content"]["body"][0]["text"] == "Hej"


class RecordingBus:
    """Stands in for the bus where only the announced outcomes matter."""

    def __init__(self) -> None:
        self.outcomes: list[Any] = []

    async def publish(self, topic: str, message: Any, key: str) -> None:
        self.outcomes.append(message)


class Clock:
    """One fake time for everything in a test: the retry schedule, the greylisting server, the limits."""

    def __init__(self) -> None:
        self.at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def seconds(self) -> float:
        return self.at.timestamp()

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


async def test_a_greylisting_server_defers_every_mail_then_takes_them_all_on_the_retry(
        smtp_server: SmtpServer, sqlite_engine: AsyncEngine) -> None:
    clock = Clock()
    smtp_server.greylist, smtp_server.clock = 60.0, clock.seconds
    await create_tables(sqlite_engine, email_md)
    ledger, bus = Ledger(sqlite_engine, EMAIL_LEDGER, EMAIL_PARKED), RecordingBus()
    policy = RetryPolicy(clock=clock.now)
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), pool_size=4)
    people = tuple(EmailRecipient(id=f"p{n}", address=f"p{n}@example.se", name="P") for n in range(23))
    command = SendEmail(event_id=uuid4(), program="fvm", audience_id="a", sender_name="FVM",
                        sender_address="fvm@vgregion.se", subject="Hej", text_body="t", html_body="<p>h</p>",
                        recipients=people)
    retrier = Retrier(ledger, policy, SendEmail.model_validate_json,
                      lambda cmd, ids: [m for m in Mail.each_of(cmd) if m.recipient_id in ids],
                      lambda mails: deliver_many(mails, sender, ledger, bus, policy, retrying=True))  # type: ignore[arg-type]
    try:
        first = await deliver_many(Mail.each_of(command), sender, ledger, bus, policy)  # type: ignore[arg-type]
        assert [e.status for e in first] == ["deferred"] * 23
        assert {e.next_attempt_at for e in first} == {clock.at + timedelta(minutes=1)}
        assert await retrier.retry_due() == 0
        clock.at += timedelta(minutes=1)
        assert await retrier.retry_due() == 23
    finally:
        await sender.close()
    assert smtp_server.greylisted == 23
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(p.address for p in people)
    final = await ledger.lookup_many([m.key for m in Mail.each_of(command)])
    assert {(e.status, e.attempts) for e in final.values()} == {("sent", 2)}
    last = bus.outcomes[-1]  # the chunk's whole state, announced by the retrier
    assert (last.size, last.sent, last.deferred, last.unsent) == (23, 23, 0, ())


async def test_a_burst_of_200_cards_to_one_webhook_arrives_without_a_single_429(
        http_receiver: HttpReceiver, sqlite_engine: AsyncEngine) -> None:
    clock = Clock()
    http_receiver.limits_clock = clock.seconds
    await create_tables(sqlite_engine, teams_md)
    ledger, bus = Ledger(sqlite_engine, TEAMS_LEDGER, TEAMS_PARKED), RecordingBus()
    policy = RetryPolicy(clock=clock.now)
    async with httpx.AsyncClient() as client:
        sender = webhook(client, http_receiver, WebhookLimiter(sqlite_engine, TEAMS_POSTS, clock=clock.seconds,
                                                               sleep=clock.sleep))
        cards = [card() for _ in range(200)]
        retrier = Retrier(ledger, policy, SendTeamsCard.model_validate_json, lambda cmd, _: [Delivery(cmd, None)],
                          # one at a time: with a fake clock, a wait in one send must not move time under another
                          lambda due: deliver_many(due, sender, ledger, bus, policy, concurrency=1,  # type: ignore[arg-type]
                                                   retrying=True))
        started = clock.at
        for one in cards:  # one at a time, as the consumer takes them
            await deliver_many([one], sender, ledger, bus, policy)  # type: ignore[arg-type]
        # Short waits are waited for (4/s); long ones (60/30 s, 100/h) defer the card instead of holding up
        # the consumer. Then the retrier sends each when its turn comes.
        assert len(http_receiver.received) == 60
        while (next_at := await ledger.next_due()) is not None:
            clock.at = max(clock.at, next_at)
            await retrier.retry_due()
    assert http_receiver.throttled == 0
    assert len(http_receiver.received) == 200
    assert clock.at - started > timedelta(hours=1)  # 200 cards cannot go out within one hour (100/h)
    final = await ledger.lookup_many([c.key for c in cards])
    assert {e.status for e in final.values()} == {"sent"}


async def test_two_teams_replicas_together_stay_within_one_webhooks_limits(
        http_receiver: HttpReceiver, postgres_schema: str, tmp_path: Path) -> None:
    """Microsoft's limits are per webhook: two replicas counting only their own posts would send 8 a second
    to it; counting each other's (one PostgreSQL) they send 4. The receiver answers 429 as Microsoft does."""
    http_receiver.limits_clock = time.time
    shared = [_with_search_path(POSTGRES_URL, postgres_schema) for _ in range(2)]
    apart = [create_engine(f"sqlite+aiosqlite:///{tmp_path / f'replica-{n}.db'}") for n in range(2)]
    for engine in (shared[0], *apart):
        await create_tables(engine, teams_md)

    async def burst(engines: list[AsyncEngine], audience_id: str) -> list[str]:
        async with httpx.AsyncClient() as client:
            replicas = [webhook(client, http_receiver, WebhookLimiter(engine, TEAMS_POSTS)) for engine in engines]

            async def send(sender: WorkflowsWebhook) -> str:
                try:
                    await sender.send(card(audience_id))
                    return "sent"
                except TransientDeliveryError as error:
                    return "429" if "429" in error.reason else error.reason
            return list(await asyncio.gather(*(send(r) for r in replicas for _ in range(8))))
    try:
        together = await burst(shared, "programstyrgrupp")
        throttled_together = http_receiver.throttled
        alone = await burst(apart, "a")  # the control: each replica counts only its own posts
    finally:
        for engine in (*shared, *apart):
            await engine.dispose()
    assert together == ["sent"] * 16 and throttled_together == 0
    assert alone.count("429") > 0  # what the shared count prevents


class FirstPostHeldBack(httpx.AsyncHTTPTransport):
    """A network that holds the first post back before it reaches the receiver, as a busy machine can."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.held = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.held:
            self.held = True
            await asyncio.sleep(self.delay)
        return await super().handle_async_request(request)


async def test_a_post_held_back_on_its_way_counts_when_it_arrived_not_when_it_left(
        http_receiver: HttpReceiver, sqlite_engine: AsyncEngine) -> None:
    """The first of eight posts reaches the webhook 0.6 s after it took its turn. Counted from when it left,
    the eighth would go while the receiver still counts it in its second (a 429); counted until its answer came
    back, every post arrives within Microsoft's limits."""
    http_receiver.limits_clock = time.time
    await create_tables(sqlite_engine, teams_md)
    async with httpx.AsyncClient(transport=FirstPostHeldBack(0.6)) as client:
        sender = webhook(client, http_receiver, WebhookLimiter(sqlite_engine, TEAMS_POSTS))
        results = await asyncio.gather(*(sender.send(card()) for _ in range(8)), return_exceptions=True)
    assert results == [1] * 8 and http_receiver.throttled == 0


class FlakyLedger(Ledger):
    """A ledger whose first write fails (the database went away for a moment)."""

    failed = False

    async def record_on(self, conn: Any, results: Any) -> None:
        if not self.failed:
            self.failed = True
            raise OSError("database unavailable")
        await super().record_on(conn, results)


async def test_answers_that_could_not_be_recorded_hand_the_batch_back_and_the_redelivery_sends_only_the_rest(
        smtp_server: SmtpServer, sqlite_engine: AsyncEngine) -> None:
    await create_tables(sqlite_engine, email_md)
    ledger, bus = FlakyLedger(sqlite_engine, EMAIL_LEDGER, EMAIL_PARKED), RecordingBus()
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}"), pool_size=4)
    people = tuple(EmailRecipient(id=f"p{n}", address=f"p{n}@example.se", name="P") for n in range(40))
    command = SendEmail(event_id=uuid4(), program="fvm", audience_id="a", sender_name="FVM",
                        sender_address="fvm@vgregion.se", subject="Hej", text_body="t", html_body="<p>h</p>",
                        recipients=people)
    try:
        with pytest.raises(OSError, match="database unavailable"):
            await deliver_many(Mail.each_of(command), sender, ledger, bus)  # type: ignore[arg-type]
        recorded = await ledger.lookup_many([m.key for m in Mail.each_of(command)])
        unrecorded = len(people) - len(recorded)
        assert 1 <= unrecorded <= 4  # the failed write held at most one answer per connection
        await deliver_many(Mail.each_of(command), sender, ledger, bus)  # type: ignore[arg-type]  # the redelivery
    finally:
        await sender.close()
    assert len(smtp_server.messages) == len(people) + unrecorded  # only the unrecorded were sent again
    final = await ledger.lookup_many([m.key for m in Mail.each_of(command)])
    assert len(final) == len(people) and {e.status for e in final.values()} == {"sent"}
