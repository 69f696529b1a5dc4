"""`/feedback/{token}` and `/r/{token}`: the follow-up links in every message, answered with a short page
in Swedish (or a redirect to the event's own page). Whatever cannot be trusted gets a 4xx page and
nothing is recorded."""

import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment

from contracts.feedback import ANSWER_TEXT, ANSWERS, QUESTION_TEXT
from services.insights.clicks import ClickRefused, Clicks, Link, check_answer

#: The browser's random id, for clicks on what a whole group sees (it names no one; see `clicks`).
BROWSER_COOKIE = "budkavle_svarande"
BROWSER_ID_DAYS = 365


def build_click_router(clicks: Clicks, env: Environment) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    secure = clicks.base.startswith("https://")

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(f"insights/{name}").render(base=clicks.base, **ctx), status_code=status)

    def refused(problem: ClickRefused) -> HTMLResponse:
        return page("problem.html.j2", problem.status, heading=problem.heading, message=problem.message)

    def browser_id(request: Request) -> str | None:
        value = request.cookies.get(BROWSER_COOKIE, "")
        return value if 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum() else None

    def with_new_browser_id(request: Request) -> Response:
        """Set a random id and come back to the same link: a client that keeps it is counted once however
        often it clicks; one that does not (a link scanner) arrives back without it and is not counted."""
        query = urlencode({**request.query_params, "c": "1"})
        response = RedirectResponse(f"{request.url.path}?{query}", status_code=303)
        response.set_cookie(BROWSER_COOKIE, secrets.token_urlsafe(18), max_age=BROWSER_ID_DAYS * 86400,
                            httponly=True, samesite="lax", secure=secure)
        return response

    def respondent(request: Request, link: Link) -> str | None | Response:
        who = clicks.respondent(link, browser_id(request))
        if who is None and request.query_params.get("c") != "1":
            return with_new_browser_id(request)
        return who

    @router.get("/feedback/{token}", response_class=HTMLResponse)
    async def feedback(token: str, request: Request) -> Response:
        question, answer = request.query_params.get("q", ""), request.query_params.get("a", "")
        try:
            link = clicks.trusted(token)
            check_answer(question, answer)  # before a browser id is set: a bad link is refused at once
            who = respondent(request, link)
            if isinstance(who, Response):
                return who
            if who is None:
                raise ClickRefused(400, "Svaret gick inte att ta emot",
                                   "Din webbläsare tar inte emot kakor, så svaret kunde inte räknas en gång. "
                                   "Tillåt kakor för den här sidan och klicka igen.")
            back = await clicks.answer(link, who, question, answer)
        except ClickRefused as problem:
            return refused(problem)
        others = [(ANSWER_TEXT[a], f"{clicks.base}/feedback/{token}?{urlencode({'q': question, 'a': a})}")
                  for a in ANSWERS[question] if a != answer]
        return page("thanks.html.j2", question=QUESTION_TEXT[question], answer=ANSWER_TEXT[answer], others=others,
                    item_url=back, program=link.program)

    @router.get("/r/{token}")
    async def read_more(token: str, request: Request) -> Response:
        try:
            link = clicks.trusted(token)
            who = respondent(request, link)
            if isinstance(who, Response):
                return who
            target = await clicks.read(link, who, request.query_params.get("to"))
        except ClickRefused as problem:
            return refused(problem)
        return RedirectResponse(target, status_code=303)

    return router

