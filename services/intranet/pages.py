"""The intranet's pages: news list, item page, status page and Atom feed (RFC 4287).

Public items, the status page and the feed are open to anyone. An item marked `internal` is for the people of
its programme: its page asks for sign-in, and lists, the status page and the feed show it only to a signed-in
person of that programme (`People.personal`: then `Cache-Control: private`, so that no shared cache keeps it).
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from contracts.events import PROGRAM_PATTERN
from programs import Program, Role
from programs.labels import TYPE_LABELS, sv_date
from programs.timeline import AreaUpdate, current_timeline
from services.common.people import Person
from services.common.problems import page_problem_responses
from services.common.signin import People
from services.intranet.store import IntranetStore, Item


def intranet_environment(templates_dir: Path, programs: Mapping[str, Program], public_url: str) -> Environment:
    env = Environment(loader=FileSystemLoader(str(templates_dir)),
                      autoescape=select_autoescape(["html", "j2", "atom"], default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["sv_date"] = sv_date
    env.globals.update(type_labels=TYPE_LABELS, programs=programs, base=public_url.rstrip("/"))
    return env


#: One programme's pages; unknown: 404.
ProgramQuery = Annotated[str | None, Query(pattern=PROGRAM_PATTERN, description="one programme's items only")]


def build_http(store: IntranetStore, programs: Mapping[str, Program], env: Environment, people: People) -> APIRouter:
    router = APIRouter(prefix="/intranet", tags=["intranet"])

    async def reader(request: Request) -> tuple[Person | None, frozenset[str]]:
        """Who asks, and the programmes whose internal items they may read."""
        session = await people.session(request)
        if session is None:
            return None, frozenset()
        return session.person, session.person.programs(Role.MEMBER)

    def page(request: Request, name: str, person: Person | None, **ctx: object) -> HTMLResponse:
        return people.personal(request, HTMLResponse(env.get_template(name).render(person=person, **ctx)))

    def check_program(program: str | None) -> None:
        if program is not None and program not in programs:
            raise HTTPException(404, f"unknown programme {program!r}")

    @router.get("/", response_class=HTMLResponse, responses=page_problem_responses(404, 422))
    async def news_list(request: Request, program: ProgramQuery = None) -> HTMLResponse:
        check_program(program)
        person, members = await reader(request)
        return page(request, "intranet/pages/list.html.j2", person, items=await store.latest(program, internal_of=members),
                    program=program)

    @router.get("/items/{event_id}", response_class=HTMLResponse, responses={
        303: {"description": "an internal item: sign in first (to /auth/login)"},
        403: {"description": "an internal item of a programme the signed-in person is not a member of",
              "content": {"text/html": {}}},
        **page_problem_responses(404)})
    async def item_page(event_id: str, request: Request) -> Response:
        item = await store.get(event_id)
        if item is None:
            raise HTTPException(404, "no such item")
        session = await people.session(request)
        if item.sensitivity != "public":
            allowed = people.check(request, session, item.program, Role.MEMBER)
            if isinstance(allowed, Response):
                return allowed
        return page(request, "intranet/pages/item.html.j2", session.person if session else None, item=item,
                    versions=await store.versions(event_id))

    @router.get("/status", response_class=HTMLResponse, responses=page_problem_responses(404, 422))
    async def status_page(request: Request, program: ProgramQuery = None) -> HTMLResponse:
        check_program(program)
        person, members = await reader(request)
        statuses = await store.latest(program, "status.update", limit=1, internal_of=members)
        golives = await store.latest(program, "golive.milestone", limit=500, internal_of=members)
        timelines = {code: current_timeline(p.baseline, _area_updates(golives, code))
                     for code, p in programs.items() if program in (None, code)}
        phases = {code: await phase_of(code, members) for code in timelines}
        decisions = [i for i in await store.latest(program, limit=200, internal_of=members)
                     if i.event_type in ("steering.decision", "design.decision")][:10]
        return page(request, "intranet/pages/status.html.j2", person, status=statuses[0] if statuses else None,
                    timelines=timelines, phases=phases, decisions=decisions, program=program)

    async def phase_of(code: str, members: frozenset[str]) -> str | None:
        """The programme's phase: the newest status update's, or else the plan's (the programme file)."""
        for item in await store.latest(code, "status.update", limit=20, internal_of=members):
            if item.phase:
                return item.phase
        baseline = programs[code].baseline
        return baseline.phase if baseline else None

    @router.get("/feed.atom", response_class=Response, responses={
        200: {"description": "an Atom feed (RFC 4287)", "content": {"application/atom+xml": {}}},
        **page_problem_responses(404, 422)})
    async def feed(request: Request, program: ProgramQuery = None) -> Response:
        check_program(program)
        _, members = await reader(request)
        entries = await store.latest(program, limit=50, internal_of=members)
        updated = max((i.updated for i in entries), default=datetime(2020, 1, 1, tzinfo=UTC))
        body = env.get_template("intranet/pages/feed.atom.j2").render(items=entries, updated=updated, program=program)
        return people.personal(request, Response(body, media_type="application/atom+xml; charset=utf-8"))

    return router


def _area_updates(golives: list[Item], program: str) -> list[AreaUpdate]:
    """The go-live items of one programme as updates of its timeline, oldest first."""
    return [AreaUpdate(area=i.golive.area, planned_date=i.golive.planned_date, state=i.golive.state, title=i.title,
                       wave=i.golive.wave, source=i.event_id)
            for i in reversed(golives) if i.program == program and i.golive is not None]
