"""The production engine. First the settings for a cluster, against Apache Kafka itself (three brokers in KRaft
mode): replicated topics, shortfalls reported, a replication factor the cluster cannot hold, SASL/SCRAM, and
credentials it refuses. Then the production topology under faults: every service its own process, one
PostgreSQL database, two gateways, two email replicas in one consumer group. One event to 2 000 people; one
email replica is killed (SIGKILL) in the middle of it and started again. On Apache Kafka, with the idempotent
producer, topics replicated three times and two in sync, one broker is killed (SIGKILL) too and started again
later. The same fan-out on tansu, the embedded broker, gives the figure to compare.

These share one Apache Kafka cluster (in one module, so that parallel test workers start one cluster)."""


import asyncio
import csv
import dataclasses
import email as email_message
import email.policy as email_policy
import io
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.common.bus import KafkaConnection, KafkaMisconfigured, create_broker, ensure_topics, kafka_connection
from services.common.settings import CommonSettings
from services.email.main import EmailSettings
from services.embedded.apache_kafka import SCRAM_USER, KafkaCluster
from tests.conftest import approve_over_http
from tests.integration.conftest import POSTGRES_URL, HttpReceiver, SmtpServer
from tests.integration.processes import ServiceProcess
from tests.waiting import wait_for, wait_until

PEOPLE = 2000
#: BUDKAVLE_SMTP_POOL_SIZE's default: a crash repeats at most one mail per connection.
POOL_SIZE = EmailSettings.model_fields["smtp_pool_size"].default
TOKEN = "topology-token"


