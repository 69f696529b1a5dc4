"""Service tests: one service at a time through FastStream's TestKafkaBroker, with recording fakes."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from services.common.bus import Bus, create_broker


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
                    topics.TEAMS_DELIVERY_REQUESTED, topics.INTRANET_DELIVERY_REQUESTED, topics.EVENT_PLANNED)


@pytest.fixture
async def engine(sqlite_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    yield sqlite_engine
