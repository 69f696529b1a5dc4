"""Composition root of the insights service."""

from datetime import timedelta

from fastapi import APIRouter
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import Field

from contracts import topics
from contracts.people import SessionEnded
from programs import load_programs
from services.common.auth import TokenAuthority, parse_tokens
from services.common.ended_sessions import EndedSessions
from services.common.links import LinkSigner, link_key
from services.common.retention import retention_loop
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.common.signin import build_signin_router, people_for, provider_for
from services.insights.click_pages import build_click_router
from services.insights.clicks import Clicks
from services.insights.handlers import build_router
from services.insights.pages import Viewers, build_insights_router
from services.insights.store import ENDED_SESSIONS, MIGRATIONS, InsightsStore


class InsightsSettings(CommonSettings):
    #: Checks the follow-up links (the tailor and the email service sign them with the same key).
    link_key: str = Field(default="", alias="BUDKAVLE_LINK_KEY")
    #: Systems that may read a programme's figures: the tokens given the `reader` role.
    api_tokens: str = Field(default="", alias="BUDKAVLE_API_TOKENS")


def build(settings: InsightsSettings, runtime: Runtime, embedded: bool = False) -> ServiceParts:
    """The insights pages (signed-in readers, reader tokens), the follow-up links, and the sign-in itself
    (`/auth/…`), which the other person-facing services' pages rely on."""
    programs = load_programs(settings.programs_dir)
    signer = LinkSigner(link_key(settings.link_key, settings.data_dir, embedded))
    store = InsightsStore(runtime.engine)
    base = settings.resolved_public_url()
    retention = timedelta(days=settings.retention_days)
    clicks = Clicks(store, runtime.bus, signer, programs, base, retention)
    env = Environment(loader=FileSystemLoader(str(settings.templates_dir)), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    ended = EndedSessions(runtime.engine, ENDED_SESSIONS)
    people = people_for(settings, env, embedded, ended)
    viewers = Viewers(TokenAuthority(parse_tokens(settings.api_tokens)), people, programs)

    async def end(session: SessionEnded) -> None:
        """A session signed out: ended here at once, and announced to every other service that reads sessions."""
        await ended.end(session)
        await clicks.announce(topics.SESSION_ENDED, session)

    http = APIRouter()
    http.include_router(build_signin_router(provider_for(settings), people, programs, settings.oidc_roles_claim, end))
    http.include_router(build_click_router(clicks, people, env))
    http.include_router(build_insights_router(store, viewers, env, base))
    return ServiceParts(name="insights", router=build_router(store, runtime.bus), http=http, migrations=MIGRATIONS,
                        background=(clicks.announce_pending,
                                    retention_loop("insights", store.fold, settings.retention_days)))
