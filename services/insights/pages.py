"""The insights pages: per programme, per event and per target group over time — reached, read,
understood, involved — as charts with the numbers in a table beside them, and a CSV export.

Who may look: in embedded mode anyone on this machine (loopback); otherwise a publisher token
(`BUDKAVLE_API_TOKENS`), sent as a bearer header or entered once on `/insights/login`, for that token's
programmes only.
"""

import asyncio
import csv
import io
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment

from contracts.channels import CHANNELS
from contracts.feedback import ANSWERS, QUESTION_TEXT
from programs import Program
from programs.labels import TYPE_LABELS, sv_date
from services.common.auth import TokenAuthority
from services.common.links import BadLink, LinkSigner
from services.common.problems import Problem, read_limited
from services.insights.charts import bar_chart
from services.insights.figures import MIN_ANSWERS, TOO_FEW, Row, by_event, by_group, by_month
from services.insights.store import InsightsStore

SESSION_COOKIE = "budkavle_insikter"
SESSION = "insights"
SESSION_TTL = timedelta(hours=8)
LOOPBACK = ("127.0.0.1", "::1")
#: Events on the programme page's chart (the table lists them all).
CHARTED_EVENTS = 12


class Viewers:
    """Which programmes the one asking may see (None: nobody has said who they are)."""

    def __init__(self, authority: TokenAuthority, signer: LinkSigner, programs: Mapping[str, Program],
                 open_on_loopback: bool) -> None:
        self.authority, self.signer, self.programs, self.open_on_loopback = authority, signer, programs, open_on_loopback

    def of(self, request: Request) -> frozenset[str] | None:
        if self.open_on_loopback and request.client is not None and request.client.host in LOOPBACK:
            return frozenset(self.programs)
        principal = self.authority.authenticate(request.headers.get("authorization"))
        if principal is not None:
            return principal.programs
        try:
            claims = self.signer.verify(SESSION, request.cookies.get(SESSION_COOKIE, ""))
        except BadLink:
            return None
        return frozenset(claims.get("programs", "").split("|")) & frozenset(self.programs)

    def session(self, token: str) -> str | None:
        principal = self.authority.authenticate(f"Bearer {token}")
        if principal is None:
            return None
        return self.signer.sign(SESSION, {"programs": "|".join(sorted(principal.programs))}, SESSION_TTL)


def build_insights_router(store: InsightsStore, viewers: Viewers, env: Environment, base: str) -> APIRouter:
    router = APIRouter(prefix="/insights", include_in_schema=False)
    programs = viewers.programs
    channels = tuple(CHANNELS)

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(f"insights/{name}").render(
            base=base, channels=channels, questions=QUESTION_TEXT, too_few=TOO_FEW, min_answers=MIN_ANSWERS,
            sv_date=sv_date, type_labels=TYPE_LABELS, **ctx), status_code=status)

    def allowed(request: Request, code: str) -> Program | Response:
        seen = viewers.of(request)
        if seen is None:
            return RedirectResponse(f"{base}/insights/login", status_code=303)
        program = programs.get(code)
        if program is None or code not in seen:
            return page("problem.html.j2", 404, heading="Programmet finns inte",
                        message="Det finns inget program med det namnet som du får se.")
        return program

    async def chart(rows: list[Row], description: str) -> str:
        return await asyncio.to_thread(bar_chart, rows, description) if rows else ""

    @router.get("/", response_class=HTMLResponse)
    async def index(request: Request) -> Response:
        seen = viewers.of(request)
        if seen is None:
            return RedirectResponse(f"{base}/insights/login", status_code=303)
        return page("index.html.j2", programs=[p for c, p in programs.items() if c in seen])

    @router.get("/login", response_class=HTMLResponse)
    async def login_page() -> HTMLResponse:
        return page("login.html.j2")

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        try:
            body = await read_limited(request, 4096)
        except Problem:
            return page("login.html.j2", 413, error="Formuläret är för stort.")
        token = parse_qs(body.decode("utf-8", errors="replace")).get("token", [""])[-1].strip()
        session = viewers.session(token) if token else None
        if session is None:
            return page("login.html.j2", 401, error="Nyckeln gäller inte. Kontrollera den och försök igen.")
        response = RedirectResponse(f"{base}/insights/", status_code=303)
        response.set_cookie(SESSION_COOKIE, session, max_age=int(SESSION_TTL.total_seconds()), httponly=True,
                            samesite="strict", secure=base.startswith("https://"))
        return response

    @router.get("/{code}/", response_class=HTMLResponse)
    async def program_page(code: str, request: Request) -> Response:
        program = allowed(request, code)
        if isinstance(program, Response):
            return program
        events, counts = await store.program_counts(code)
        rows = by_event(counts, [(e.event_id, e.title) for e in events])
        return page("program.html.j2", program=program, events=events, rows={r.key: r for r in rows},
                    chart=await chart(rows[:CHARTED_EVENTS], f"Uppföljning av de senaste nyheterna i {program.acronym}"),
                    groups=program.audiences)

    @router.get("/{code}/events/{event_id}", response_class=HTMLResponse)
    async def event_page(code: str, event_id: str, request: Request) -> Response:
        program = allowed(request, code)
        if isinstance(program, Response):
            return program
        item = await store.item(event_id)
        if item is None or item.program != code:
            return page("problem.html.j2", 404, heading="Nyheten finns inte", message="Det finns ingen sådan nyhet här.")
        rows = by_group(await store.counts([event_id]), event_id, {a.id: a.name for a in program.audiences})
        return page("event.html.j2", program=program, item=item, rows=rows,
                    chart=await chart(rows, f"Uppföljning per målgrupp av {item.title}"))

    @router.get("/{code}/groups/{audience_id}", response_class=HTMLResponse)
    async def group_page(code: str, audience_id: str, request: Request) -> Response:
        program = allowed(request, code)
        if isinstance(program, Response):
            return program
        audience = program.audience(audience_id)
        if audience is None:
            return page("problem.html.j2", 404, heading="Målgruppen finns inte",
                        message="Programmet har ingen sådan målgrupp.")
        events, counts = await store.program_counts(code)
        rows = by_month(counts, {e.event_id: e.published_at for e in events}, audience_id)
        return page("group.html.j2", program=program, audience=audience, rows=rows,
                    chart=await chart(rows, f"Uppföljning över tid för {audience.name}"))

    @router.get("/{code}/export.csv")
    async def export(code: str, request: Request) -> Response:
        program = allowed(request, code)
        if isinstance(program, Response):
            return program
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
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="uppfoljning-{code}.csv"'})

    return router


def _cell(value: object) -> object:
    """A text cell that a spreadsheet would take for a formula is quoted as text (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
