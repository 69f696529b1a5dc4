"""The preference centre's pages: `/preferences/{token}` (see and change one's choices) and
`/unsubscribe/{token}` (RFC 8058 one-click: a POST takes effect at once). A token that cannot be trusted
gets a clear page in Swedish with a 4xx status; nothing is changed."""

import hashlib
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from programs import Program
from services.common.links import PREFERENCES, BadLink, LinkSigner
from services.common.problems import Problem, read_limited
from services.preferences.centre import PreferenceCentre

FORM_TTL = timedelta(days=1)
CADENCE = {"weekly": "varje vecka", "monthly": "varje månad", "none": "ingen"}


class PageProblem(Exception):
    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status, self.heading, self.message = status, heading, message


def build_http(centre: PreferenceCentre, signer: LinkSigner, programs: Mapping[str, Program], templates_dir: Path,
               public_url: str) -> APIRouter:
    env = Environment(loader=FileSystemLoader(str(templates_dir)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    router = APIRouter(tags=["preferences"], include_in_schema=False)
    base = public_url.rstrip("/")

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("program", None)
        return HTMLResponse(env.get_template(f"preferences/{name}").render(**ctx), status_code=status)

    def trusted(token: str) -> tuple[Program, str, str | None]:
        try:
            claims = signer.verify(PREFERENCES, token)
        except BadLink as exc:
            if exc.expired:
                raise PageProblem(410, "Länken har gått ut", "Länken är för gammal för att användas.") from exc
            raise PageProblem(400, "Länken fungerar inte",
                              "Länken är inte en som vi har skickat, eller så har den ändrats.") from exc
        program = programs.get(claims.get("program", ""))
        if program is None or not claims.get("person"):
            raise PageProblem(404, "Länken fungerar inte", "Länken gäller ett program som inte finns här.")
        return program, claims["person"], claims.get("audience")

    def problem_page(problem: PageProblem) -> HTMLResponse:
        return page("problem.html.j2", problem.status, heading=problem.heading, message=problem.message)

    async def form(request: Request) -> dict[str, str]:
        try:
            body = await read_limited(request, 4096)
        except Problem as exc:
            raise PageProblem(exc.status, "Formuläret är för stort", "Det skickade formuläret är för stort.") from exc
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=20)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PageProblem(400, "Formuläret gick inte att läsa", "Det skickade formuläret gick inte att läsa.") from exc
        return {k: v[-1] for k, v in fields.items()}

    def digest_options(program: Program, audience_id: str | None) -> list[tuple[str, str]]:
        group = program.audience(audience_id) if audience_id else None
        own = CADENCE.get(group.digest, "ingen") if group else "ingen"
        return [("group", f"Som min grupp ({own})"), ("weekly", "Varje vecka"), ("monthly", "Varje månad"),
                ("none", "Ingen sammanfattning")]

    @router.get("/preferences/{token}", response_class=HTMLResponse)
    async def preferences_page(token: str) -> HTMLResponse:
        try:
            program, person, audience = trusted(token)
        except PageProblem as problem:
            return problem_page(problem)
        choice = await centre.current(program.program, person)
        nonce = signer.sign("form", {"t": _digest(token), "n": secrets.token_urlsafe(12)}, FORM_TTL)
        return page("page.html.j2", program=program, choice=choice, nonce=nonce,
                    action=f"{base}/preferences/{token}", digest_options=digest_options(program, audience))

    @router.post("/preferences/{token}", response_class=HTMLResponse)
    async def save_preferences(token: str, request: Request) -> HTMLResponse:
        try:
            program, person, audience = trusted(token)
            fields = await form(request)
            try:
                nonce = signer.verify("form", fields.get("nonce", ""))
            except BadLink as exc:
                raise PageProblem(400, "Formuläret fungerar inte",
                                  "Formuläret är för gammalt eller har ändrats. Öppna länken igen.") from exc
            if nonce.get("t") != _digest(token):
                raise PageProblem(400, "Formuläret fungerar inte", "Formuläret hör till en annan länk.")
            choice = _choices(fields, {v for v, _ in digest_options(program, audience)})
            if not await centre.store.use_form(fields["nonce"]):
                raise PageProblem(409, "Formuläret är redan skickat",
                                  "Dina val är redan sparade. Öppna länken igen om du vill ändra dem.")
        except PageProblem as problem:
            return problem_page(problem)
        await centre.choose(program.program, person, **choice)
        return page("done.html.j2", program=program, heading="Dina val är sparade",
                    message="Ändringen gäller från och med nästa utskick.", back=f"{base}/preferences/{token}")

    @router.get("/unsubscribe/{token}", response_class=HTMLResponse)
    async def unsubscribe_page(token: str) -> HTMLResponse:
        try:
            program, _, _ = trusted(token)
        except PageProblem as problem:
            return problem_page(problem)
        return page("unsubscribe.html.j2", program=program, action=f"{base}/unsubscribe/{token}",
                    back=f"{base}/preferences/{token}")

    @router.post("/unsubscribe/{token}", response_class=HTMLResponse)
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        """RFC 8058: the mail provider (or the page's button) posts `List-Unsubscribe=One-Click`; it takes
        effect at once, and a repeat changes nothing more."""
        try:
            program, person, _ = trusted(token)
            if (await form(request)).get("List-Unsubscribe") != "One-Click":
                raise PageProblem(400, "Begäran gick inte att förstå",
                                  "En avanmälan ska innehålla List-Unsubscribe=One-Click.")
        except PageProblem as problem:
            return problem_page(problem)
        await centre.unsubscribe(program.program, person)
        return page("done.html.j2", program=program, heading="Du får inte fler nyhetsbrev eller sammanfattningar",
                    message="Avanmälan gäller från och med nu.", back=f"{base}/preferences/{token}")

    return router


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def _choices(fields: Mapping[str, str], digests: set[str]) -> dict[str, Any]:
    yes_no = {"ja": True, "nej": False}
    digest, newsletters, awareness = (fields.get("digest"), fields.get("newsletters"), fields.get("awareness_email"))
    if digest not in digests or newsletters not in yes_no or awareness not in yes_no:
        raise PageProblem(422, "Valen gick inte att spara", "Välj ett alternativ i varje grupp och försök igen.")
    return {"digest": digest, "newsletters": yes_no[newsletters], "awareness_email": yes_no[awareness]}
