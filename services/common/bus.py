"""Kafka through FastStream: broker construction, topic creation, publishing, and which errors mean that a
dependency is down. Reading the bus is `services.common.subscriptions`.

Every service uses the same code path; only KAFKA_BOOTSTRAP_SERVERS differs between a laptop
and a cluster.
"""

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError

from contracts.deliveries import MAX_BUS_MESSAGE_BYTES


class DependencyUnavailable(Exception):
    """Something a handler needs is down (a channel, the database, the broker): the message goes back to the
    bus and is tried again with back-off for as long as that takes; nothing is dead-lettered for it."""


#: Errors that mean "a dependency is down", not "this message cannot be handled".
DEPENDENCY_DOWN: tuple[type[BaseException], ...] = (
    DependencyUnavailable, OSError, TimeoutError, OperationalError, InterfaceError, KafkaError)


#: What a dependency refuses for good whenever it is asked: a message larger than the broker takes is a Kafka
#: error, but waiting for the broker to come back cannot help it. It is bounded and dead-lettered like any other.
NEVER_FITS: tuple[type[BaseException], ...] = (MessageSizeTooLargeError,)


def create_broker(bootstrap_servers: str, client_id: str, idempotent: bool = False) -> KafkaBroker:
    """A broker whose producer waits for all in-sync replicas (aiokafka defaults to acks=1).

    Idempotence is opt-in (setting `kafka_enable_idempotence`) because the embedded tansu broker
    does not support the idempotent producer; production Kafka does.
    """
    return KafkaBroker(
        bootstrap_servers,
        acks="all",
        enable_idempotence=idempotent,
        max_request_size=MAX_BUS_MESSAGE_BYTES,
        client_id=client_id,
        logger=logging.getLogger("budkavle.bus"),
    )


class Bus:
    """What handlers need of the broker: publish a contract model with a key."""

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker

    async def publish(self, topic: str, message: BaseModel, key: str) -> None:
        await self.publish_json(topic, message.model_dump_json().encode(), key)

    async def publish_json(self, topic: str, body: bytes, key: str) -> None:
        await self.broker.publish(body, topic, key=key.encode(), headers={"content-type": "application/json"})


async def ensure_topics(bootstrap_servers: str, names: Iterable[str], partitions: int = 3) -> None:
    """Create the topics Budkavle needs; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    for attempt in range(30):
        try:
            await admin.start()
            break
        except Exception:  # the broker may still be starting
            if attempt == 29:
                raise
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
