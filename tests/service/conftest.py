"""Service tests: one service at a time through FastStream's TestKafkaBroker, with recording fakes."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from jinja2 import Environment, FileSystemLoader
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.deliveries import DeliveryPlan
from contracts.events import Event
from programs import Program
from services.common.auth import TokenAuthority, caller_of, parse_tokens
from services.common.bus import Bus, create_broker
from services.common.db import create_tables
from services.common.ended_sessions import EndedSessions
from services.common.problems import install_problem_handler
from services.common.sessions import Sessions
from services.common.signin import People
from services.gateway.accept import AcceptEvent
from services.gateway.api import PlannerUnavailable, build_http
from services.gateway.approval import Approvals
from services.gateway.approval import build_http as approval_http
from services.gateway.audit import AuditRegister
from services.gateway.audit import build_http as audit_http
from services.gateway.dead_letters import DeadLetterStore
from services.gateway.drafts import DraftStore
from services.gateway.drafts import build_http as drafts_http
from services.gateway.handlers import build_router
from services.gateway.relay import OutboxRelay
from services.gateway.store import ENDED_SESSIONS, GatewayStore
from services.gateway.store import metadata as gateway_metadata
from services.tailor.directory import Recipient
from services.tailor.handlers import build_router as build_tailor_router
from services.tailor.planning import plan_deliveries
from services.tailor.rendering import Renderer
from services.tailor.service import Tailor
from services.tailor.store import TailorStore
from services.tailor.store import metadata as tailor_metadata
from tests.conftest import TEMPLATES_DIR, signin_router


class Clock:
    """One settable time for a test (the services take a clock; no test waits for real time)."""

    def __init__(self, now: datetime = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """Subscribes to topics on a test broker and keeps every decoded body it sees, by topic, in order."""

    def __init__(self, broker: KafkaBroker, *names: str) -> None:
        self.seen: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for name in names:
            self._subscribe(broker, name)

    def _subscribe(self, broker: KafkaBroker, name: str) -> None:
        @broker.subscriber(name, group_id=f"recorder-{name}")
        async def record(body: Any) -> None:
            self.seen[name].append(body)

    def __getitem__(self, name: str) -> list[dict[str, Any]]:
        return self.seen[name]


@pytest.fixture
def broker() -> KafkaBroker:
    return create_broker("test.invalid:9092", "service-test")


@pytest.fixture
def bus(broker: KafkaBroker) -> Bus:
    return Bus(broker)


@pytest.fixture
def recorder(broker: KafkaBroker) -> Recorder:
    return Recorder(broker, topics.DELIVERY_OUTCOMES, topics.DEAD_LETTER, topics.EMAIL_DELIVERY_REQUESTED,
                    topics.TEAMS_DELIVERY_REQUESTED, topics.INTRANET_DELIVERY_REQUESTED, topics.EVENT_PLANNED,
                    topics.SCHEDULE_DUE, topics.PREFERENCES_CHANGED, topics.FEEDBACK_GIVEN, topics.ITEM_READ,
                    topics.DIGEST_SENT, topics.ACKNOWLEDGED, topics.DELIVERIES_SCHEDULED, topics.FOLLOW_UP_SENT,
                    topics.ADDRESS_BOUNCED)


@pytest.fixture
async def tailor(broker: KafkaBroker, bus: Bus, engine: AsyncEngine, fvm: Program,
                 small_directory: list[Recipient]) -> Tailor:
    """The tailor over the small directory, subscribed on the test broker, with a settable clock."""
    await create_tables(engine, tailor_metadata)
    store = TailorStore(engine)
    await store.replace_directory(small_directory)
    t = Tailor({"fvm": fvm}, Renderer(TEMPLATES_DIR, "http://budkavle.test"), store, bus,
               clock=Clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)))
    broker.include_router(build_tailor_router(t, bus))
    return t


@pytest.fixture
async def engine(sqlite_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    yield sqlite_engine


BASE = "http://gw"
COOKIE = "budkavle_session"


class Console:
    """What the console does with a signed-in person's browser: it passes their session and the form's CSRF
    token on to the gateway."""

    def __init__(self, client: httpx.AsyncClient, sessions: Sessions) -> None:
        self.client, self.sessions = client, sessions

    async def headers(self, csrf: bool = True) -> dict[str, str]:
        value = self.client.cookies[COOKIE]
        session = await self.sessions.verify(value)
        assert session is not None
        return {"Authorization": f"Session {value}", **({"X-CSRF-Token": self.sessions.csrf(session)} if csrf else {})}


@pytest.fixture
def gateway_clock() -> Clock:
    """The gateway's time in the `console` fixture (real time until a test moves it)."""
    return Clock(datetime.now(UTC))


@pytest.fixture
async def console(engine: AsyncEngine, bus: Bus, broker: KafkaBroker, fvm: Program, fvis: Program,
                  small_directory: list[Recipient], oidc_issuer: str,
                  gateway_clock: Clock) -> AsyncIterator[tuple[Console, GatewayStore]]:
    """The gateway as the console reaches it (people's sessions), with the programme files as they are
    (approval rules and all)."""
    await create_tables(engine, gateway_metadata)
    store = GatewayStore(engine)
    programs = {"fvm": fvm, "fvis": fvis}

    async def planner(event: Event, _authorization: str) -> DeliveryPlan:
        return plan_deliveries(event, programs[event.program], small_directory).contract

    ended = EndedSessions(engine, ENDED_SESSIONS)
    sessions = Sessions(b"a-session-key-that-is-long-enough-too", BASE, timedelta(minutes=30), timedelta(hours=8),
                        ended=ended.ended)
    people = People(sessions, Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True), BASE)
    authority = TokenAuthority(parse_tokens("fvm-token-123=fvm"))
    app = FastAPI()
    install_problem_handler(app)
    app.include_router(signin_router(oidc_issuer, people, programs))  # the sign-in, as insights serves it
    letters = DeadLetterStore(engine)
    accept = AcceptEvent(store, OutboxRelay(store, bus).notify, gateway_clock)
    approvals = Approvals(store, programs, accept.notify_relay, gateway_clock)
    app.include_router(build_http(store, letters, authority, programs, planner, accept, BASE, sessions=sessions,
                                  approvals=approvals))
    app.include_router(approval_http(approvals, store, programs, planner, PlannerUnavailable,
                                     caller_of(authority, sessions), BASE))
    app.include_router(drafts_http(DraftStore(engine), caller_of(authority, sessions)))
    app.include_router(audit_http(AuditRegister(engine), programs, caller_of(authority, sessions)))
    broker.include_router(build_router(store, letters, bus, ended))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield Console(client, sessions), store
