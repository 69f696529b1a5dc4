"""Composition root of the tailor: settings, programmes, templates, store, router."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError

from contracts.directory import MAX_DIRECTORY_BYTES, UndeliverableAddress
from contracts.events import MAX_EVENT_BYTES, Event, parse_event
from programs import load_programs
from services.common.auth import Principal, TokenAuthority, TokenRole, author_of, caller_of, parse_tokens
from services.common.bus import DependencyUnavailable
from services.common.links import LinkSigner, link_key
from services.common.problems import Problem, field_problems, read_limited
from services.common.retention import retention_loop
from services.common.runtime import Runtime, ServiceParts
from services.common.sessions import Sessions
from services.common.settings import CommonSettings
from services.common.signin import sessions_for
from services.common.subscriptions import Unprocessable
from services.tailor.channels import COMPOSERS, check_templates
from services.tailor.handlers import build_router
from services.tailor.imports import UnknownImport
from services.tailor.rendering import Renderer
from services.tailor.samples import sample_events
from services.tailor.service import Tailor
from services.tailor.store import MIGRATIONS, TailorStore


class TailorSettings(CommonSettings):
    #: The publishers' tokens: with them the tailor answers the gateway's dry runs over HTTP, for the
    #: caller's programmes only. Unset (the embedded mode, where the gateway plans in process): no HTTP API.
    api_tokens: str = Field(default="", alias="BUDKAVLE_API_TOKENS")
    #: Signs the follow-up links of what a whole group sees (Teams cards, intranet items).
    link_key: str = Field(default="", alias="BUDKAVLE_LINK_KEY")
    #: Soft bounces (a full mailbox, a server down) after which an address counts as undeliverable.
    soft_bounce_limit: int = Field(default=3, alias="BUDKAVLE_SOFT_BOUNCE_LIMIT", ge=1, le=50)


def build(settings: TailorSettings, runtime: Runtime, embedded: bool = False) -> tuple[ServiceParts, Tailor]:
    programs = load_programs(settings.programs_dir)
    renderer = Renderer(settings.templates_dir, settings.resolved_public_url(),
                        LinkSigner(link_key(settings.link_key, settings.data_dir, embedded)))
    for program in programs.values():
        check_templates(renderer, program, sample_events(program.program), COMPOSERS)
    tailor = Tailor(programs, renderer, TailorStore(runtime.engine), runtime.bus,
                    soft_bounce_limit=settings.soft_bounce_limit)
    # A person's dry run reaches the tailor through the gateway with their session, which the gateway checked
    # against sign-outs and the form's CSRF token; here its signature and age are checked again.
    sessions = sessions_for(settings, False, None) if settings.session_key else None
    http = (build_http(tailor, TokenAuthority(parse_tokens(settings.api_tokens)), sessions)
            if settings.api_tokens else None)
    parts = ServiceParts(name="tailor", router=build_router(tailor, runtime.bus), http=http,
                         migrations=MIGRATIONS,
                         background=(tailor.recover, retention_loop("tailor", tailor.store.purge, settings.retention_days)))
    return parts, tailor


def build_http(tailor: Tailor, authority: TokenAuthority, sessions: Sessions | None = None) -> APIRouter:
    """The tailor's internal API: the gateway's dry runs ask it for a plan (it owns the directory), with the
    publisher's own token or the signed-in person's session, for the programmes the caller may publish for."""
    router = APIRouter(prefix="/internal/v1", include_in_schema=False)
    Caller = Annotated[Principal, Depends(caller_of(authority, sessions, writes_need_csrf=False))]

    async def event_of(request: Request, caller: Principal) -> Event:
        """The request's event, for a programme the caller's token may publish for."""
        body = await read_limited(request, MAX_EVENT_BYTES)
        try:
            event = parse_event(body)
        except ValidationError as exc:
            raise Problem(422, "invalid event", field_problems(exc)) from exc
        if not caller.may_in(event.program, TokenRole.PUBLISHER):
            raise Problem(403, f"token may not publish for programme {event.program!r}")
        return event

    @router.post("/plans")
    async def plan(request: Request, caller: Caller) -> Response:
        event = await event_of(request, caller)
        try:
            plan = await tailor.plan(event)
        except Unprocessable as exc:
            raise Problem(422, str(exc)) from exc
        except DependencyUnavailable as exc:  # an amendment's original not planned here yet
            raise Problem(503, str(exc)) from exc
        return Response(plan.contract.model_dump_json(), media_type="application/json")

    def admin_of_all(caller: Principal) -> None:
        """The directory serves every programme: only an admin of every one may replace it."""
        if not caller.may_in_all(tailor.programs, TokenRole.ADMIN):
            raise Problem(403, "only an admin of every programme may import the directory")

    @router.post("/directory/imports")
    async def check_directory(request: Request, caller: Caller) -> Response:
        admin_of_all(caller)
        try:
            text = (await read_limited(request, MAX_DIRECTORY_BYTES)).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Problem(422, f"the file is not UTF-8 text (byte {exc.start})") from exc
        report = await tailor.imports.check(text, author_of(caller))
        return Response(report.model_dump_json(), media_type="application/json")

    @router.post("/directory/imports/{import_id}/apply")
    async def apply_directory(import_id: str, caller: Caller) -> Response:
        admin_of_all(caller)
        try:
            applied = await tailor.imports.apply(import_id)
        except UnknownImport as exc:
            raise Problem(404, "no checked directory file of that id is waiting") from exc
        return Response(applied.model_dump_json(), media_type="application/json")

    @router.get("/directory/undeliverable")
    async def undeliverable(caller: Caller) -> Response:
        admin_of_all(caller)
        return JSONResponse([UndeliverableAddress(id=i, name=n, email=e, reason=r).model_dump()
                             for i, n, e, r in await tailor.bounces.listing()])

    @router.get("/programs/{program}/members")
    async def members(program: str, caller: Caller) -> Response:
        if program not in caller.programs or program not in tailor.programs:
            raise Problem(403, f"may not read programme {program!r}")
        return JSONResponse({"members": await tailor.members(program),
                             "undeliverable": await tailor.undeliverable(program)})

    @router.post("/previews")
    async def preview(request: Request, caller: Caller, audience: str, channel: str) -> Response:
        event = await event_of(request, caller)
        try:
            parts = tailor.preview(event, audience, channel)
        except (Unprocessable, ValueError) as exc:
            raise Problem(422, str(exc)) from exc
        return JSONResponse(parts)

    return router
