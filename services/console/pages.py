"""The console's pages. Each asks who is signed in (a person with the `reader` role or above in some
programme: readers see, editors also work) and shows what the gateway reports for that person."""

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from contracts.channels import CHANNELS
from contracts.events import PROGRAM_PATTERN
from programs import Program, Role
from programs.labels import TYPE_LABELS, sv_date
from services.common.signin import People
from services.console.gateway import Gateway, GatewayUnavailable

#: What the console calls each status an event can have, and each channel.
STATUS_LABELS = {"accepted": "Mottagen", "embargoed": "Under embargo", "scheduled": "Schemalagd",
                 "delivering": "Skickas", "delivered": "Levererad"}
CHANNEL_LABELS = {"email": "E-post", "teams": "Teams", "intranet": "Intranätet"}


def sv_instant(value: str) -> str:
    """An instant as the gateway reports it (ISO 8601), as a Swedish date."""
    return sv_date(datetime.fromisoformat(value))


def console_environment(templates_dir: Path, programs: Mapping[str, Program], base: str) -> Environment:
    env = Environment(loader=FileSystemLoader(str(templates_dir)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(sv_date=sv_date, sv_instant=sv_instant)
    env.globals.update(type_labels=TYPE_LABELS, status_labels=STATUS_LABELS, programs=programs, base=base,
                       channel_labels={name: CHANNEL_LABELS.get(name, name) for name in CHANNELS})
    return env


def build_http(gateway: Gateway, people: People, programs: Mapping[str, Program], env: Environment) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return people.personal(request, HTMLResponse(env.get_template(f"console/{name}").render(**ctx),
                                                     status_code=status))

    @router.get("/", response_class=HTMLResponse)
    async def events(request: Request,
                     program: Annotated[str | None, Query(pattern=PROGRAM_PATTERN)] = None) -> Response:
        """Per programme the person may read, the newest events with their status and delivery progress."""
        session = await people.require(request, program, Role.READER)
        if isinstance(session, Response):
            return session
        person = session.person
        readable = [code for code in programs if person.may(code, Role.READER) and program in (None, code)]
        try:
            found = await gateway.events(request.cookies[people.sessions.cookie], program)
        except GatewayUnavailable:
            return page(request, "unavailable.html.j2", 503, person=person)
        by_program = {code: [e for e in found if e["program"] == code] for code in readable}
        return page(request, "events.html.j2", person=person, by_program=by_program,
                    editor_of={code for code in readable if person.may(code, Role.EDITOR)})

    return router
