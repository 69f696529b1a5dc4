"""Kafka through FastStream: broker construction, topic creation, connecting and joining, publishing, and
which errors mean that a dependency is down. Reading the bus is `services.common.subscriptions`.

Every service uses the same code path; only KAFKA_BOOTSTRAP_SERVERS differs between a laptop
and a cluster.
"""

import asyncio
import logging
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    InvalidConfigurationError,
    InvalidReplicationFactorError,
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    UnsupportedSaslMechanismError,
    for_code,
)
from faststream.kafka import KafkaBroker
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError

from contracts.deliveries import MAX_BUS_MESSAGE_BYTES

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # settings read retry, which reads this module's DEPENDENCY_DOWN
    from services.common.settings import CommonSettings


class DependencyUnavailable(Exception):
    """Something a handler needs is down (a channel, the database, the broker): the message goes back to the
    bus and is tried again with back-off for as long as that takes; nothing is dead-lettered for it."""


#: Errors that mean "a dependency is down", not "this message cannot be handled".
DEPENDENCY_DOWN: tuple[type[BaseException], ...] = (
    DependencyUnavailable, OSError, TimeoutError, OperationalError, InterfaceError, KafkaError)


#: What a dependency refuses for good whenever it is asked: a message larger than the broker takes is a Kafka
#: error, but waiting for the broker to come back cannot help it. It is bounded and dead-lettered like any other.
NEVER_FITS: tuple[type[BaseException], ...] = (MessageSizeTooLargeError,)


class KafkaMisconfigured(Exception):
    """The cluster refuses what the settings ask (a replication factor larger than the cluster, credentials
    it does not know): waiting cannot help, so the service stops at start and says which setting."""


@dataclass(frozen=True)
class KafkaConnection:
    """Where the bus is and how to reach it: the same for the producer, the consumers and the admin client."""

    bootstrap_servers: str
    idempotent: bool = False
    replication_factor: int = 1
    min_insync_replicas: int = 1
    partitions: int = 3
    security: BaseSecurity | None = None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client."""
        return {"bootstrap_servers": self.servers(), **parse_security(self.security)}

    def servers(self) -> list[str]:
        """`host:port,host:port` as a list: FastStream passes a string on as one address."""
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


def kafka_connection(settings: "CommonSettings") -> KafkaConnection:
    return KafkaConnection(
        bootstrap_servers=settings.kafka_bootstrap_servers, idempotent=settings.kafka_enable_idempotence,
        replication_factor=settings.kafka_replication_factor,
        min_insync_replicas=settings.kafka_min_insync_replicas, partitions=settings.kafka_topic_partitions,
        security=_security(settings))


def _security(settings: "CommonSettings") -> BaseSecurity | None:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol in ("SSL", "SASL_SSL")
    context = None
    if use_ssl:
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile)
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    user, password = settings.kafka_sasl_username, settings.kafka_sasl_password
    sasl = {"SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512, "PLAIN": SASLPlaintext}
    return sasl[settings.kafka_sasl_mechanism](user, password, ssl_context=context, use_ssl=use_ssl)


def create_broker(connection: KafkaConnection | str, client_id: str) -> KafkaBroker:
    """A broker whose producer waits for all in-sync replicas (aiokafka defaults to acks=1).

    Idempotence is opt-in (setting `kafka_enable_idempotence`) because the embedded tansu broker
    does not support the idempotent producer; production Kafka does.
    """
    if isinstance(connection, str):
        connection = KafkaConnection(connection)
    return KafkaBroker(
        connection.servers(),
        acks="all",
        enable_idempotence=connection.idempotent,
        max_request_size=MAX_BUS_MESSAGE_BYTES,
        client_id=client_id,
        security=connection.security,
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


async def ensure_topics(connection: KafkaConnection, names: Iterable[str]) -> list[str]:
    """Create the topics Budkavle needs with the configured partitions, replication factor and
    `min.insync.replicas`; existing ones are left as they are. Returns what is wrong with existing topics
    (fewer partitions or replicas than configured), which the caller reports: a topic made by hand with one
    replica would otherwise lose data with its broker, unseen.

    Raises `KafkaMisconfigured` when the cluster refuses the settings or the credentials; a cluster that
    answers nothing raises aiokafka's connection error, for the caller to wait on."""
    admin = AIOKafkaAdminClient(**connection.client_kwargs(), client_id="budkavle-topics")
    try:
        try:
            await admin.start()
        except KafkaConnectionError:
            await _refused_credentials(connection)  # aiokafka says only "unable to bootstrap"
            raise
        wanted = list(dict.fromkeys(names))
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, connection.partitions, connection.replication_factor,
                            topic_configs={"min.insync.replicas": str(connection.min_insync_replicas)})
                   for n in wanted if n not in existing]
        if missing:
            response = await admin.create_topics(missing)
            # The answer carries an error per topic; aiokafka raises none of them.
            for topic, code, *message in response.topic_errors:
                error = for_code(code)
                if error is InvalidReplicationFactorError:
                    brokers = len((await admin.describe_cluster())["brokers"])
                    raise KafkaMisconfigured(
                        f"KAFKA_REPLICATION_FACTOR={connection.replication_factor} is larger than the cluster: "
                        f"{brokers} broker(s) answer at {connection.bootstrap_servers}")
                if error is InvalidConfigurationError:
                    raise KafkaMisconfigured(f"Kafka refused topic {topic} with min.insync.replicas="
                                             f"{connection.min_insync_replicas} (KAFKA_MIN_INSYNC_REPLICAS): "
                                             f"{message[0] if message else ''}")
                if code and error is not TopicAlreadyExistsError:  # already there: another service made it
                    raise error(f"creating topic {topic}: {message[0] if message else ''}")
        return _shortfalls(await _described(admin, [n for n in wanted if n in existing]), connection)
    finally:
        await admin.close()


