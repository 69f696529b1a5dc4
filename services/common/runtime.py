"""Composes services into one running process: broker, database, HTTP app, background tasks.

A service contributes a `ServiceParts`; the same runtime runs one service alone
(`python -m services.<name>`) or every service together (the embedded platform).
"""

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from faststream.kafka import KafkaBroker, KafkaRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts import topics
from contracts.channels import CHANNELS
from services.common.bus import (
    DEPENDENCY_DOWN,
    Bus,
    KafkaConnection,
    KafkaMisconfigured,
    connect_producer,
    create_broker,
    ensure_topics,
    kafka_connection,
    start_consumers,
)
from services.common.db import create_engine
from services.common.migrations import Migrations, upgrade
from services.common.settings import CommonSettings

if TYPE_CHECKING:  # FastAPI loads only in a process that serves an API (a sender apart serves health alone)
    from fastapi import APIRouter, FastAPI

log = logging.getLogger(__name__)

BackgroundTask = Callable[[], Awaitable[object]]


@dataclass
class ServiceParts:
    name: str
    router: KafkaRouter | None = None
    http: "APIRouter | None" = None
    migrations: Migrations | None = None  # the service's own tables and their history, migrated at start
    #: JSON Schemas the service's HTTP routes refer to without FastAPI seeing them as models (e.g. a
    #: request body read and validated by hand); merged into the OpenAPI document's components.
    openapi_schemas: dict[str, Any] = field(default_factory=dict)
    background: tuple[BackgroundTask, ...] = ()
    on_start: tuple[BackgroundTask, ...] = ()
    on_stop: tuple[BackgroundTask, ...] = ()
    #: The service's own database, when it is not the runtime's (embedded mode: a SQLite file per service).
    engine: AsyncEngine | None = None
    #: A check of its own for /readyz ("ok", "joining" or what is wrong): a service in a process of its own.
    readiness: Callable[[], Awaitable[str]] | None = None


