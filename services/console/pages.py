"""The console's pages. Each asks who is signed in (a person with the `reader` role or above in some
programme: readers see, editors also work) and shows what the gateway reports for that person."""

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from contracts.channels import CHANNELS
from contracts.events import PROGRAM_PATTERN
from programs import Program, Role
from programs.labels import TYPE_LABELS, sv_date
from services.common.signin import People
from services.console.gateway import Gateway, GatewayUnavailable

log = logging.getLogger(__name__)

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


#: The browser assets the pages load, each from its pinned npm package, served by the console itself.
ASSETS = {"htmx.min.js": Path("htmx.org/dist/htmx.min.js")}


def build_http(gateway: Gateway, people: People, programs: Mapping[str, Program], env: Environment,
               assets_dir: Path) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)
    missing = [str(assets_dir / path) for path in ASSETS.values() if not (assets_dir / path).is_file()]
    if missing:
        log.warning("the console's browser assets are missing (run `npm ci`; make run does): its pages work, "
                    "but do not update themselves", extra={"missing": missing})

    @router.get("/assets/{name}")
    async def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, "no such asset")
        path = assets_dir / ASSETS[name]
        if not path.is_file():
            raise HTTPException(503, f"{path} is missing: run `npm ci`")
        return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"})

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return people.personal(request, HTMLResponse(env.get_template(f"console/{name}").render(**ctx),
                                                     status_code=status))

    @router.get("/", response_class=HTMLResponse)
    async def events(request: Request,
                     program: Annotated[str | None, Query(pattern=PROGRAM_PATTERN)] = None) -> Response:
        """Per programme the person may read, the newest events with their status and delivery progress."""
        live = request.headers.get("HX-Request") == "true"
        session = await people.require(request, program, Role.READER)
        if isinstance(session, Response):
            # The page asking again on its own: take the whole page to sign-in, not a part of it.
            return Response(headers={"HX-Redirect": people.login_url(request)}) if live else session
        person = session.person
        readable = [code for code in programs if person.may(code, Role.READER) and program in (None, code)]
        try:
            found = await gateway.events(request.cookies[people.sessions.cookie], program)
        except GatewayUnavailable:
            return page(request, "unavailable.html.j2", 503, person=person)
        by_program = {code: [e for e in found if e["program"] == code] for code in readable}
        ctx: dict[str, Any] = {"person": person, "by_program": by_program, "program": program,
               "editor_of": {code for code in readable if person.may(code, Role.EDITOR)}}
        if live:
            # htmx asks again every few seconds for the events alone, so that the progress moves as mails go out.
            # Its asking is not the person's doing: it does not keep their session from ending when idle.
            return HTMLResponse(env.get_template("console/events_live.html.j2").render(**ctx),
                                headers={"Cache-Control": "private, no-store"})
        return page(request, "events.html.j2", **ctx)

    return router
