"""The intranet's pages: news list, item page, status page and Atom feed (RFC 4287)."""

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from programs import Program
from programs.labels import GOLIVE_STATUS, TYPE_LABELS, sv_date
from programs.timeline import AreaUpdate, current_timeline
from services.intranet.store import IntranetStore, Item


def build_http(store: IntranetStore, programs: Mapping[str, Program], templates_dir: Path,
               public_url: str) -> APIRouter:
    env = Environment(loader=FileSystemLoader(str(templates_dir)),
                      autoescape=select_autoescape(["html", "j2", "atom"], default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["sv_date"] = sv_date
    env.globals.update(type_labels=TYPE_LABELS, programs=programs, base=public_url.rstrip("/"))
    router = APIRouter(prefix="/intranet", tags=["intranet"])

    def page(name: str, **ctx: object) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**ctx))

    def check_program(program: str | None) -> None:
        if program is not None and program not in programs:
            raise HTTPException(404, f"unknown programme {program!r}")

    @router.get("/", response_class=HTMLResponse)
    async def news_list(program: str | None = Query(None)) -> HTMLResponse:
        check_program(program)
        return page("intranet/pages/list.html.j2", items=await store.latest(program), program=program)

    @router.get("/items/{event_id}", response_class=HTMLResponse)
    async def item_page(event_id: str) -> HTMLResponse:
        item = await store.get(event_id)
        if item is None:
            raise HTTPException(404, "no such item")
        return page("intranet/pages/item.html.j2", item=item)

    @router.get("/status", response_class=HTMLResponse)
    async def status_page(program: str | None = Query(None)) -> HTMLResponse:
        check_program(program)
        statuses = await store.latest(program, "status.update", limit=1)
        golives = await store.latest(program, "golive.milestone", limit=500)
        timelines = {code: current_timeline(p.baseline, _area_updates(golives, code))
                     for code, p in programs.items() if program in (None, code)}
        phases = {code: await phase_of(code) for code in timelines}
        decisions = [i for i in await store.latest(program, limit=200)
                     if i.event_type in ("steering.decision", "design.decision")][:10]
        return page("intranet/pages/status.html.j2", status=statuses[0] if statuses else None, timelines=timelines,
                    phases=phases, decisions=decisions, program=program)

    async def phase_of(code: str) -> str | None:
        """The programme's phase: the newest status update's, or else the plan's (the programme file)."""
        for item in await store.latest(code, "status.update", limit=20):
            if "Fas" in item.facts:
                return item.facts["Fas"]
        baseline = programs[code].baseline
        return baseline.phase if baseline else None

    @router.get("/feed.atom")
    async def feed(program: str | None = Query(None)) -> Response:
        check_program(program)
        entries = await store.latest(program, limit=50)
        updated = entries[0].published_at if entries else datetime(2020, 1, 1, tzinfo=UTC)
        body = env.get_template("intranet/pages/feed.atom.j2").render(items=entries, updated=updated, program=program)
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    return router


def _area_updates(golives: list[Item], program: str) -> list[AreaUpdate]:
    """The go-live items of one programme as updates of its timeline, oldest first."""
    states = {label: state for state, label in GOLIVE_STATUS.items()}
    return [AreaUpdate(area=i.facts["Område"], planned_date=i.timeline_date, state=states.get(i.facts.get("Status", ""),
                       "planned"), title=i.title, wave=i.facts.get("Våg"), source=i.event_id)
            for i in reversed(golives)
            if i.program == program and i.timeline_date is not None and "Område" in i.facts]
