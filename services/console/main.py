"""Composition root of the console: the pages, the people who may use them, and the gateway it works through."""

from pathlib import Path

from pydantic import Field

from programs import load_programs
from services.common.ended_sessions import EndedSessions
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.common.signin import people_for
from services.console.gateway import Gateway
from services.console.handlers import build_router
from services.console.pages import build_http, console_environment
from services.console.store import ENDED_SESSIONS, MIGRATIONS


class ConsoleSettings(CommonSettings):
    #: Where the console reaches the gateway's API; unset: the public URL (one origin, as in embedded mode).
    gateway_url: str = Field(default="", alias="BUDKAVLE_GATEWAY_URL")
    #: Where the pages' browser assets are (npm's `node_modules`, pinned in package-lock.json).
    assets_dir: Path = Field(default=Path("node_modules"), alias="BUDKAVLE_ASSETS_DIR")


def build(settings: ConsoleSettings, runtime: Runtime, embedded: bool = False) -> ServiceParts:
    programs = load_programs(settings.programs_dir)
    base = settings.resolved_public_url()
    env = console_environment(settings.templates_dir, programs, base)
    ended = EndedSessions(runtime.engine, ENDED_SESSIONS)
    people = people_for(settings, env, embedded, ended)
    return ServiceParts(name="console", router=build_router(runtime.bus, ended), migrations=MIGRATIONS,
                        http=build_http(Gateway(settings.gateway_url or base), people, programs, env,
                                        settings.assets_dir))
