"""Composition root of the intranet channel."""

from programs import load_programs
from services.common.delivery import Ledger
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.intranet.handlers import build_router
from services.intranet.pages import build_http
from services.intranet.store import LEDGER, MIGRATIONS, IntranetStore


class IntranetSettings(CommonSettings):
    pass


def build(settings: IntranetSettings, runtime: Runtime) -> ServiceParts:
    store = IntranetStore(runtime.engine)
    programs = load_programs(settings.programs_dir)
    return ServiceParts(
        name="intranet",
        router=build_router(store, Ledger(runtime.engine, LEDGER), runtime.bus),
        http=build_http(store, programs, settings.templates_dir, settings.resolved_public_url()),
        migrations=MIGRATIONS,
    )
