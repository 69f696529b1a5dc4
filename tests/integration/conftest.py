"""Integration fixtures: each starts the real component itself — a Kafka-protocol broker, an SMTP
server, an HTTP receiver, PostgreSQL — on loopback."""

import os
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import create_engine
from services.embedded.apache_kafka import KafkaCluster
from services.embedded.broker import EmbeddedKafka, free_port

POSTGRES_URL = os.environ.get("BUDKAVLE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture
def kafka_bootstrap() -> Iterator[str]:
    """A fresh broker per test (consumer-group rejoins are slow on tansu): KAFKA_BOOTSTRAP_SERVERS where
    set, testcontainers' Kafka where a Docker engine runs, else the embedded tansu binary."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif _docker_engine():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield container.get_bootstrap_server()
    else:
        with EmbeddedKafka() as broker:
            yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Apache Kafka itself: three brokers in KRaft mode from the broker's own jars (Maven Central), one
    cluster for the tests that need the production engine. A test that kills a broker starts it again."""
    with KafkaCluster(3, work_dir=tmp_path_factory.mktemp("apache-kafka")) as cluster:
        yield cluster


# --- SMTP ----------------------------------------------------------------------------------------

@dataclass
class SmtpServer:
    """A real SMTP server (aiosmtpd). `replies` scripts answers to DATA; `greylist` answers 451 to each
    sender and recipient pair until that long after it was first seen (by `clock`); `drops` closes the
    connection in the middle of that many DATA commands."""

    port: int
    messages: list[Any] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # scripted replies to DATA, then 250
    greylist: float = 0.0
    clock: Callable[[], float] = time.monotonic
    drops: int = 0
    greylisted: int = 0
    _first_seen: dict[tuple[str, str], float] = field(default_factory=dict)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: Any) -> str:
        if self.greylist:
            first = self._first_seen.setdefault((envelope.mail_from, address), self.clock())
            if self.clock() < first + self.greylist:
                self.greylisted += 1
                return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.drops:
            self.drops -= 1
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        if self.replies:
            return self.replies.pop(0)
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(port=free_port())
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    yield server
    controller.stop()


# --- HTTP receiver -------------------------------------------------------------------------------

@dataclass
class HttpReceiver:
    """`script` queues other answers (status, headers[, body]); with `limits_clock`, the receiver answers 429
    as Microsoft does to a webhook posted to more than 4 times a second, 60 per 30 s or 100 per hour."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    script: list[tuple[Any, ...]] = field(default_factory=list)
    limits_clock: Callable[[], float] | None = None
    throttled: int = 0
    _posts: dict[str, list[float]] = field(default_factory=dict)

    def over_limits(self, name: str) -> bool:
        if self.limits_clock is None:
            return False
        now = self.limits_clock()
        posts = self._posts.setdefault(name, [])
        if any(sum(1 for t in posts if t > now - span) >= limit for span, limit in ((1, 4), (30, 60), (3600, 100))):
            return True
        posts.append(now)
        return False


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A real HTTP server (uvicorn) answering like a Workflows webhook; `script` queues other answers."""
    port = free_port()
    receiver = HttpReceiver(url=f"http://127.0.0.1:{port}")
    app = FastAPI()

    @app.post("/hook/{name}")
    async def hook(name: str, request: Request) -> JSONResponse:
        if receiver.script:
            status, headers, *body = receiver.script.pop(0)
            return JSONResponse(body[0] if body else {"error": "scripted"}, status_code=status, headers=headers)
        if receiver.over_limits(name):
            receiver.throttled += 1
            return JSONResponse({"error": "Too many requests"}, status_code=429, headers={"Retry-After": "1"})
        receiver.received.append({"name": name, "body": await request.json()})
        return JSONResponse({}, status_code=202)

    with served(app, port):
        yield receiver


@contextmanager
def served(app: Any, port: int) -> Iterator[str]:
    """An ASGI app served over real HTTP (uvicorn, no lifespan) on loopback for a while; its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# --- databases -----------------------------------------------------------------------------------

def _postgres_ready(host: str, port: int) -> bool:
    found = shutil.which("pg_isready")
    return found is not None and subprocess.run([found, "-q", "-h", host, "-p", str(port)], check=False).returncode == 0


@pytest.fixture(scope="session")
def postgres() -> str:
    """The tests' PostgreSQL URL, with the server running: on loopback, `tests/postgres-up` installs,
    starts and prepares the machine's PostgreSQL when none answers (a fresh machine has none)."""
    where = urlsplit(POSTGRES_URL.replace("+asyncpg", ""))
    host, port = where.hostname or "127.0.0.1", where.port or 5432
    if _postgres_ready(host, port):
        return POSTGRES_URL
    if host not in ("127.0.0.1", "localhost"):
        pytest.fail(f"PostgreSQL at {host}:{port} (BUDKAVLE_TEST_POSTGRES_URL) does not answer")
    script = Path(__file__).resolve().parent.parent / "postgres-up"
    env = {**os.environ, "BUDKAVLE_TEST_POSTGRES_PORT": str(port),
           "BUDKAVLE_TEST_POSTGRES_DB": where.path.lstrip("/") or "test"}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"tests/postgres-up could not start PostgreSQL:\n{done.stdout}{done.stderr}")
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_engine(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[AsyncEngine]:
    """The same store tests on the embedded SQLite file and on the local PostgreSQL."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
        yield engine
        await engine.dispose()
        return
    request.getfixturevalue("postgres")
    schema = f"t_{os.getpid()}_{abs(hash(request.node.name)) % 10**8}"
    admin = create_engine(POSTGRES_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = _with_search_path(POSTGRES_URL, schema)
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def postgres_schema(postgres: str) -> AsyncIterator[str]:
    """A schema of its own on the local PostgreSQL, for engines made with `_with_search_path`."""
    schema = f"s_{os.getpid()}_{uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def _with_search_path(url: str, schema: str) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
