"""Composition root of the tailor: settings, programmes, templates, store, router."""

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import ValidationError

from contracts.events import parse_event
from programs import load_programs
from services.common.bus import validation_reason
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.tailor.channels import COMPOSERS, check_templates
from services.tailor.handlers import build_router
from services.tailor.planning import UnknownAudienceError
from services.tailor.rendering import Renderer
from services.tailor.samples import sample_events
from services.tailor.service import Tailor, UnprocessableEvent
from services.tailor.store import MIGRATIONS, TailorStore


class TailorSettings(CommonSettings):
    pass


def build(settings: TailorSettings, runtime: Runtime) -> tuple[ServiceParts, Tailor]:
    programs = load_programs(settings.programs_dir)
    renderer = Renderer(settings.templates_dir, settings.resolved_public_url())
    for program in programs.values():
        check_templates(renderer, program, sample_events(program.program), COMPOSERS)
    tailor = Tailor(programs, renderer, TailorStore(runtime.engine), runtime.bus)
    parts = ServiceParts(name="tailor", router=build_router(tailor, runtime.bus), http=build_http(tailor),
                         migrations=MIGRATIONS, background=(tailor.run_embargo_releases,))
    return parts, tailor


def build_http(tailor: Tailor) -> APIRouter:
    """The tailor's internal API: the gateway's dry runs ask it for a plan (it owns the directory)."""
    router = APIRouter(prefix="/internal/v1", include_in_schema=False)

    @router.post("/plans")
    async def plan(request: Request) -> Response:
        try:
            event = parse_event(await request.body())
        except ValidationError as exc:
            raise HTTPException(422, validation_reason(exc)) from exc
        try:
            plan = await tailor.plan(event)
        except (UnprocessableEvent, UnknownAudienceError) as exc:
            raise HTTPException(422, str(exc)) from exc
        return Response(plan.contract.model_dump_json(), media_type="application/json")

    return router
