"""The insights pages: per programme, per event and per target group over time — reached, read,
understood, involved — as charts with the numbers in a table beside them, and a CSV export.

Who may look: a signed-in person with the `reader` role (or above) in the programme, or a system's bearer
token given the `reader` role, for that token's programmes only.
"""

import asyncio
import csv
import io
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment

from contracts.channels import CHANNELS
from contracts.feedback import ANSWERS, QUESTION_TEXT
from programs import Program, Role
from programs.labels import TYPE_LABELS, sv_date
from services.common.auth import TokenAuthority, TokenRole
from services.common.people import Person
from services.common.signin import People
from services.insights.charts import bar_chart
from services.insights.figures import (
    MIN_ANSWERS,
    TOO_FEW,
    TOO_FEW_PEOPLE,
    Row,
    acknowledgements,
    by_event,
    by_group,
    by_month,
)
from services.insights.store import InsightsStore

#: Events on the programme page's chart (the table lists them all).
CHARTED_EVENTS = 12


class Viewers:
    """Which programmes the one asking may see: a token's (with the reader role), or a signed-in person's."""

    def __init__(self, authority: TokenAuthority, people: People, programs: Mapping[str, Program]) -> None:
        self.authority, self.people, self.programs = authority, people, programs

    async def of(self, request: Request) -> tuple[frozenset[str], Person | None] | Response:
        """The programmes, and the person if a person asks; or the way to sign in, or the no-access page."""
        principal = self.authority.authenticate(request.headers.get("authorization"))
        if principal is not None:
            if not principal.may(TokenRole.READER):
                return self.people.page("auth/no_access.html.j2", 403, person=None)
            return principal.programs & frozenset(self.programs), None
        session = await self.people.require(request, None, Role.READER)
        if isinstance(session, Response):
            return session
        return session.person.programs(Role.READER) & frozenset(self.programs), session.person


def build_insights_router(store: InsightsStore, viewers: Viewers, env: Environment, base: str) -> APIRouter:
    router = APIRouter(prefix="/insights", include_in_schema=False)
    programs = viewers.programs
    channels = tuple(CHANNELS)

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return viewers.people.personal(request, HTMLResponse(env.get_template(f"insights/{name}").render(
            base=base, channels=channels, questions=QUESTION_TEXT, too_few=TOO_FEW, min_answers=MIN_ANSWERS,
            sv_date=sv_date, type_labels=TYPE_LABELS, **ctx), status_code=status))

    async def allowed(request: Request, code: str) -> tuple[Program, Person | None] | Response:
        seen = await viewers.of(request)
        if isinstance(seen, Response):
            return seen
        program = programs.get(code)
        if program is None:
            return page(request, "problem.html.j2", 404, heading="Programmet finns inte",
                        message="Det finns inget program med det namnet.", person=seen[1])
        if code not in seen[0]:
            return viewers.people.page("auth/no_access.html.j2", 403, person=seen[1])
        return program, seen[1]

    async def chart(rows: list[Row], description: str) -> str:
        return await asyncio.to_thread(bar_chart, rows, description) if rows else ""

    @router.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        seen = await viewers.of(request)
        if isinstance(seen, Response):
            return seen
        return page(request, "index.html.j2", programs=[p for c, p in programs.items() if c in seen[0]],
                    person=seen[1])

    @router.get("/{code}/", response_class=HTMLResponse)
    async def program_page(code: str, request: Request) -> Response:
        found = await allowed(request, code)
        if isinstance(found, Response):
            return found
        program, person = found
        events, counts = await store.program_counts(code)
        rows = by_event(counts, [(e.event_id, e.title) for e in events])
        return page(request, "program.html.j2", program=program, person=person, events=events,
                    rows={r.key: r for r in rows},
                    chart=await chart(rows[:CHARTED_EVENTS], f"Uppföljning av de senaste nyheterna i {program.acronym}"),
                    groups=program.audiences, bounces=await store.bounces(code))

    @router.get("/{code}/events/{event_id}", response_class=HTMLResponse)
    async def event_page(code: str, event_id: str, request: Request) -> Response:
        found = await allowed(request, code)
        if isinstance(found, Response):
            return found
        program, person = found
        item = await store.item(event_id)
        if item is None or item.program != code:
            return page(request, "problem.html.j2", 404, heading="Nyheten finns inte",
                        message="Det finns ingen sådan nyhet här.", person=person)
        rows = by_group(await store.counts([event_id]), event_id, {a.id: a.name for a in program.audiences})
        acknowledged = (acknowledgements([r for r in rows if r.key != "intranet"],
                                         await store.acknowledged_by_day(event_id))
                        if item.acknowledge_by is not None else None)
        return page(request, "event.html.j2", program=program, person=person, item=item, rows=rows,
                    acknowledged=acknowledged, too_few_people=TOO_FEW_PEOPLE, briefed=await store.briefed(event_id),
                    chart=await chart(rows, f"Uppföljning per målgrupp av {item.title}"))

    @router.get("/{code}/groups/{audience_id}", response_class=HTMLResponse)
    async def group_page(code: str, audience_id: str, request: Request) -> Response:
        found = await allowed(request, code)
        if isinstance(found, Response):
            return found
        program, person = found
        audience = program.audience(audience_id)
        if audience is None:
            return page(request, "problem.html.j2", 404, heading="Målgruppen finns inte",
                        message="Programmet har ingen sådan målgrupp.", person=person)
        events, counts = await store.program_counts(code)
        rows = by_month(counts, {e.event_id: e.published_at for e in events}, audience_id)
        return page(request, "group.html.j2", program=program, person=person, audience=audience, rows=rows,
                    chart=await chart(rows, f"Uppföljning över tid för {audience.name}"))

    @router.get("/{code}/export.csv")
    async def export(code: str, request: Request) -> Response:
        found = await allowed(request, code)
        if isinstance(found, Response):
            return found
        program, _ = found
        events, counts = await store.program_counts(code)
        names = {a.id: a.name for a in program.audiences}
        out = io.StringIO()
        out.write("\ufeff")  # so that spreadsheet programs read the file as UTF-8
        writer = csv.writer(out)
        writer.writerow(["händelse_id", "publicerad", "typ", "rubrik", "målgrupp_id", "målgrupp",
                         *[f"{c}_{m}" for c in channels for m in ("avsedda", "levererade", "misslyckade")],
                         "lästa", *[f"{q}_{a}" for q, answers in ANSWERS.items() for a in answers], "svar"])
        for e in events:
            for row in by_group(counts, e.event_id, names):
                reach = row.channels(channels)
                cells: list[object] = [e.event_id, e.published_at.date().isoformat(), e.type, e.title, row.key, row.label]
                for c in channels:
                    r = reach.get(c)
                    cells += [r.targeted, r.sent, r.failed] if r else ["", "", ""]
                cells.append(row.reads)
                shown = {q: row.answers(q) for q in ANSWERS}
                cells += [(shown[q] or {}).get(a, "") for q, answers in ANSWERS.items() for a in answers]
                cells.append("" if all(shown.values()) else TOO_FEW)
                writer.writerow([_cell(c) for c in cells])
        return viewers.people.personal(request, Response(
            out.getvalue(), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="uppfoljning-{code}.csv"'}))

    return router


def _cell(value: object) -> object:
    """A text cell that a spreadsheet would take for a formula is quoted as text (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
