"""The console's subscription: a session ended by sign-out acts here no more."""

from faststream.kafka import KafkaRouter

from contracts import subscriptions
from services.common.bus import Bus
from services.common.ended_sessions import EndedSessions
from services.common.subscriptions import subscribe


def build_router(bus: Bus, ended: EndedSessions) -> KafkaRouter:
    router = KafkaRouter()
    subscribe(router, subscriptions.CONSOLE_SESSIONS, bus, ended.end)
    return router
