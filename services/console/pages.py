"""The console's pages. Each asks who is signed in (a person with the `reader` role or above in some
programme: readers see, editors also work) and shows what the gateway reports for that person."""

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import UploadFile as StarletteUpload

from contracts.channels import CHANNELS
from contracts.directory import MAX_DIRECTORY_BYTES
from contracts.events import AMENDMENTS, EVENT_TYPES, PROGRAM_PATTERN, parse_event
from programs import Program, Role
from programs.labels import TYPE_LABELS, sv_date
from services.common.problems import read_form, read_form_pairs
from services.common.sessions import Session
from services.common.signin import People
from services.console.forms import (
    STOCKHOLM,
    Fields,
    apply_action,
    changed_fields,
    errors_of,
    event_of,
    field_of,
    fields_from,
    fields_of,
    form_of,
    payload_inputs,
    rows_of,
)
from services.console.gateway import As, Gateway, GatewayUnavailable, Refused
from services.console.wording import sv_approval_reason, sv_directory, sv_reason, sv_refusal, sv_rule

log = logging.getLogger(__name__)

#: What the console calls each status an event can have, and each channel.
ACTION_LABELS = {"publish": "Publicerade", "schedule": "Schemalade", "redrive": "Skickade ett dött brev igen",
                 "directory_import": "Importerade katalogen", "submit": "Skickade för godkännande",
                 "change": "Ändrade och skickade för godkännande igen", "approve": "Godkände", "reject": "Avslog",
                 "cancel": "Stoppade"}
STATUS_LABELS = {"awaiting_approval": "Väntar på godkännande", "approval_expired": "Godkännandet har gått ut",
                 "rejected": "Avslagen", "cancelled": "Stoppad", "accepted": "Mottagen", "embargoed": "Under embargo",
                 "scheduled": "Schemalagd", "delivering": "Skickas", "delivered": "Levererad"}
#: What an event's history says of each act on it while it was held.
DECISION_LABELS = {"submit": "Skickat för godkännande", "change": "Ändrat och inskickat igen", "approve": "Godkänt",
                   "reject": "Avslaget", "cancel": "Stoppat"}
#: The statuses of an event that is held (nothing of it sent yet): it can still be cancelled.
HELD = ("awaiting_approval", "approval_expired", "rejected", "embargoed", "scheduled")
CHANNEL_LABELS = {"email": "E-post", "teams": "Teams", "intranet": "Intranätet"}


def sv_instant(value: str) -> str:
    """An instant as the gateway reports it (ISO 8601), as a Swedish date."""
    return sv_date(datetime.fromisoformat(value))


