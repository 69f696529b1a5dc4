"""A channel is a plug-in: one registered here, in the test alone, is planned, composed and put on the bus
by the unchanged tailor."""

from collections.abc import Iterator
from typing import ClassVar

import yaml
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts import topics
from contracts.channels import Reach, registered_channel
from contracts.deliveries import DeliveryCommand
from programs import Program
from services.common.bus import Bus
from services.common.db import create_tables
from services.tailor.channels import Composition, Preview, registered_composer
from services.tailor.directory import Recipient
from services.tailor.handlers import build_router
from services.tailor.rendering import Renderer
from services.tailor.service import Tailor
from services.tailor.store import TailorStore, metadata
from tests.conftest import PROGRAMS_DIR, TEMPLATES_DIR, make_event
from tests.service.conftest import Recorder

PIGEON_TOPIC = "deliveries.pigeon.v1"


class SendPigeon(DeliveryCommand):
    """A throwaway channel: one carrier pigeon per target group, with the message's subject."""

    channel: ClassVar[str] = "pigeon"
    version: ClassVar[int] = 1

    message: str


class PigeonComposer:
    templates: tuple[str, ...] = ("subject.txt.j2",)

    def compose(self, c: Composition, renderer: Renderer) -> Iterator[SendPigeon]:
        assert c.audience is not None
        yield SendPigeon(event_id=c.event.event_id, program=c.program.program, audience_id=c.audience_id,
                         message=renderer.subject(c.event, c.program, c.audience))

    def preview(self, command: DeliveryCommand) -> Preview:
        assert isinstance(command, SendPigeon)
        return {".txt": command.message}


async def test_a_channel_registered_in_the_test_alone_is_planned_and_its_commands_reach_the_bus(
        broker: KafkaBroker, bus: Bus, engine: AsyncEngine, small_directory: list[Recipient]) -> None:
    await create_tables(engine, metadata)
    store = TailorStore(engine)
    await store.replace_directory(small_directory)
    with registered_channel(SendPigeon, PIGEON_TOPIC, Reach.GROUP), registered_composer("pigeon", PigeonComposer()):
        data = yaml.safe_load((PROGRAMS_DIR / "fvm.yaml").read_text())
        for audience in data["audiences"]:
            if audience["id"] == "programstyrgrupp":
                audience["channels"].append("pigeon")
        program = Program.model_validate(data)
        recorder = Recorder(broker, PIGEON_TOPIC, topics.EVENT_PLANNED)
        tailor = Tailor({"fvm": program}, Renderer(TEMPLATES_DIR, "http://budkavle.test"), store, bus)
        broker.include_router(build_router(tailor, bus))
        event = make_event(audiences=["politisk-styrgrupp", "programstyrgrupp"])
        async with TestKafkaBroker(broker):
            await bus.publish(topics.event_topic(event.type), event, str(event.event_id))
    [pigeon] = recorder[PIGEON_TOPIC]
    assert pigeon["audience_id"] == "programstyrgrupp"
    assert pigeon["message"].startswith("Regionstyrelsen har beslutat")
    [planned] = recorder[topics.EVENT_PLANNED]
    assert planned["plan"]["targeted"]["programstyrgrupp"] == {"email": 14, "teams": 1, "pigeon": 1}
    assert "pigeon" not in planned["plan"]["targeted"]["politisk-styrgrupp"]