@dataclass
class Runtime:
    settings: CommonSettings
    engine: AsyncEngine
    broker: KafkaBroker
    bus: Bus
    connection: KafkaConnection
    parts: list[ServiceParts] = field(default_factory=list)
    #: What is wrong with existing topics (fewer partitions or replicas than configured), as /readyz reports.
    topic_shortfalls: list[str] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _joining: "asyncio.Task[None] | None" = None
    _connected: bool = False
    _misconfigured: str = ""

    @classmethod
    def create(cls, settings: CommonSettings, client_id: str, service: str) -> "Runtime":
        """A runtime on the broker and `service`'s database (see `resolved_database_url`)."""
        if not settings.kafka_bootstrap_servers:
            raise SystemExit("KAFKA_BOOTSTRAP_SERVERS is not set (the embedded runner `budkavle up` sets it)")
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.resolved_database_url(service))
        connection = kafka_connection(settings)
        broker = create_broker(connection, client_id)
        return cls(settings=settings, engine=engine, broker=broker, bus=Bus(broker), connection=connection)

    def on_database(self, database_url: str) -> "Runtime":
        """This runtime's broker and bus over another database, for building a service that keeps its tables
        apart (embedded mode); the parts it builds name that engine (`ServiceParts.engine`), and this runtime
        migrates, checks and closes it."""
        return replace(self, engine=create_engine(database_url), parts=[], _tasks=[])

    def add(self, parts: ServiceParts) -> None:
        if parts.router is not None:
            self.broker.include_router(parts.router)
        self.parts.append(parts)

    def tables_migrated(self) -> None:
        """Every part's tables were brought to their newest revision by another process: start without
        Alembic (`budkavle up` migrates in a process of its own)."""
        for part in self.parts:
            part.migrations = None

    def engines(self) -> list[AsyncEngine]:
        """Every database of this runtime's services, each once."""
        found = [self.engine]
        for part in self.parts:
            if part.engine is not None and all(part.engine is not e for e in found):
                found.append(part.engine)
        return found

    async def start(self) -> None:
        for part in self.parts:
            if part.migrations is not None:
                await upgrade(part.engine or self.engine, part.migrations)
        for part in self.parts:
            for hook in part.on_start:
                await hook()
        try:
            await self._connect()
        except KafkaMisconfigured as error:  # ends the start: waiting cannot mend a setting
            log.critical("Kafka refuses the settings; not starting", extra={"error": str(error)})
            raise
        except DEPENDENCY_DOWN as error:
            # A cluster that answers nothing (yet): serve HTTP, say so in /readyz, accept and keep what comes
            # (the gateway's outbox, each service's tables), and connect once the cluster answers.
            log.warning("Kafka does not answer; waiting for it", extra={
                "bootstrap_servers": self.connection.bootstrap_servers, "error": repr(error)})
            self._joining = asyncio.create_task(self._connect_later())
        else:
            self._joining = start_consumers(self.broker)
            self._start_background()
        log.info("services started", extra={"services": [p.name for p in self.parts]})

    async def _connect(self) -> None:
        self.topic_shortfalls = await ensure_topics(
            self.connection, topics.all_topics(*(spec.topic for spec in CHANNELS.values())))
        for shortfall in self.topic_shortfalls:
            log.error("a topic is not as configured; it is used as it is", extra={"topic": shortfall})
        await connect_producer(self.broker)
        self._connected = True

    async def _connect_later(self) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await self._connect()
                break
            except KafkaMisconfigured as error:  # found only now that the cluster answers: stay unready, say why
                self._misconfigured = str(error)
                log.error("Kafka refuses the settings", extra={"error": str(error)})
                return
            except DEPENDENCY_DOWN:
                delay = min(delay * 2, 15.0)
            except Exception as error:  # a cluster half up can fail a client in ways of its own: try again
                log.error("connecting to Kafka failed; trying again", extra={"error": repr(error)})
                delay = min(delay * 2, 15.0)
        log.info("Kafka answers; connected", extra={"bootstrap_servers": self.connection.bootstrap_servers})
        self._start_background()
        await start_consumers(self.broker)

    def _start_background(self) -> None:
        for part in self.parts:
            for task in part.background:
                self._tasks.append(asyncio.create_task(_supervise(part.name, task)))

    async def stop(self) -> None:
        if self._joining is not None and not self._joining.done():
            self._joining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._joining
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.broker.stop()
        for part in self.parts:
            for hook in part.on_stop:
                await hook()
        for engine in self.engines():
            await engine.dispose()

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: object) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def http_app(self, extra_routers: "tuple[APIRouter, ...]" = ()) -> "FastAPI":
        from fastapi import FastAPI
        from fastapi.openapi.utils import get_openapi
        from fastapi.staticfiles import StaticFiles
        from swagger_ui_bundle import swagger_ui_path

        from services.common.problems import install_problem_handler

        # The API viewer's assets come from Budkavle itself (an intranet may have no internet): see docs_router.
        app = FastAPI(title="Budkavle", lifespan=self._lifespan, docs_url=None, redoc_url=None)
        install_problem_handler(app)
        app.router.routes.extend(self.health_routes())
        app.include_router(docs_router())
        app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
        for part in self.parts:
            if part.http is not None:
                app.include_router(part.http)
        for router in extra_routers:
            app.include_router(router)
        schemas = {name: schema for part in self.parts for name, schema in part.openapi_schemas.items()}

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is None:
                doc = get_openapi(title=app.title, version="1", routes=app.routes,
                                  description="Budkavle's HTTP interface.")
                doc.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
                app.openapi_schema = doc
            return app.openapi_schema

        app.openapi = openapi  # type: ignore[method-assign]
        return app

    def health_app(self) -> Starlette:
        """Health, readiness and metrics alone, on Starlette without FastAPI: for a process whose services
        serve no API of their own (the sender running apart), which then carries no FastAPI in its memory."""
        assert all(part.http is None for part in self.parts), "a service with HTTP routes needs http_app"
        return Starlette(routes=self.health_routes(), lifespan=self._lifespan)

    def _consumers(self) -> str:
        joining = self._joining
        if joining is None or not joining.done():
            return "joining"
        failed = None if joining.cancelled() else joining.exception()
        return f"failed to join: {type(failed).__name__}" if failed else "ok"

    async def readiness(self) -> tuple[int, dict[str, str]]:
        """/readyz's status and checks: database and Kafka reachable, consumers not failed, each part's own."""
        checks = {"database": "ok", "kafka": "ok"}
        for engine in self.engines():
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except Exception as exc:  # readiness reports, it does not raise
                checks["database"] = f"unavailable: {type(exc).__name__}"
        if self._misconfigured:
            checks["kafka"] = f"misconfigured: {self._misconfigured}"
        elif not self._connected or not await self.broker.ping(timeout=2.0):
            checks["kafka"] = "unavailable"
        # Consumers still joining their groups do not make the platform unready: events are accepted,
        # kept, and consumed once the groups are assigned. Consumers that failed to join do.
        checks["consumers"] = self._consumers()
        for part in self.parts:
            if part.readiness is not None:
                checks[part.name] = await part.readiness()
        status = 503 if any(v not in ("ok", "joining") for v in checks.values()) else 200
        if self.topic_shortfalls:  # reported, not a reason to stop serving
            checks["topics"] = "; ".join(self.topic_shortfalls)
        return status, checks

    def health_routes(self) -> list[Route]:
        """/healthz, /readyz and /metrics, as plain Starlette routes (in no OpenAPI document)."""
        metrics_token = self.settings.metrics_token.encode()

        async def healthz(_request: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def readyz(_request: Request) -> Response:
            status, checks = await self.readiness()
            return JSONResponse(checks, status_code=status)

        async def metrics(request: Request) -> Response:
            """Behind its own bearer token (BUDKAVLE_METRICS_TOKEN), never open on a public port; not served
            at all without one."""
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            if not metrics_token:
                return Response(status_code=404)
            if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), metrics_token):
                return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

        return [Route(path, endpoint, methods=["GET"], include_in_schema=False)
                for path, endpoint in (("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics))]


DOCS_ASSETS = "/docs/assets"


def docs_router() -> "APIRouter":
    """`/docs`: the OpenAPI viewer (Swagger UI, from the pinned PyPI package swagger-ui-bundle), every asset
    served from here."""
    from fastapi import APIRouter
    from fastapi.openapi.docs import get_swagger_ui_html

    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def docs() -> Response:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Budkavle – API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png")

    return router


async def _supervise(name: str, task: BackgroundTask) -> None:
    """Keep a background loop alive: log and restart after an unexpected error."""
    while True:
        try:
            await task()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task failed; restarting", extra={"service": name})
            await asyncio.sleep(1.0)


def serve(app: Starlette, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_config=None, lifespan="on")
