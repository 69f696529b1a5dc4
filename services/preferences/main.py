"""Composition root of the preference centre."""

from pydantic import Field

from programs import load_programs
from services.common.links import LinkSigner, link_key
from services.common.retention import retention_loop
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.preferences.centre import PreferenceCentre
from services.preferences.pages import build_http
from services.preferences.store import MIGRATIONS, PreferencesStore


class PreferencesSettings(CommonSettings):
    link_key: str = Field(default="", alias="BUDKAVLE_LINK_KEY")


def build(settings: PreferencesSettings, runtime: Runtime, embedded: bool = False) -> ServiceParts:
    programs = load_programs(settings.programs_dir)
    signer = LinkSigner(link_key(settings.link_key, settings.data_dir, embedded))
    store = PreferencesStore(runtime.engine)
    centre = PreferenceCentre(store, runtime.bus)
    return ServiceParts(name="preferences", migrations=MIGRATIONS,
                        background=(centre.announce_pending,
                                    retention_loop("preferences", store.purge, settings.retention_days)),
                        http=build_http(centre, signer, programs, settings.templates_dir,
                                        settings.resolved_public_url()))
