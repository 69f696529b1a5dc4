"""Service tests: one service at a time through FastStream's TestKafkaBroker, with recording fakes."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from programs import Program
from services.common.bus import Bus, create_broker
from services.common.db import create_tables
from services.tailor.directory import Recipient
from services.tailor.handlers import build_router as build_tailor_router
from services.tailor.rendering import Renderer
from services.tailor.service import Tailor
from services.tailor.store import TailorStore
from services.tailor.store import metadata as tailor_metadata
from tests.conftest import TEMPLATES_DIR


class Clock:
    """One settable time for a test (the services take a clock; no test waits for real time)."""

    def __init__(self, now: datetime = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """Subscribes to topics on a test broker and keeps every decoded body it sees, by topic (each outcome of
    an outcome batch on its own, in order)."""

    def __init__(self, broker: KafkaBroker, *names: str) -> None:
        self.seen: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for name in names:
            self._subscribe(broker, name)

    def _subscribe(self, broker: KafkaBroker, name: str) -> None:
        @broker.subscriber(name, group_id=f"recorder-{name}")
        async def record(body: Any) -> None:
            self.seen[name].extend(body["outcomes"] if name == topics.DELIVERY_OUTCOMES else [body])

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
                    topics.DIGEST_SENT)


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
