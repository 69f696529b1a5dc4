"""Composition root of the gateway: tokens, programmes, store, outbox relay, HTTP API, bus listeners."""

from datetime import datetime

import httpx
from fastapi import APIRouter
from pydantic import Field

from contracts.deliveries import DeliveryPlan
from contracts.directory import DirectoryApplied, DirectoryReport, UndeliverableAddress
from contracts.events import Event
from programs import load_programs
from services.common.auth import TokenAuthority, caller_of, parse_tokens
from services.common.ended_sessions import EndedSessions
from services.common.retention import retention_loop
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.common.signin import sessions_for
from services.gateway.accept import AcceptEvent
from services.gateway.api import (
    GroupCounts,
    MemberCounter,
    Planner,
    PlannerUnavailable,
    Previewer,
    PreviewRefused,
    build_http,
    event_schemas,
)
from services.gateway.approval import Approvals
from services.gateway.approval import build_http as approval_http
from services.gateway.audit import AuditRegister
from services.gateway.audit import build_http as audit_http
from services.gateway.dead_letters import DeadLetterStore
from services.gateway.dead_letters import build_http as dead_letters_http
from services.gateway.directory import DirectoryApplier, DirectoryChecker, DirectoryUnavailable, UndeliverableLister
from services.gateway.directory import build_http as directory_http
from services.gateway.drafts import DraftStore
from services.gateway.drafts import build_http as drafts_http
from services.gateway.handlers import build_router
from services.gateway.relay import OutboxRelay
from services.gateway.store import ENDED_SESSIONS, MIGRATIONS, GatewayStore


class GatewaySettings(CommonSettings):
    api_tokens: str = Field(default="", alias="BUDKAVLE_API_TOKENS")
    tailor_url: str = Field(default="", alias="BUDKAVLE_TAILOR_URL")


def http_planner(tailor_url: str) -> Planner:
    """Dry runs ask the tailor, which owns the directory, over HTTP (production topology)."""

    async def plan(event: Event, authorization: str) -> DeliveryPlan:
        try:
            async with httpx.AsyncClient(base_url=tailor_url, timeout=30.0) as client:
                response = await client.post("/internal/v1/plans", content=event.model_dump_json(),
                                             headers={"content-type": "application/json",
                                                      "authorization": authorization})
                response.raise_for_status()
        except httpx.HTTPError as exc:
            raise PlannerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return DeliveryPlan.model_validate_json(response.content)

    return plan


def http_previewer(tailor_url: str) -> Previewer:
    """Previews are rendered by the tailor, which owns the content, over HTTP (production topology)."""

    async def preview(event: Event, audience: str, channel: str, authorization: str) -> dict[str, str]:
        try:
            async with httpx.AsyncClient(base_url=tailor_url, timeout=30.0) as client:
                response = await client.post("/internal/v1/previews", content=event.model_dump_json(),
                                             params={"audience": audience, "channel": channel},
                                             headers={"content-type": "application/json",
                                                      "authorization": authorization})
        except httpx.HTTPError as exc:
            raise PlannerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 422:
            raise PreviewRefused(str(response.json().get("detail", "refused")))
        if response.status_code != 200:
            raise PlannerUnavailable(f"the tailor answered {response.status_code}")
        parts = response.json()
        return {str(k): str(v) for k, v in parts.items()}

    return preview


def http_counter(tailor_url: str) -> MemberCounter:
    """Member counts come from the tailor, which owns the directory, over HTTP (production topology)."""

    async def count(program: str, authorization: str) -> GroupCounts:
        try:
            async with httpx.AsyncClient(base_url=tailor_url, timeout=30.0) as client:
                response = await client.get(f"/internal/v1/programs/{program}/members",
                                            headers={"authorization": authorization})
                response.raise_for_status()
        except httpx.HTTPError as exc:
            raise PlannerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        body = response.json()
        if "members" not in body:  # a tailor from before undeliverable addresses were counted
            return GroupCounts({str(k): int(v) for k, v in body.items()})
        return GroupCounts({str(k): int(v) for k, v in body["members"].items()},
                           {str(k): int(v) for k, v in body.get("undeliverable", {}).items()})

    return count