#: How long a topic just made (by another service, a moment ago) may take to show its partitions on the
#: broker that answers: its metadata reaches every broker a little after the topic is created.
METADATA_SETTLE_SECONDS = 10.0


async def _described(admin: AIOKafkaAdminClient, names: list[str]) -> list[dict[str, Any]]:
    """The topics as the cluster describes them, once each shows its partitions (or the wait is over): a
    broker not yet told of a new topic describes it with none, which is no shortfall."""
    deadline = asyncio.get_running_loop().time() + METADATA_SETTLE_SECONDS
    while True:
        described = await admin.describe_topics(names) if names else []
        if all(t.get("partitions") for t in described) or asyncio.get_running_loop().time() > deadline:
            return list(described)
        await asyncio.sleep(0.2)


async def _refused_credentials(connection: KafkaConnection) -> None:
    """Raise `KafkaMisconfigured` when a broker refuses these credentials (not merely cannot be reached): a
    clear error at start, not a retry loop that hides it."""
    kwargs = parse_security(connection.security)
    if not kwargs.get("security_protocol", "PLAINTEXT").startswith("SASL"):
        return
    for address in connection.bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            conn = await create_conn(host, int(port), request_timeout_ms=10_000, **kwargs)
        except (SaslAuthenticationFailed, AuthenticationFailedError, UnsupportedSaslMechanismError) as error:
            raise KafkaMisconfigured(
                f"Kafka at {address} refused the credentials (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, "
                f"KAFKA_SASL_MECHANISM={kwargs.get('sasl_mechanism')}): {error}") from error
        except (KafkaError, OSError):
            continue  # this broker is down; another may answer
        conn.close()
        return


def _shortfalls(described: list[dict[str, Any]], connection: KafkaConnection) -> list[str]:
    found = []
    for topic in described:
        partitions = topic.get("partitions") or []
        replicas = min((len(p["replicas"]) for p in partitions), default=0)
        if len(partitions) < connection.partitions:
            found.append(f"{topic['topic']}: {len(partitions)} partition(s), KAFKA_TOPIC_PARTITIONS asks "
                         f"{connection.partitions}")
        if replicas < connection.replication_factor:
            found.append(f"{topic['topic']}: {replicas} replica(s), KAFKA_REPLICATION_FACTOR asks "
                         f"{connection.replication_factor}")
    return found


async def connect_producer(broker: KafkaBroker) -> None:
    """The first half of `KafkaBroker.start()`: the producer and publishers, so that publishing works."""
    await broker.connect()
    for pub in broker.publishers:
        await pub.start()
    broker.running = True


def start_consumers(broker: KafkaBroker) -> "asyncio.Task[None]":
    """The second half of `KafkaBroker.start()`, with the consumer groups joining concurrently and in the
    background. Each join waits for the group coordinator (seconds on small brokers; Kafka delays a new
    group's first rebalance by design), and nothing needs to wait for it: what is published meanwhile waits
    on the bus and is consumed once the groups are assigned. The returned task ends when every group has
    joined."""

    async def join() -> None:
        started = time.perf_counter()
        await asyncio.gather(*(sub.start() for sub in broker.subscribers))
        log.info("consumers joined", extra={"consumers": len(broker.subscribers),
                                            "seconds": round(time.perf_counter() - started, 2)})

    return asyncio.create_task(join())
