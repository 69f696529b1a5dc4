"""Composition root of the intranet channel."""

from contracts.deliveries import PublishIntranetItem
from programs import load_programs
from services.common.delivery import Delivery, deliver_many
from services.common.ended_sessions import EndedSessions
from services.common.ledger import Ledger
from services.common.retention import retention_loop
from services.common.retry import Retrier
from services.common.runtime import Runtime, ServiceParts
from services.common.settings import CommonSettings
from services.common.signin import people_for
from services.intranet.handlers import build_router
from services.intranet.pages import build_http, intranet_environment
from services.intranet.store import ENDED_SESSIONS, LEDGER, MIGRATIONS, PARKED, IntranetStore


class IntranetSettings(CommonSettings):
    pass


def build(settings: IntranetSettings, runtime: Runtime, embedded: bool = False) -> ServiceParts:
    """In embedded mode the session key is the one kept in the data directory (as the sign-in's)."""
    store = IntranetStore(runtime.engine)
    programs = load_programs(settings.programs_dir)
    env = intranet_environment(settings.templates_dir, programs, settings.resolved_public_url())
    ended = EndedSessions(runtime.engine, ENDED_SESSIONS)
    ledger = Ledger(runtime.engine, LEDGER, PARKED)
    policy = settings.retry_policy()
    retrier = Retrier(ledger, policy, PublishIntranetItem.model_validate_json,
                      lambda command, _: [Delivery(command, None)],
                      lambda items: deliver_many(items, store, ledger, runtime.bus, policy, retrying=True))
    return ServiceParts(
        name="intranet",
        router=build_router(store, ledger, runtime.bus, ended, policy),
        background=(retrier.run, retention_loop("intranet", ledger.purge, settings.retention_days)),
        http=build_http(store, programs, env, people_for(settings, env, embedded, ended)),
        migrations=MIGRATIONS,
    )
