"""`/feedback/{token}`, `/ack/{token}` and `/r/{token}`: the follow-up links in every message.

A GET records nothing: it opens a short page whose form sends the answer (or the read) by POST, at once in a
browser that runs scripts and with one button where none run. Mail security gateways fetch every link of a mail
before its reader sees it; they never send the form. A group's link (a Teams card, an intranet item) asks its
reader to sign in first, and its form carries the session's CSRF token. Whatever cannot be trusted gets a 4xx
page in Swedish and nothing is recorded.
"""

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment

from contracts.feedback import ANSWER_TEXT, ANSWERS, QUESTION_TEXT
from programs import Role
from services.common.problems import Problem, read_form
from services.common.sessions import Session
from services.common.signin import People
from services.insights.clicks import ClickRefused, Clicks, Link, check_answer


def build_click_router(clicks: Clicks, people: People, env: Environment) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return people.personal(request, HTMLResponse(
            env.get_template(f"insights/{name}").render(base=clicks.base, **ctx), status_code=status))

    def refused(request: Request, problem: ClickRefused) -> HTMLResponse:
        return page(request, "problem.html.j2", problem.status, heading=problem.heading, message=problem.message)

    async def member(request: Request, link: Link) -> Session | Response | None:
        """For a group's link: the signed-in person of the link's programme (or the way to sign in, or the
        no-access page). For a person's own link: None, the token is the identity."""
        if link.person is not None:
            return None
        return await people.require(request, link.program.program, Role.MEMBER)

    async def form(request: Request) -> dict[str, str]:
        try:
            return await read_form(request)
        except Problem as exc:
            raise ClickRefused(413, "Svaret gick inte att ta emot", "Formuläret var för stort.") from exc

    def checked(session: Session | None, sent: dict[str, str]) -> None:
        if session is not None and not people.sessions.csrf_ok(session, sent.get("csrf", "")):
            raise ClickRefused(403, "Svaret gick inte att ta emot",
                               "Formuläret var för gammalt eller kom inte från den här sidan. Öppna länken igen.")

    def confirm(request: Request, session: Session | None, fields: dict[str, str], heading: str, button: str,
                text: str) -> HTMLResponse:
        csrf = people.sessions.csrf(session) if session is not None else None
        return page(request, "confirm.html.j2", action=f"{clicks.base}{request.url.path}", fields=fields, csrf=csrf,
                    heading=heading, button=button, text=text)

    @router.get("/feedback/{token}", response_class=HTMLResponse)
    async def feedback_page(token: str, request: Request) -> Response:
        question, answer = request.query_params.get("q", ""), request.query_params.get("a", "")
        try:
            link = clicks.trusted(token)
            check_answer(question, answer)
        except ClickRefused as problem:
            return refused(request, problem)
        session = await member(request, link)
        if isinstance(session, Response):
            return session
        return confirm(request, session, {"q": question, "a": answer}, "Skickar ditt svar …", "Skicka svaret",
                       f"{QUESTION_TEXT[question]} Ditt svar: {ANSWER_TEXT[answer]}.")

    @router.post("/feedback/{token}", response_class=HTMLResponse)
    async def feedback(token: str, request: Request) -> Response:
        try:
            link = clicks.trusted(token)
            sent = await form(request)
            question, answer = sent.get("q", ""), sent.get("a", "")
            check_answer(question, answer)
            session = await member(request, link)
            if isinstance(session, Response):
                return session
            checked(session, sent)
            who = clicks.respondent(link, session.person.sub if session is not None else None)
            if who is None:  # cannot happen: a group's link needs a session, a person's names the person
                raise ClickRefused(403, "Svaret gick inte att ta emot", "Logga in och svara igen.")
            back = await clicks.answer(link, who, question, answer)
        except ClickRefused as problem:
            return refused(request, problem)
        others = [(ANSWER_TEXT[a], f"{clicks.base}/feedback/{token}?{urlencode({'q': question, 'a': a})}")
                  for a in ANSWERS[question] if a != answer]
        return page(request, "thanks.html.j2", question=QUESTION_TEXT[question], answer=ANSWER_TEXT[answer], others=others,
                    item_url=back, program=link.program)

    @router.get("/ack/{token}", response_class=HTMLResponse)
    async def acknowledge_page(token: str, request: Request) -> Response:
        """The news to acknowledge and one button: unlike an answer, the page never sends itself, so that
        nothing but a person's own click (never a scanner that runs the page) acknowledges."""
        try:
            link = clicks.trusted(token)
            title, item_url, briefing = await clicks.asks_acknowledgement(link)
        except ClickRefused as problem:
            return refused(request, problem)
        session = await member(request, link)
        if isinstance(session, Response):
            return session
        csrf = people.sessions.csrf(session) if session is not None else None
        return page(request, "acknowledge.html.j2", action=f"{clicks.base}{request.url.path}", csrf=csrf,
                    title=title, item_url=item_url, briefing=briefing)

    @router.post("/ack/{token}", response_class=HTMLResponse)
    async def acknowledge(token: str, request: Request) -> Response:
        try:
            link = clicks.trusted(token)
            sent = await form(request)
            session = await member(request, link)
            if isinstance(session, Response):
                return session
            checked(session, sent)
            who = clicks.respondent(link, session.person.sub if session is not None else None)
            if who is None:
                raise ClickRefused(403, "Bekräftelsen gick inte att ta emot", "Logga in och bekräfta igen.")
            title, _item, briefing = await clicks.asks_acknowledgement(link)
            back = await clicks.acknowledge(link, who)
        except ClickRefused as problem:
            return refused(request, problem)
        return page(request, "acknowledged.html.j2", title=title, item_url=back, briefing=briefing)

    @router.get("/r/{token}", response_class=HTMLResponse)
    async def read_more_page(token: str, request: Request) -> Response:
        to = request.query_params.get("to")
        try:
            link = clicks.trusted(token)
            clicks.check_target(to)
        except ClickRefused as problem:
            return refused(request, problem)
        session = await people.session(request) if link.person is None else None
        return confirm(request, session, {"to": to} if to else {}, "Öppnar sidan …", "Fortsätt till sidan",
                       "Du skickas vidare till nyheten.")

    @router.post("/r/{token}")
    async def read_more(token: str, request: Request) -> Response:
        try:
            link = clicks.trusted(token)
            sent = await form(request)
            # A group's link is counted only for a signed-in person of the programme whose form carried the
            # session's token; anyone may still follow it.
            session = await people.session(request) if link.person is None else None
            if session is not None and not (session.person.may(link.program.program, Role.MEMBER)
                                            and people.sessions.csrf_ok(session, sent.get("csrf", ""))):
                session = None
            who = clicks.respondent(link, session.person.sub if session is not None else None)
            target = await clicks.read(link, who, sent.get("to"))
        except ClickRefused as problem:
            return refused(request, problem)
        return RedirectResponse(target, status_code=303)

    return router
