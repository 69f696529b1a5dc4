"""The settings for a cluster, against Apache Kafka itself (three brokers): replicated topics, shortfalls
reported, a replication factor the cluster cannot hold, SASL/SCRAM, and credentials it refuses."""

import asyncio
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.common.bus import KafkaConnection, KafkaMisconfigured, create_broker, ensure_topics, kafka_connection
from services.common.settings import CommonSettings
from services.embedded.apache_kafka import SCRAM_USER, KafkaCluster
from tests.integration.processes import ServiceProcess
from tests.waiting import wait_for


def scram_settings(cluster: KafkaCluster, password: str) -> CommonSettings:
    return CommonSettings(KAFKA_BOOTSTRAP_SERVERS=cluster.sasl_bootstrap_servers,
                          KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
                          KAFKA_SASL_USERNAME=SCRAM_USER, KAFKA_SASL_PASSWORD=password,
                          KAFKA_REPLICATION_FACTOR=3, KAFKA_MIN_INSYNC_REPLICAS=2)


async def described_topics(admin: AIOKafkaAdminClient, names: list[str]) -> list[dict[str, Any]]:
    """The topics' metadata once every broker has it (a new topic's partitions show in a moment)."""
    found: list[dict[str, Any]] = []

    async def complete() -> bool:
        found[:] = await admin.describe_topics(names)
        return all(t["partitions"] for t in found)
    await wait_for(complete, timeout=30)
    return found


async def test_topics_are_created_on_every_broker_with_the_configured_minimum_in_sync(
        apache_kafka: KafkaCluster) -> None:
    name = f"it.replicated.{uuid4().hex[:8]}"
    connection = KafkaConnection(apache_kafka.bootstrap_servers, replication_factor=3, min_insync_replicas=2)
    assert await ensure_topics(connection, [name]) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=apache_kafka.bootstrap_servers)
    await admin.start()
    try:
        [topic] = await described_topics(admin, [name])
        [described] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs={"min.insync.replicas": None})])
    finally:
        await admin.close()
    assert len(topic["partitions"]) == 3
    assert all(sorted(p["replicas"]) == [1, 2, 3] for p in topic["partitions"])
    [(_, _, _, _, entries)] = described.resources
    assert [(entry[0], entry[1]) for entry in entries] == [("min.insync.replicas", "2")]


async def test_an_existing_topic_with_fewer_replicas_or_partitions_is_reported_not_silently_used(
        apache_kafka: KafkaCluster) -> None:
    thin, fine = f"it.thin.{uuid4().hex[:8]}", f"it.fine.{uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=apache_kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(thin, 1, 1), NewTopic(fine, 3, 3)])
        await described_topics(admin, [thin, fine])
    finally:
        await admin.close()
    connection = KafkaConnection(apache_kafka.bootstrap_servers, replication_factor=3, min_insync_replicas=2)
    assert await ensure_topics(connection, [thin, fine]) == [
        f"{thin}: 1 partition(s), KAFKA_TOPIC_PARTITIONS asks 3",
        f"{thin}: 1 replica(s), KAFKA_REPLICATION_FACTOR asks 3"]


async def test_a_replication_factor_larger_than_the_cluster_is_an_error_naming_the_setting(
        apache_kafka: KafkaCluster) -> None:
    connection = KafkaConnection(apache_kafka.bootstrap_servers, replication_factor=5, min_insync_replicas=2)
    with pytest.raises(KafkaMisconfigured, match=r"KAFKA_REPLICATION_FACTOR=5 is larger than the cluster: 3 broker"):
        await ensure_topics(connection, [f"it.too-wide.{uuid4().hex[:8]}"])


async def test_a_scram_user_publishes_and_reads_with_acks_from_every_in_sync_replica(
        apache_kafka: KafkaCluster) -> None:
    settings = scram_settings(apache_kafka, apache_kafka.scram_password)
    connection = kafka_connection(settings)
    name = f"it.scram.{uuid4().hex[:8]}"
    assert await ensure_topics(connection, [name]) == []
    broker = create_broker(KafkaConnection(**{**connection.__dict__, "idempotent": True}), "it-scram")
    await broker.connect()
    try:
        await broker.publish(b'{"hej": 1}', name, key=b"k")
    finally:
        await broker.stop()
    consumer = AIOKafkaConsumer(name, **connection.client_kwargs(), group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        while not batch:  # the first fetch may come before the partition's leader answers
            batch = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    assert [r.value for records in batch.values() for r in records] == [b'{"hej": 1}']


async def test_wrong_scram_credentials_are_a_clear_error_not_a_retry_loop(apache_kafka: KafkaCluster) -> None:
    connection = kafka_connection(scram_settings(apache_kafka, "not-the-password"))
    with pytest.raises(KafkaMisconfigured, match=r"refused the credentials \(KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD"):
        await asyncio.wait_for(ensure_topics(connection, ["it.never"]), 30)


def test_a_service_given_wrong_credentials_stops_at_start_and_says_which_setting(
        apache_kafka: KafkaCluster, tmp_path: Path) -> None:
    service = ServiceProcess("intranet", tmp_path, {
        "KAFKA_BOOTSTRAP_SERVERS": apache_kafka.sasl_bootstrap_servers, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_USERNAME": SCRAM_USER, "KAFKA_SASL_PASSWORD": "not-the-password", "DATABASE_URL": "",
        "BUDKAVLE_SESSION_KEY": "a-session-key-for-this-test-only-0123456789"})
    service.start()
    assert service.process is not None
    code = service.process.wait(60)
    service.stop()
    assert code != 0
    assert "refused the credentials (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD" in service.log_path.read_text()
