"""Apache Kafka itself, on loopback: a KRaft cluster of one or three brokers from the broker's own jars.

The jars come from Maven Central through `deploy/kafka/pom.xml` (the one place the version is pinned), fetched
once by Maven into a cache (`BUDKAVLE_KAFKA_HOME`, default `~/.cache/budkavle/kafka-<version>`) that the tests,
CI and `make kafka` reuse. Each broker is also a controller (combined mode), runs in its own JVM (Java 17) and
can be killed and started again on its own data, which is what the broker-loss test does.

Every broker listens three times: PLAINTEXT for the platform; SASL_PLAINTEXT with SCRAM-SHA-256/512 for one
user whose credentials are written into the metadata when the storage is formatted; and SSL with mutual TLS
(a CA made for the cluster by openssl signs the brokers' certificate and one client's), so that Kafka
security is tested against the real thing.
"""

import asyncio
import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from services.embedded.broker import die_with_parent, free_ports, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "deploy" / "kafka" / "pom.xml"
SCRAM_USER = "budkavle"


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    assert match, f"{POM} names no kafka.version"
    return match.group(1)


def kafka_libs() -> Path:
    """The directory of the broker's jars, fetched by Maven the first time."""
    home = Path(os.environ.get("BUDKAVLE_KAFKA_HOME") or Path.home() / ".cache" / "budkavle"
                / f"kafka-{kafka_version()}")
    libs = home / "libs"
    if (home / ".complete").exists():
        return libs
    if not shutil.which("mvn") or not shutil.which("java"):
        raise RuntimeError("Apache Kafka needs Java 17 and Maven (mvn) to fetch its jars from Maven Central")
    libs.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
                             f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"Maven could not fetch Apache Kafka {kafka_version()}:\n{result.stdout[-3000:]}"
                           f"{result.stderr[-3000:]}")
    (home / ".complete").touch()
    return libs


@dataclass
class Node:
    node_id: int
    port: int
    sasl_port: int
    ssl_port: int
    controller_port: int
    process: subprocess.Popen[bytes] | None = None