def http_directory(tailor_url: str) -> tuple[DirectoryChecker, DirectoryApplier]:
    """Directory files are checked and applied by the tailor, which owns the directory (production topology)."""

    async def call(path: str, authorization: str, content: bytes = b"") -> httpx.Response:
        try:
            async with httpx.AsyncClient(base_url=tailor_url, timeout=120.0) as client:
                return await client.post(path, content=content, headers={"authorization": authorization,
                                                                          "content-type": "text/csv"})
        except httpx.HTTPError as exc:
            raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def check(text: str, _author: str, authorization: str) -> DirectoryReport:
        response = await call("/internal/v1/directory/imports", authorization, text.encode())
        if response.status_code != 200:
            raise DirectoryUnavailable(f"the tailor answered {response.status_code}")
        return DirectoryReport.model_validate_json(response.content)

    async def apply(import_id: str, authorization: str) -> DirectoryApplied | None:
        response = await call(f"/internal/v1/directory/imports/{import_id}/apply", authorization)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DirectoryUnavailable(f"the tailor answered {response.status_code}")
        return DirectoryApplied.model_validate_json(response.content)

    return check, apply


def http_undeliverable(tailor_url: str) -> UndeliverableLister:
    """The undeliverable addresses come from the tailor, which owns the directory (production topology)."""

    async def listing(authorization: str) -> list[UndeliverableAddress]:
        try:
            async with httpx.AsyncClient(base_url=tailor_url, timeout=30.0) as client:
                response = await client.get("/internal/v1/directory/undeliverable",
                                            headers={"authorization": authorization})
        except httpx.HTTPError as exc:
            raise DirectoryUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise DirectoryUnavailable(f"the tailor answered {response.status_code}")
        return [UndeliverableAddress.model_validate(a) for a in response.json()]

    return listing


def no_directory() -> tuple[DirectoryChecker, DirectoryApplier]:
    """A gateway given its planner in process but no directory desk (a test's): the directory cannot be asked."""

    async def check(_text: str, _author: str, _authorization: str) -> DirectoryReport:
        raise DirectoryUnavailable("no tailor is connected for the directory")

    async def apply(_import_id: str, _authorization: str) -> DirectoryApplied | None:
        raise DirectoryUnavailable("no tailor is connected for the directory")

    return check, apply


def build(settings: GatewaySettings, runtime: Runtime, planner: Planner | None = None,
          previewer: Previewer | None = None, counter: MemberCounter | None = None,
          directory: tuple[DirectoryChecker, DirectoryApplier] | None = None, embedded: bool = False,
          undeliverable: UndeliverableLister | None = None) -> ServiceParts:
    """People act through the gateway (as themselves, from the console) where their sessions can be checked:
    with BUDKAVLE_SESSION_KEY, or in embedded mode (the key kept in the data directory)."""
    if not settings.api_tokens:
        raise SystemExit("BUDKAVLE_API_TOKENS is not set (e.g. s3cret-token=fvm)")
    authority = TokenAuthority(parse_tokens(settings.api_tokens))
    programs = load_programs(settings.programs_dir)
    if planner is None:
        if not settings.tailor_url:
            raise SystemExit("BUDKAVLE_TAILOR_URL is not set: the gateway needs the tailor for dry runs")
        planner = http_planner(settings.tailor_url)
        previewer = previewer or http_previewer(settings.tailor_url)
        counter = counter or http_counter(settings.tailor_url)
        directory = directory or http_directory(settings.tailor_url)
        undeliverable = undeliverable or http_undeliverable(settings.tailor_url)
    store = GatewayStore(runtime.engine)
    letters = DeadLetterStore(runtime.engine)
    relay = OutboxRelay(store, runtime.bus)

    async def purge(before: datetime) -> int:
        return await store.forget_failed(before) + await letters.purge(before)

    http = APIRouter()
    ended = EndedSessions(runtime.engine, ENDED_SESSIONS)
    sessions = sessions_for(settings, embedded, ended) if settings.session_key or embedded else None
    approvals = Approvals(store, programs, relay.notify)
    http.include_router(build_http(store, letters, authority, programs, planner, AcceptEvent(store, relay.notify),
                                   settings.resolved_public_url(), previewer, sessions, counter, approvals))
    http.include_router(approval_http(approvals, store, programs, planner, PlannerUnavailable,
                                      caller_of(authority, sessions), settings.resolved_public_url()))
    register = AuditRegister(runtime.engine)
    http.include_router(dead_letters_http(letters, authority, runtime.bus, sessions, register))
    http.include_router(audit_http(register, programs, caller_of(authority, sessions)))
    http.include_router(drafts_http(DraftStore(runtime.engine), caller_of(authority, sessions)))
    http.include_router(directory_http(programs, caller_of(authority, sessions), *(directory or no_directory()),
                                       register, undeliverable))
    return ServiceParts(
        name="gateway",
        router=build_router(store, letters, runtime.bus, ended),
        http=http,
        openapi_schemas=event_schemas(),
        migrations=MIGRATIONS,
        on_start=(relay.requeue_unplanned,),
        background=(relay.run, retention_loop("gateway", purge, settings.retention_days)),
    )