@pytest.fixture
def database(postgres: str) -> Iterator[str]:
    """A database of its own for this test, on the local PostgreSQL."""
    name = f"budkavle_topology_{os.getpid()}"
    server = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0]

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{server}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def import_directory(tmp_path: Path, env: dict[str, str]) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    csv = tmp_path / "people.csv"
    csv.write_text("id,name,email,organisation,role,profession,area,municipality,options\n" + "".join(
        f"p{n:04d},Person {n},p{n:04d}@example.se,FVM programkontor,programdeltagare,,västra,,\n"
        for n in range(PEOPLE)))
    result = subprocess.run([sys.executable, "-m", "services.cli", "recipients", "import", str(csv)], cwd=ROOT,
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def repeated(smtp_server: SmtpServer) -> int:
    """Mails beyond the first to the same person so far."""
    got = Counter(rcpt for message in smtp_server.messages for rcpt in message.rcpt_tos)
    return sum(n - 1 for n in got.values())


@pytest.mark.parametrize("engine", ["apache-kafka", "tansu"])
def test_replicas_and_killed_processes_reach_each_person_once_and_lose_nothing(
        engine: str, request: pytest.FixtureRequest, tmp_path: Path, database: str, smtp_server: SmtpServer,
        http_receiver: HttpReceiver) -> None:
    cluster: KafkaCluster | None = None
    if engine == "apache-kafka":
        cluster = request.getfixturevalue("apache_kafka")
        bus = {"KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers, "KAFKA_ENABLE_IDEMPOTENCE": "true",
               "KAFKA_REPLICATION_FACTOR": "3", "KAFKA_MIN_INSYNC_REPLICAS": "2"}
    else:
        bus = {"KAFKA_BOOTSTRAP_SERVERS": request.getfixturevalue("kafka_bootstrap")}
    shared = {**bus, "DATABASE_URL": database,
              "BUDKAVLE_LINK_KEY": "a-link-key-for-the-topology-test-only-0123456789",
              "BUDKAVLE_SESSION_KEY": "a-session-key-for-the-topology-test-only-012345"}
    tokens = f"{TOKEN}=fvm:publisher+reader"
    import_directory(tmp_path, shared)
    tailor = ServiceProcess("tailor", tmp_path, {**shared, "BUDKAVLE_API_TOKENS": tokens})
    email = [ServiceProcess("email", tmp_path, {**shared, "SMTP_URL": f"smtp://127.0.0.1:{smtp_server.port}"},
                            label=f"email-{n}") for n in (1, 2)]
    teams = ServiceProcess("teams", tmp_path, {**shared, "BUDKAVLE_TEAMS_ALLOW_LOOPBACK": "true",
                                                "TEAMS_WEBHOOK_FVM_PROGRAMDELTAGARE": f"{http_receiver.url}/hook/pd"})
    intranet = ServiceProcess("intranet", tmp_path, shared)
    insights = ServiceProcess("insights", tmp_path, {**shared, "BUDKAVLE_API_TOKENS": tokens})
    started = [tailor, *email, teams, intranet, insights]
    try:
        for process in started:  # all at once: the replicas' migrations take turns on PostgreSQL
            process.start()
        for process in started:
            process.wait_ready()
        gateways = [ServiceProcess("gateway", tmp_path, {**shared, "BUDKAVLE_API_TOKENS": tokens,
                                                         "BUDKAVLE_TAILOR_URL": tailor.url}, label=f"gateway-{n}")
                    for n in (1, 2)]
        started += gateways
        for process in gateways:
            process.start()
        for process in gateways:
            process.wait_ready()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        event = {"type": "status.update", "program": "fvm", "publisher": "FVM programkontor", "importance": "must_know",
                 "sensitivity": "public", "audiences": ["programdeltagare"],
                 "payload": {"title": "Läget inför införandet", "summary": "Allt går enligt plan."}}
        response = httpx.post(f"{gateways[0].url}/v1/events", json=event, headers=auth, timeout=30)
        assert response.status_code == 202 and response.json()["status"] == "awaiting_approval", response.text
        # Must-know: held until an approver approves it, here at the other gateway (one PostgreSQL for both).
        approve_over_http(gateways[1].url, response.json()["event_id"], shared["BUDKAVLE_SESSION_KEY"].encode())
        approved = time.monotonic()
        status_url = f"{gateways[1].url}/v1/events/{response.json()['event_id']}"  # the other gateway reports

        wait_until(lambda: len(smtp_server.messages) >= 300, 120, "the fan-out to be under way")
        repeats_with_a_broker_down = None
        if cluster is not None:  # a broker lost in the middle of it, and back some 300 mails later
            cluster.kill_broker(2)
            broker_killed_at = len(smtp_server.messages)
            wait_until(lambda: len(smtp_server.messages) >= broker_killed_at + 300, 180,
                       "the fan-out to go on without the broker")
            repeats_with_a_broker_down = repeated(smtp_server)
            cluster.start_broker(2)
            wait_until(lambda: len(smtp_server.messages) >= broker_killed_at + 500, 180, "the fan-out to go on")
        email[0].kill()
        before = len(smtp_server.messages)
        email[0].start()

        def delivered() -> bool:
            return bool(httpx.get(status_url, headers=auth, timeout=10).json()["status"] == "delivered")

        wait_until(delivered, 300, "the event to be delivered")
        fan_out_seconds = time.monotonic() - approved
        if cluster is not None:
            cluster.wait_until_whole()  # the restarted broker is back: the cluster is whole for what follows
        email[0].wait_ready()
        status = httpx.get(status_url, headers=auth, timeout=10).json()
        item = httpx.get(f"{intranet.url}/intranet/items/{response.json()['event_id']}", timeout=10)
        # Follow-up on PostgreSQL, across processes: the email service signed each person's link, the
        # insights service checks it, counts the answer, and has heard every delivery.
        mail = email_message.message_from_bytes(smtp_server.messages[0].content, policy=email_policy.default)
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        link = re.search(r"/feedback/([A-Za-z0-9_.-]+)\?q=understood", text)
        assert link is not None, text
        opened = httpx.get(f"{insights.url}/feedback/{link.group(1)}?q=understood&a=ja", timeout=10)  # records nothing
        assert opened.status_code == 200 and 'id="skicka"' in opened.text
        answered = httpx.post(f"{insights.url}/feedback/{link.group(1)}", data={"q": "understood", "a": "ja"}, timeout=10)

        def reached() -> dict[str, str]:
            export = httpx.get(f"{insights.url}/insights/fvm/export.csv", headers=auth, timeout=10)
            rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
            return next((r for r in rows if r["målgrupp_id"] == "programdeltagare"), {})
        wait_until(lambda: reached().get("email_levererade") == str(PEOPLE), 60, "insights to hear every delivery")
        anonymous = httpx.get(f"{insights.url}/insights/fvm/", timeout=10, follow_redirects=False)
    finally:
        for process in started:
            process.stop()
    got = Counter(rcpt for message in smtp_server.messages for rcpt in message.rcpt_tos)
    repeats = repeated(smtp_server)
    print(json.dumps({"engine": engine, "people": PEOPLE, "fan_out_seconds": round(fan_out_seconds, 1),
                      "mails_before_the_kill": before, "reached": len(got), "repeats": repeats,
                      "repeats_with_a_broker_down": repeats_with_a_broker_down}))
    assert 300 <= before < PEOPLE
    # Losing a broker repeats nothing: a mail is recorded in the ledger (PostgreSQL) before its command's
    # offset is committed, whichever broker leads the partition.
    assert repeats_with_a_broker_down in (None, 0)
    assert len(got) == PEOPLE  # everyone
    assert repeats <= POOL_SIZE  # at most the mails in flight on the killed replica's connections
    assert status["totals"]["email"]["sent"] == PEOPLE and status["totals"]["email"]["failed"] == 0
    assert [r["name"] for r in http_receiver.received] == ["pd"]
    assert item.status_code == 200 and "Läget inför införandet" in item.text
    assert answered.status_code == 200 and "Tack för ditt svar" in answered.text
    assert anonymous.status_code == 303 and "/auth/login?next=%2Finsights%2Ffvm%2F" in anonymous.headers["location"]


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


async def published_and_read(connection: KafkaConnection, topic: str, body: bytes) -> list[bytes]:
    """Publish `body` through a FastStream broker on `connection`, then read the topic from its start."""
    broker = create_broker(connection, "it-security")
    await broker.connect()
    try:
        await broker.publish(body, topic, key=b"k")
    finally:
        await broker.stop()
    consumer = AIOKafkaConsumer(topic, **connection.client_kwargs(), group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        while not batch:  # the first fetch may come before the partition's leader answers
            batch = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    return [r.value for records in batch.values() for r in records]


async def test_a_scram_user_publishes_and_reads_with_acks_from_every_in_sync_replica(
        apache_kafka: KafkaCluster) -> None:
    settings = scram_settings(apache_kafka, apache_kafka.scram_password)
    connection = kafka_connection(settings)
    name = f"it.scram.{uuid4().hex[:8]}"
    assert await ensure_topics(connection, [name]) == []
    read = await published_and_read(dataclasses.replace(connection, idempotent=True), name, b'{"hej": 1}')
    assert read == [b'{"hej": 1}']


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


async def test_a_client_with_its_own_certificate_publishes_over_mutual_tls(apache_kafka: KafkaCluster) -> None:
    tls = apache_kafka.tls
    connection = kafka_connection(CommonSettings(
        KAFKA_BOOTSTRAP_SERVERS=apache_kafka.ssl_bootstrap_servers, KAFKA_SECURITY_PROTOCOL="SSL",
        KAFKA_SSL_CAFILE=str(tls / "ca.crt"), KAFKA_SSL_CERTFILE=str(tls / "client.crt"),
        KAFKA_SSL_KEYFILE=str(tls / "client.key"), KAFKA_REPLICATION_FACTOR=3, KAFKA_MIN_INSYNC_REPLICAS=2))
    name = f"it.mtls.{uuid4().hex[:8]}"
    assert await ensure_topics(connection, [name]) == []
    assert await published_and_read(connection, name, b'{"hej": 2}') == [b'{"hej": 2}']