def make_certificates(directory: Path) -> None:
    """A CA, the brokers' certificate (for 127.0.0.1) and a client's, by openssl; PEM, unencrypted (tests)."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
            "-subj", "/CN=budkavle-test-ca")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who in ("broker", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
                "-subj", f"/CN={who}")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{who}.crt", "-days", "30", "-extfile", "san.ext")
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker.pk8")
    (directory / "broker.pem").write_text((directory / "broker.pk8").read_text() + (directory / "broker.crt").read_text())


class KafkaCluster:
    """`brokers` Apache Kafka brokers in KRaft combined mode; `with KafkaCluster(3) as cluster:`."""

    def __init__(self, brokers: int = 1, work_dir: Path | None = None, scram_password: str | None = None) -> None:
        if brokers < 1:
            raise ValueError("a cluster has at least one broker")
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="budkavle-kafka-"))
        self._own_dir = work_dir is None
        self.scram_password = scram_password or base64.urlsafe_b64encode(os.urandom(18)).decode()
        ports = free_ports(4 * brokers)
        self.nodes = [Node(n, ports[4 * n - 4], ports[4 * n - 3], ports[4 * n - 2], ports[4 * n - 1])
                      for n in range(1, brokers + 1)]
        self.tls = self.work_dir / "tls"  # ca.crt, client.crt and client.key for a client of the SSL listener
        self._libs: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    @property
    def sasl_bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{node.sasl_port}" for node in self.nodes)

    @property
    def ssl_bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{node.ssl_port}" for node in self.nodes)

    def _properties(self, node: Node) -> str:
        n = len(self.nodes)
        voters = ",".join(f"{m.node_id}@127.0.0.1:{m.controller_port}" for m in self.nodes)
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return "\n".join([
            "process.roles=broker,controller",
            f"node.id={node.node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://127.0.0.1:{node.port},SASL_PLAINTEXT://127.0.0.1:{node.sasl_port},"
            f"SSL://127.0.0.1:{node.ssl_port},CONTROLLER://127.0.0.1:{node.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.port},SASL_PLAINTEXT://127.0.0.1:{node.sasl_port},"
            f"SSL://127.0.0.1:{node.ssl_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,"
            "CONTROLLER:PLAINTEXT",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.tls / 'broker.pem'}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.tls / 'ca.crt'}",
            "ssl.client.auth=required",
            "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
            f"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config={scram}",
            f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={scram}",
            f"log.dirs={self.work_dir / f'data-{node.node_id}'}",
            "num.partitions=3",
            f"offsets.topic.replication.factor={min(3, n)}",
            f"transaction.state.log.replication.factor={min(3, n)}",
            f"transaction.state.log.min.isr={min(2, n)}",
            "auto.create.topics.enable=false",
            "group.initial.rebalance.delay.ms=0",
            # A killed broker's partitions move to the others within seconds, not the default 18 s.
            "broker.session.timeout.ms=6000",
            "broker.heartbeat.interval.ms=1000",
            "",
        ])

    def _java(self, *args: str, heap: str = "-Xmx512m") -> list[str]:
        assert self._libs is not None
        return ["java", heap, "-Xss1m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
                "-cp", f"{self._libs}/*", *args]

    def start(self, timeout: float = 120.0) -> str:
        """Fetch the jars if needed, format each broker's storage, start them all, and return once the
        cluster takes writes on a topic replicated to every broker."""
        self._libs = kafka_libs()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / "log4j2.properties").write_text(
            "status = warn\nappender.out.type = Console\nappender.out.name = out\n"
            "appender.out.layout.type = PatternLayout\nappender.out.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = WARN\nrootLogger.appenderRef.out.ref = out\n"
            "logger.kafka.name = kafka.server.KafkaRaftServer\nlogger.kafka.level = INFO\n")
        make_certificates(self.tls)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        for node in self.nodes:
            config = self.work_dir / f"server-{node.node_id}.properties"
            config.write_text(self._properties(node))
            result = subprocess.run(self._java(
                "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config),
                "--add-scram", f"SCRAM-SHA-256=[name={SCRAM_USER},password={self.scram_password}]",
                "--add-scram", f"SCRAM-SHA-512=[name={SCRAM_USER},password={self.scram_password}]",
                heap="-Xmx256m"), capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                raise RuntimeError(f"formatting broker {node.node_id} failed: {result.stdout}{result.stderr}")
        for node in self.nodes:
            self.start_broker(node.node_id)
        for node in self.nodes:
            wait_for_port("127.0.0.1", node.port, timeout)
        self.wait_until_whole(timeout)
        return self.bootstrap_servers

    def wait_until_whole(self, timeout: float = 120.0) -> None:
        """Until every broker is registered and a write replicated to all of them succeeds (after a restart)."""
        asyncio.run(_wait_for_writes(self.bootstrap_servers, len(self.nodes), timeout))

    def start_broker(self, node_id: int) -> None:
        """Start one broker (again) on its own data and ports."""
        node = self.nodes[node_id - 1]
        log = open(self.work_dir / f"broker-{node_id}.log", "ab")  # noqa: SIM115 (the broker writes it)
        node.process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.work_dir / f"server-{node_id}.properties")),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        log.close()

    def kill_broker(self, node_id: int) -> None:
        """SIGKILL: a broker lost, as in a crash; its data stays for a restart."""
        node = self.nodes[node_id - 1]
        assert node.process is not None
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(30)
        node.process = None

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(30)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()
                node.process = None
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> "KafkaCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


async def _wait_for_writes(bootstrap_servers: str, brokers: int, timeout: float) -> None:
    """Until a message is written with acks=all to a topic that every broker holds a replica of."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = asyncio.get_running_loop().time() + timeout
    last: BaseException | None = None
    while asyncio.get_running_loop().time() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            if len(cluster["brokers"]) < brokers:
                raise KafkaError(f"{len(cluster['brokers'])} of {brokers} brokers registered")
            try:
                await admin.create_topics([NewTopic("budkavle.cluster-ready", 1, brokers)])
            except TopicAlreadyExistsError:
                pass
            await producer.start()
            await producer.send_and_wait("budkavle.cluster-ready", b"ready")
            return
        except (KafkaError, OSError) as error:
            last = error
            await asyncio.sleep(0.5)
        finally:
            await producer.stop()
            await admin.close()
    raise TimeoutError(f"the Kafka cluster took no write within {timeout:.0f} s: {last!r}")