def console_environment(templates_dir: Path, programs: Mapping[str, Program], base: str) -> Environment:
    env = Environment(loader=FileSystemLoader(str(templates_dir)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(sv_date=sv_date, sv_instant=sv_instant, sv_time=lambda v: sv_time(v), sv_reason=sv_reason,
                       sv_rule=sv_rule, sv_directory=sv_directory, sv_approval_reason=sv_approval_reason,
                       channel_label=lambda name: CHANNEL_LABELS.get(name, name))
    env.globals.update(roles=Role, type_labels=TYPE_LABELS, action_labels=ACTION_LABELS, status_labels=STATUS_LABELS,
                       programs=programs, base=base, channel_labels={name: CHANNEL_LABELS.get(name, name) for name in CHANNELS})
    return env


#: The browser assets the pages load, each from its pinned npm package, served by the console itself; and the
#: console's own script, from its templates.
ASSETS = {"htmx.min.js": Path("htmx.org/dist/htmx.min.js"),
          "adaptivecards.min.js": Path("adaptivecards/dist/adaptivecards.min.js")}
OWN_ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
#: A compose form is at most an event (256 KiB) and the form's own names.
MAX_FORM = 320 * 1024
AUDIENCE_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
CHANNEL_ID = r"^[a-z][a-z0-9_-]{0,31}$"
#: Parts of a preview, in the order the page shows them, and what each is called.
PART_LABELS = {".html": "Som HTML", ".txt": "Som text", ".json": "Teams-kortet"}


def build_http(gateway: Gateway, people: People, programs: Mapping[str, Program], env: Environment,
               assets_dir: Path, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False)
    own_dir = Path(env.loader.searchpath[0]) / "console" / "assets"  # type: ignore[union-attr]
    missing = [str(assets_dir / path) for path in ASSETS.values() if not (assets_dir / path).is_file()]
    if missing:
        log.warning("the console's browser assets are missing (run `npm ci`; make run does): its pages work, "
                    "but do not update themselves or show Teams cards", extra={"missing": missing})

    @router.get("/assets/{name}")
    async def asset(name: str) -> Response:
        headers = {"Cache-Control": "public, max-age=3600"}
        if name in OWN_ASSETS:
            return FileResponse(own_dir / name, media_type=OWN_ASSETS[name], headers=headers)
        if name not in ASSETS:
            raise HTTPException(404, "no such asset")
        path = assets_dir / ASSETS[name]
        if not path.is_file():
            raise HTTPException(503, f"{path} is missing: run `npm ci`")
        return FileResponse(path, media_type="text/javascript", headers=headers)

    def acting(request: Request, csrf: str = "") -> As:
        """Who the console acts for on this request: its session (already checked), and the form's CSRF token."""
        return As(request.cookies[people.sessions.cookie], csrf)

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return people.personal(request, HTMLResponse(env.get_template(f"console/{name}").render(**ctx),
                                                     status_code=status))

    def fragment(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        """A part of a page that htmx asks for and puts in place; not the person's doing, so the session's idle
        limit is not moved by it."""
        return HTMLResponse(env.get_template(f"console/{name}").render(**ctx), status_code=status,
                            headers={"Cache-Control": "private, no-store"})

    def unavailable(request: Request, person: Any) -> HTMLResponse:
        return page(request, "unavailable.html.j2", 503, person=person)

    def refused(request: Request, person: Any, problem: Refused) -> HTMLResponse:
        return page(request, "refused.html.j2", problem.status, person=person,
                    message=sv_refusal(problem.status, problem.detail))

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
            found = await gateway.events(acting(request), program)
        except GatewayUnavailable:
            return unavailable(request, person)
        except Refused as problem:
            return refused(request, person, problem)
        by_program = {code: [e for e in found if e["program"] == code] for code in readable}
        ctx: dict[str, Any] = {"person": person, "by_program": by_program, "program": program,
                               "editor_of": {code for code in readable if person.may(code, Role.EDITOR)},
                               "admin_of": {code for code in readable if person.may(code, Role.ADMIN)}}
        if live:
            # htmx asks again every few seconds for the events alone, so that the progress moves as mails go out.
            return fragment("events_live.html.j2", **ctx)
        return page(request, "events.html.j2", **ctx)

    @router.get("/new", response_class=HTMLResponse)
    async def choose(request: Request) -> Response:
        """What a new message can be, per programme the person edits for, and the drafts kept there."""
        session = await people.require(request, None, Role.EDITOR)
        if isinstance(session, Response):
            return session
        editable = [code for code in programs if session.person.may(code, Role.EDITOR)]
        try:
            drafts = await gateway.drafts(acting(request))
        except GatewayUnavailable:
            return unavailable(request, session.person)
        return page(request, "new.html.j2", person=session.person, editable=editable, drafts=drafts,
                    types=[t for t in EVENT_TYPES if t not in AMENDMENTS])  # amendments start from an event

    async def compose_context(request: Request, session: Session, event_type: str, program: str,
                              fields: Fields, **extra: Any) -> dict[str, Any]:
        inputs = form_of(event_type)
        who = acting(request)
        groups = (await gateway.audiences(who, program))["audiences"]
        return {"person": session.person, "event_type": event_type, "program": program, "inputs": inputs,
                "fields": fields, "groups": groups, "rows_of": rows_of, "csrf": people.sessions.csrf(session),
                "errors": {}, "notice": "", "problem": "", "draft": None, **extra}

    def editor_session(request: Request, session: Session | None, program: str) -> Session | Response:
        return people.check(request, session, program, Role.EDITOR)

    def known_type(event_type: str) -> None:
        """A type a new message can be (a correction or retraction starts from the event it amends)."""
        if event_type not in EVENT_TYPES or event_type in AMENDMENTS:
            raise HTTPException(404, f"no event type {event_type!r} to compose")

    @router.get("/new/{event_type}", response_class=HTMLResponse)
    async def compose(request: Request, event_type: str,
                      program: Annotated[str, Query(pattern=PROGRAM_PATTERN)],
                      draft: Annotated[UUID | None, Query()] = None,
                      saved: Annotated[bool, Query()] = False) -> Response:
        """A new message of `event_type` for `program`, or a kept draft of one."""
        known_type(event_type)
        session = editor_session(request, await people.session(request), program)
        if isinstance(session, Response):
            return session
        try:
            kept = None
            fields: Fields = {"importance": "awareness", "sensitivity": "internal"}
            if draft is not None:
                kept = await gateway.draft(acting(request), str(draft))
                if (kept["program"], kept["type"]) != (program, event_type):
                    raise Refused(404, "no such draft")
                fields = kept["fields"]
            ctx = await compose_context(request, session, event_type, program, fields, draft=kept,
                                        notice="Utkastet är sparat." if saved else "")
        except GatewayUnavailable:
            return unavailable(request, session.person)
        except Refused as problem:
            return refused(request, session.person, problem)
        return page(request, "compose.html.j2", **ctx)

    async def posted(request: Request, event_type: str) -> tuple[Session | Response, str, Fields, dict[str, str]]:
        """The form as posted: the person, if they may edit for its programme, its values, and its own fields
        (programme, draft, CSRF token, the button pressed)."""
        known_type(event_type)
        pairs = await read_form_pairs(request, MAX_FORM)
        own = {k: v for k, v in pairs if k in ("program", "draft_id", "draft_version", "csrf", "action")}
        program = own.get("program", "")
        if program not in programs:
            raise HTTPException(422, "the form names no programme of this platform")
        session = editor_session(request, await people.session(request), program)
        return session, program, fields_of(pairs, form_of(event_type)), own

    @router.post("/new/{event_type}", response_class=HTMLResponse)
    async def act(request: Request, event_type: str) -> Response:
        """The form's buttons: save as draft, publish, and the rows' add, remove, up and down."""
        session, program, fields, own = await posted(request, event_type)
        if isinstance(session, Response):
            return session
        person = session.person
        who = acting(request, own.get("csrf", ""))
        draft_id = own.get("draft_id") or None
        version = int(own["draft_version"]) if own.get("draft_version", "").isdigit() else 1
        action = own.get("action", "")
        inputs = form_of(event_type)
        try:
            draft = {"draft_id": draft_id, "version": version} if draft_id else None
            if not people.sessions.csrf_ok(session, who.csrf):
                ctx = await compose_context(request, session, event_type, program, fields, draft=draft,
                                            problem=sv_refusal(403, "CSRF"))
                return page(request, "compose.html.j2", 403, **ctx)
            if action == "save":
                try:
                    kept = await gateway.save_draft(who, draft_id, version, program, event_type, fields)
                except Refused as problem:
                    if problem.status != 409:
                        raise
                    newer = await gateway.draft(who, draft_id or "")
                    ctx = await compose_context(
                        request, session, event_type, program, fields, draft=draft, newer=newer,
                        problem=f"Utkastet ändrades av {newer['updated_by']} {sv_time(newer['updated_at'])}, efter "
                                f"att du öppnade det. Dina ändringar är inte sparade; de står kvar nedan.")
                    return page(request, "compose.html.j2", 409, **ctx)
                return RedirectResponse(f"{people.base}/console/new/{event_type}?program={program}"
                                        f"&draft={kept['draft_id']}&saved=true", status_code=303)
            if action == "publish":
                event = event_of(event_type, program, person.sub, fields, inputs, clock())
                errors = errors_of(event, inputs)
                if not errors:
                    try:
                        accepted = await gateway.publish(who, event)
                    except Refused as problem:
                        if problem.status != 422:
                            raise
                        errors = {field_of(e["path"], inputs): e["reason"] for e in problem.errors}
                if errors:
                    ctx = await compose_context(request, session, event_type, program, fields, draft=draft,
                                                errors=errors, problem="Meddelandet skickades inte: rätta det som "
                                                                       "står vid fälten.")
                    return page(request, "compose.html.j2", 422, **ctx)
                if draft_id:
                    with contextlib.suppress(Refused):  # published all the same; the draft stays if it changed
                        await gateway.remove_draft(who, draft_id, version)
                return RedirectResponse(f"{people.base}/console/events/{accepted['event_id']}?published=true",
                                        status_code=303)
            ctx = await compose_context(request, session, event_type, program, apply_action(fields, inputs, action),
                                        draft=draft)
            return page(request, "compose.html.j2", **ctx)
        except GatewayUnavailable:
            return unavailable(request, person)
        except Refused as problem:
            ctx = await compose_context(request, session, event_type, program, fields, draft=None,
                                        problem=sv_refusal(problem.status, problem.detail))
            return page(request, "compose.html.j2", problem.status, **ctx)

    @router.post("/new/{event_type}/plan", response_class=HTMLResponse)
    async def live_plan(request: Request, event_type: str) -> Response:
        """The plan of the message as the form holds it now, asked by the page as the communicator types."""
        session, program, fields, own = await posted(request, event_type)
        if isinstance(session, Response):
            return Response(headers={"HX-Redirect": people.login_url(request)})
        inputs = form_of(event_type)
        event = event_of(event_type, program, session.person.sub, fields, inputs, clock())
        errors = errors_of(event, inputs)
        labels = {i.name: i.label for i in inputs}
        if errors:
            return fragment("plan.html.j2", plan=None, event_type=event_type, errors={
                labels.get(name.split(".")[0] if name not in labels else name, name): reason
                for name, reason in errors.items()})
        try:
            answer = await gateway.dry_run(acting(request, own.get("csrf", "")), event)
        except GatewayUnavailable:
            return fragment("plan.html.j2", plan=None, errors={}, event_type=event_type,
                            problem="Planen kan inte visas just nu: gatewayen svarar inte.")
        except Refused as problem:
            return fragment("plan.html.j2", plan=None, event_type=event_type,
                            problem=sv_refusal(problem.status, problem.detail),
                            errors={labels.get(field_of(e["path"], inputs), e["path"]): e["reason"]
                                    for e in problem.errors})
        return fragment("plan.html.j2", plan=answer["plan"], approval=answer.get("approval", []), errors={},
                        event_type=event_type, problem="")

    async def preview_of(who: As, event: dict[str, Any], audience: str, channel: str) -> dict[str, Any]:
        """The preview of one group's message on one channel, or why the event would not reach it so."""
        plan = await gateway.plan(who, event)
        refusal = next((r for r in plan["refused"] if r["audience_id"] == audience), None)
        group = next((g for g in plan["groups"] if g["audience_id"] == audience), None)
        if refusal is not None:
            return {"why": f"Gruppen nås inte av meddelandet: {sv_reason(refusal['reason'])} "
                           f"(regel: {sv_rule(refusal['rule'])})."}
        if group is None:
            return {"why": "Gruppen är inte med i planen för meddelandet."}
        if channel not in group["channels"]:
            return {"why": f"Gruppen får inte meddelandet i kanalen {CHANNEL_LABELS.get(channel, channel)}."}
        parts = await gateway.preview(who, event, audience, channel)
        return {"parts": [(suffix, PART_LABELS.get(suffix, suffix), parts[suffix]) for suffix in PART_LABELS
                          if suffix in parts], "group": group}

    @router.post("/new/{event_type}/preview", response_class=HTMLResponse)
    async def compose_preview(request: Request, event_type: str,
                              audience: Annotated[str, Query(pattern=AUDIENCE_ID)],
                              channel: Annotated[str, Query(pattern=CHANNEL_ID)]) -> Response:
        session, program, fields, own = await posted(request, event_type)
        if isinstance(session, Response):
            return Response(headers={"HX-Redirect": people.login_url(request)})
        inputs = form_of(event_type)
        event = event_of(event_type, program, session.person.sub, fields, inputs, clock())
        if errors_of(event, inputs):
            return fragment("preview.html.j2", why="Rätta formuläret först; planen visar vad som saknas.",
                            channel=channel, audience=audience)
        return await preview_fragment(acting(request, own.get("csrf", "")), event, audience, channel)

    async def preview_fragment(who: As, event: dict[str, Any] | UUID, audience: str, channel: str) -> HTMLResponse:
        """The preview of the event (or of the accepted event of that id), or why it cannot be shown."""
        try:
            body = event if isinstance(event, dict) else (await gateway.event(who, str(event)))["event"]
            found = await preview_of(who, body, audience, channel)
        except GatewayUnavailable:
            found = {"why": "Förhandsgranskningen kan inte visas just nu: gatewayen svarar inte."}
        except Refused as problem:
            found = {"why": sv_refusal(problem.status, problem.detail)}
        return fragment("preview.html.j2", channel=channel, audience=audience, **found)

    def event_context(session: Session, status: dict[str, Any], notice: str = "", problem: str = "") -> dict[str, Any]:
        """What the event's page shows of `status`, and what this person may do there."""
        person, program = session.person, status["program"]
        approval = status.get("approval") or {}
        authors = {d["actor"] for d in approval.get("history", ()) if d["action"] in ("submit", "change")}
        return {"person": person, "e": status, "csrf": people.sessions.csrf(session), "problem": problem,
                "admin": person.may(program, Role.ADMIN), "editor": person.may(program, Role.EDITOR),
                "may_decide": status["status"] == "awaiting_approval" and person.may(program, Role.APPROVER)
                and person.sub not in authors, "own": person.sub in authors,
                "may_cancel": status["status"] in HELD and person.may(program, Role.EDITOR),
                "may_amend": amendable(status) and person.may(program, Role.EDITOR),
                "notice": notice, "history": history_of(status),
                "group_names": {"intranet": "Hela programmet",
                                **{g["audience_id"]: g["name"] for g in (status["plan"] or {}).get("groups", ())}}}

    @router.get("/events/{event_id}", response_class=HTMLResponse)
    async def event_page(request: Request, event_id: UUID,
                         published: Annotated[bool, Query()] = False,
                         done: Annotated[str | None, Query(pattern=r"^(approve|reject|cancel)$")] = None) -> Response:
        """One event: its approval, plan, progress per group and channel, failures, dead letters and history."""
        session = await people.require(request, None, Role.READER)
        if isinstance(session, Response):
            return session
        live = request.headers.get("HX-Request") == "true"
        try:
            status = await gateway.event(acting(request), str(event_id))
        except GatewayUnavailable:
            return unavailable(request, session.person)
        except Refused as problem:
            return refused(request, session.person, problem)
        notice = DONE.get(done or "", "")
        if published:
            notice = ("Meddelandet väntar på godkännande. Inget skickas förrän en annan person med rollen "
                      "godkännare har godkänt det." if status["status"] == "awaiting_approval"
                      else "Meddelandet är publicerat.")
        ctx = event_context(session, status, notice)
        if live:  # the page's own asking: it takes the parts it polls for (hx-select) from the page
            return fragment("event.html.j2", **ctx)
        return page(request, "event.html.j2", **ctx)

    async def held_act(request: Request, event_id: UUID, act: Callable[[As, dict[str, str]], Awaitable[str]]) -> Response:
        """An approver's decision or an editor's cancel (`act`, which says which it did), from the event's page:
        back to it, saying what came of it."""
        session = await people.require(request, None, Role.READER)
        if isinstance(session, Response):
            return session
        form = await read_form(request)
        who = acting(request, form.get("csrf", ""))
        try:
            done = await act(who, form)
        except GatewayUnavailable:
            return unavailable(request, session.person)
        except Refused as problem:
            try:
                status = await gateway.event(acting(request), str(event_id))
            except (GatewayUnavailable, Refused):
                return refused(request, session.person, problem)
            return page(request, "event.html.j2", problem.status,
                        **event_context(session, status, problem=sv_refusal(problem.status, problem.detail)))
        return RedirectResponse(f"{people.base}/console/events/{event_id}?done={done}", status_code=303)

    @router.post("/events/{event_id}/approval", response_class=HTMLResponse)
    async def decide(request: Request, event_id: UUID) -> Response:
        async def act(who: As, form: dict[str, str]) -> str:
            verdict = "reject" if form.get("decision") == "reject" else "approve"
            await gateway.decide(who, str(event_id), verdict, form.get("content_hash", ""), form.get("comment", "").strip())
            return verdict

        return await held_act(request, event_id, act)

    @router.post("/events/{event_id}/cancellation", response_class=HTMLResponse)
    async def cancel(request: Request, event_id: UUID) -> Response:
        async def act(who: As, form: dict[str, str]) -> str:
            await gateway.cancel(who, str(event_id), form.get("comment", "").strip())
            return "cancel"

        return await held_act(request, event_id, act)

    def amendable(status: dict[str, Any]) -> bool:
        """An original that went out and was not withdrawn: it can be corrected or retracted."""
        return (status.get("amends") is None and status["type"] not in AMENDMENTS
                and status["status"] in ("delivering", "delivered")
                and not any(a["type"] == "retraction" for a in status.get("amendments", ())))

    async def correction_page(request: Request, session: Session, status: dict[str, Any], fields: Fields,
                              own: dict[str, str], errors: dict[str, str], problem: str = "",
                              code: int = 200) -> Response:
        inputs = payload_inputs(status["type"])
        return page(request, "correction.html.j2", code, person=session.person, e=status, inputs=inputs,
                    fields=fields, own=own, errors=errors, problem=problem, groups=(), rows_of=rows_of,
                    csrf=people.sessions.csrf(session))

    async def amendment_target(request: Request, event_id: UUID) -> tuple[Session, dict[str, Any]] | Response:
        """The session of an editor of the event's programme and the event's status, or why not."""
        session = await people.require(request, None, Role.READER)
        if isinstance(session, Response):
            return session
        try:
            status = await gateway.event(acting(request), str(event_id))
        except GatewayUnavailable:
            return unavailable(request, session.person)
        except Refused as problem:
            return refused(request, session.person, problem)
        if not session.person.may(status["program"], Role.EDITOR):
            return refused(request, session.person, Refused(403, f"programme '{status['program']}'"))
        if not amendable(status):
            return page(request, "refused.html.j2", 409, person=session.person,
                        message="Bara ett utskick som har gått ut, och som inte är återkallat, kan rättas eller "
                                "återkallas.")
        return session, status

    @router.get("/events/{event_id}/correction", response_class=HTMLResponse)
    async def correction_form(request: Request, event_id: UUID) -> Response:
        """The correction of an event that went out: its fields as they read now, to change, and why."""
        found = await amendment_target(request, event_id)
        if isinstance(found, Response):
            return found
        session, status = found
        inputs = payload_inputs(status["type"])
        return await correction_page(request, session, status, fields_from(status["reads_now"] or status["event"],
                                                                          inputs), {}, {})

    @router.post("/events/{event_id}/correction", response_class=HTMLResponse)
    async def correct(request: Request, event_id: UUID) -> Response:
        found = await amendment_target(request, event_id)
        if isinstance(found, Response):
            return found
        session, status = found
        inputs = payload_inputs(status["type"])
        pairs = await read_form_pairs(request, MAX_FORM)
        own = {k: v for k, v in pairs if k in ("csrf", "what_changed", "reason")}
        fields = fields_of(pairs, inputs)
        current = status["reads_now"] or status["event"]
        typed = event_of(status["type"], status["program"], session.person.sub, fields, inputs, clock())
        proposed = {**current, "payload": typed["payload"]}
        errors = errors_of(proposed, inputs)
        for name in ("what_changed", "reason"):
            if not own.get(name, "").strip():
                errors[name] = "Måste fyllas i."
        if not errors:
            before = parse_event(current).payload.model_dump(mode="json")
            corrected = changed_fields(before, parse_event(proposed).payload.model_dump(mode="json"))
            if not corrected:
                return await correction_page(request, session, status, fields, own, {},
                                             "Inget fält är ändrat: en rättelse ändrar minst ett.", 422)
            correction = {"type": "correction", "program": status["program"], "publisher": session.person.sub,
                          "importance": current["importance"], "sensitivity": current["sensitivity"],
                          "payload": {"corrects": status["event_id"], "title": proposed["payload"]["title"],
                                      "what_changed": own["what_changed"].strip(), "reason": own["reason"].strip(),
                                      "corrected": corrected}}
            try:
                accepted = await gateway.publish(acting(request, own.get("csrf", "")), correction)
            except GatewayUnavailable:
                return unavailable(request, session.person)
            except Refused as problem:
                if problem.status != 422:
                    return await correction_page(request, session, status, fields, own, {},
                                                 sv_refusal(problem.status, problem.detail), problem.status)
                errors = {field_of(e["path"].replace("payload.corrected.", "payload."), inputs)
                          if e["path"].startswith("payload.corrected") else e["path"].removeprefix("payload."):
                          e["reason"] for e in problem.errors}
            else:
                return RedirectResponse(f"{people.base}/console/events/{accepted['event_id']}?published=true",
                                        status_code=303)
        return await correction_page(request, session, status, fields, own, errors,
                                     "Rättelsen skickades inte: rätta det som står vid fälten.", 422)

    @router.post("/events/{event_id}/retraction", response_class=HTMLResponse)
    async def retract(request: Request, event_id: UUID) -> Response:
        """Withdraw an event that went out: those it reached are told why, and its item is marked."""
        found = await amendment_target(request, event_id)
        if isinstance(found, Response):
            return found
        session, status = found
        form = await read_form(request)
        reason = form.get("reason", "").strip()
        current = status["reads_now"] or status["event"]
        if not reason:
            return page(request, "event.html.j2", 422, **event_context(
                session, status, problem="Skriv varför meddelandet återkallas; inget har skickats."))
        retraction = {"type": "retraction", "program": status["program"], "publisher": session.person.sub,
                      "importance": current["importance"], "sensitivity": current["sensitivity"],
                      "payload": {"corrects": status["event_id"], "title": current["payload"]["title"],
                                  "reason": reason, "what_changed": form.get("what_changed", "").strip() or None}}
        try:
            accepted = await gateway.publish(acting(request, form.get("csrf", "")), retraction)
        except GatewayUnavailable:
            return unavailable(request, session.person)
        except Refused as problem:
            return page(request, "event.html.j2", problem.status, **event_context(
                session, status, problem=sv_refusal(problem.status, problem.detail)))
        return RedirectResponse(f"{people.base}/console/events/{accepted['event_id']}?published=true",
                                status_code=303)

    @router.get("/approvals", response_class=HTMLResponse)
    async def approvals(request: Request) -> Response:
        """What waits for approval in the programmes where the person approves, oldest first."""
        session = await people.require(request, None, Role.APPROVER)
        if isinstance(session, Response):
            return session
        person = session.person
        try:
            waiting = [await gateway.event(acting(request), event_id)
                       for event_id in await gateway.approvals(acting(request))]
        except GatewayUnavailable:
            return unavailable(request, person)
        except Refused as problem:
            return refused(request, person, problem)
        mine = [e for e in waiting if person.may(e["program"], Role.APPROVER)]
        return page(request, "approvals.html.j2", person=person, waiting=mine)

    @router.get("/events/{event_id}/preview", response_class=HTMLResponse)
    async def event_preview(request: Request, event_id: UUID, audience: Annotated[str, Query(pattern=AUDIENCE_ID)],
                            channel: Annotated[str, Query(pattern=CHANNEL_ID)]) -> Response:
        """What one group got (or gets) of the event on one channel, for a sample member (for an editor: a
        preview is a dry run, which the gateway lets only those who may publish make)."""
        session = await people.require(request, None, Role.READER)
        if isinstance(session, Response):
            return Response(headers={"HX-Redirect": people.login_url(request)})
        return await preview_fragment(acting(request, people.sessions.csrf(session)),
                                      event_id, audience, channel)

    @router.post("/dead-letters/{letter_id}/redrive", response_class=HTMLResponse)
    async def redrive(request: Request, letter_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> Response:
        """Send a dead letter again (an admin of its programme; the gateway checks)."""
        session = await people.require(request, None, Role.READER)
        if isinstance(session, Response):
            return session
        form = await read_form(request)
        event_id, csrf = form.get("event_id", ""), form.get("csrf", "")
        try:
            await gateway.redrive(acting(request, csrf), letter_id)
        except GatewayUnavailable:
            return unavailable(request, session.person)
        except Refused as problem:
            return refused(request, session.person, problem)
        back = f"{people.base}/console/events/{UUID(event_id)}" if _is_uuid(event_id) else f"{people.base}/console/"
        return RedirectResponse(back, status_code=303)

    async def shown(request: Request, program: str, role: Role, read: Callable[[As], Awaitable[Any]],
                    show: Callable[[Session, Any], Response]) -> Response:
        """What the gateway reports for a person with `role` in `program`, shown; or why it cannot be."""
        session = await people.require(request, program, role)
        if isinstance(session, Response):
            return session
        try:
            found = await read(acting(request))
        except GatewayUnavailable:
            return unavailable(request, session.person)
        except Refused as problem:
            return refused(request, session.person, problem)
        return show(session, found)

    @router.get("/groups", response_class=HTMLResponse)
    async def groups(request: Request, program: Annotated[str, Query(pattern=PROGRAM_PATTERN)]) -> Response:
        """The programme's target groups: selector, tier, channels and member count."""
        return await shown(request, program, Role.READER, lambda who: gateway.audiences(who, program),
                           lambda session, found: page(request, "groups.html.j2", person=session.person,
                                                       program=program, groups=found["audiences"]))

    @router.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request, program: Annotated[str, Query(pattern=PROGRAM_PATTERN)]) -> Response:
        """The programme's audit register, newest last (its admins'); the whole of it as CSV."""
        return await shown(request, program, Role.ADMIN, lambda who: gateway.audit(who, program),
                           lambda session, rows: page(request, "audit.html.j2", person=session.person,
                                                      program=program, rows=rows))

    @router.get("/audit.csv")
    async def audit_csv(request: Request, program: Annotated[str, Query(pattern=PROGRAM_PATTERN)]) -> Response:
        return await shown(request, program, Role.ADMIN, lambda who: gateway.audit_csv(who, program),
                           lambda _session, exported: people.personal(request, Response(
                               exported, media_type="text/csv; charset=utf-8", headers={
                                   "Content-Disposition": f'attachment; filename="budkavle-audit-{program}.csv"'})))

    def admin_of_all(request: Request, session: Session | Response) -> Session | Response:
        """The directory serves every programme: its page is for an admin of every one."""
        if isinstance(session, Response):
            return session
        if not all(session.person.may(code, Role.ADMIN) for code in programs):
            return people.page("auth/no_access.html.j2", 403, person=session.person)
        return session

    @router.get("/directory", response_class=HTMLResponse)
    async def directory(request: Request) -> Response:
        """The directory upload: a CSV file, whose report is shown before anything changes."""
        session = admin_of_all(request, await people.require(request, None, Role.READER))
        if isinstance(session, Response):
            return session
        return page(request, "directory.html.j2", person=session.person, csrf=people.sessions.csrf(session),
                    report=None, problem="", applied=None, limit_mb=MAX_DIRECTORY_BYTES // (1024 * 1024))

    @router.get("/directory/undeliverable", response_class=HTMLResponse)
    async def undeliverable(request: Request) -> Response:
        """Whose address takes no mail, and why: for an admin of every programme, like the directory itself."""
        session = admin_of_all(request, await people.require(request, None, Role.READER))
        if isinstance(session, Response):
            return session
        try:
            addresses = await gateway.undeliverable(acting(request))
        except GatewayUnavailable:
            return unavailable(request, session.person)
        except Refused as problem:
            return refused(request, session.person, problem)
        return page(request, "undeliverable.html.j2", person=session.person, addresses=addresses)

    @router.post("/directory", response_class=HTMLResponse)
    async def check_directory(request: Request) -> Response:
        session = admin_of_all(request, await people.require(request, None, Role.READER))
        if isinstance(session, Response):
            return session
        ctx: dict[str, Any] = {"person": session.person, "csrf": people.sessions.csrf(session), "report": None,
                               "applied": None, "limit_mb": MAX_DIRECTORY_BYTES // (1024 * 1024)}
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_DIRECTORY_BYTES + 64 * 1024:
            return page(request, "directory.html.j2", 413, **ctx, problem=TOO_LARGE.format(ctx["limit_mb"]))
        form = await request.form(max_files=1, max_fields=5)
        upload, csrf = form.get("file"), str(form.get("csrf", ""))
        if not people.sessions.csrf_ok(session, csrf):
            return page(request, "directory.html.j2", 403, **ctx, problem=sv_refusal(403, "CSRF"))
        if not isinstance(upload, StarletteUpload) or not upload.filename:
            return page(request, "directory.html.j2", 422, **ctx, problem="Välj en CSV-fil att ladda upp.")
        data = await upload.read(MAX_DIRECTORY_BYTES + 1)
        if len(data) > MAX_DIRECTORY_BYTES:
            return page(request, "directory.html.j2", 413, **ctx, problem=TOO_LARGE.format(ctx["limit_mb"]))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return page(request, "directory.html.j2", 422, **ctx,
                        problem=f"Filen är inte UTF-8-text (tecknet vid byte {exc.start} går inte att läsa). Spara "
                                "den som CSV med teckenkodningen UTF-8 och försök igen. Inget har ändrats.")
        try:
            report = await gateway.check_directory(acting(request, csrf), text)
        except GatewayUnavailable:
            return unavailable(request, session.person)
        except Refused as problem:
            return page(request, "directory.html.j2", problem.status, **ctx,
                        problem=sv_refusal(problem.status, problem.detail))
        return page(request, "directory.html.j2", **{**ctx, "report": report, "problem": ""})

    @router.post("/directory/{import_id}/apply", response_class=HTMLResponse)
    async def apply_directory(request: Request, import_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")]) -> Response:
        session = admin_of_all(request, await people.require(request, None, Role.READER))
        if isinstance(session, Response):
            return session
        form = await read_form(request)
        ctx: dict[str, Any] = {"person": session.person, "csrf": people.sessions.csrf(session), "report": None,
                               "limit_mb": MAX_DIRECTORY_BYTES // (1024 * 1024), "applied": None, "problem": ""}
        try:
            applied = await gateway.apply_directory(acting(request, form.get("csrf", "")), import_id)
        except GatewayUnavailable:
            return unavailable(request, session.person)
        except Refused as problem:
            message = ("Den kontrollerade filen finns inte längre (den är redan verkställd eller för gammal). "
                       "Ladda upp den igen." if problem.status == 404 else sv_refusal(problem.status, problem.detail))
            return page(request, "directory.html.j2", problem.status, **{**ctx, "problem": message})
        return page(request, "directory.html.j2", **{**ctx, "applied": applied})

    return router


#: What the event's page says after an approver's decision or an editor's cancel.
DONE = {"approve": "Godkänt. Meddelandet skickas nu (eller när embargot eller sändningstiden nås).",
        "reject": "Avslaget. Författaren ser din kommentar och kan ändra meddelandet och skicka in det igen.",
        "cancel": "Stoppat. Inget av meddelandet skickas."}

TOO_LARGE = "Filen är större än {} MB. Dela inte upp katalogen; be om en högre gräns. Inget har ändrats."


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


def sv_time(value: str) -> str:
    """An instant as the gateway reports it, as Swedish date and time in Swedish time."""
    moment = datetime.fromisoformat(value).astimezone(STOCKHOLM)
    return f"{sv_date(moment)} kl. {moment:%H.%M}"


def history_of(status: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What happened to the event, in order: (when, what)."""
    steps = [(status["accepted_at"], f"Mottaget från {status['publisher']}")]
    if status.get("embargo_until"):
        steps.append((status["embargo_until"], "Embargot upphör"))
    if status.get("send_at"):
        steps.append((status["send_at"], "Nyhetsbrevet skickas"))
    if status.get("plan"):
        steps.append((status["accepted_at"], f"Planerat för {len(status['plan']['groups'])} målgrupper"))
    for decision in status.get("decisions", ()):
        said = f" ({decision['comment']})" if decision.get("comment") else ""
        steps.append((decision["at"], f"{DECISION_LABELS.get(decision['action'], decision['action'])} av "
                                      f"{decision['actor']}{said}"))
    for letter in status.get("dead_letters", ()):
        steps.append((letter["at"], f"Kunde inte hanteras av {letter['consumer']}"))
        if letter.get("redriven_at"):
            steps.append((letter["redriven_at"], "Skickat igen efter rättning"))
    return sorted(steps, key=lambda step: datetime.fromisoformat(step[0]))
