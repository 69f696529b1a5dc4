"""The channel registry: the one definition of which channels exist, what each one's command is, the
topic it travels on, and whom it reaches.

A channel is a plug-in. Adding one (SMS, a CMS webhook) adds its command model, a topic and one
`register_channel` line here; planning, the programme loader and the contracts' schemas loop over
the registry, so no handler, planner branch or union changes by hand.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from contracts import topics
from contracts.deliveries import DeliveryCommand, PublishIntranetItem, SendEmail, SendTeamsCard


class Reach(StrEnum):
    """Whom one command of the channel reaches; planning follows it."""

    PERSON = "person"  # each member of a group (email): one delivery per person, rule 8 applies
    GROUP = "group"  # a group's shared space (Teams): one delivery per group
    PROGRAMME = "programme"  # the whole organisation (intranet): one delivery per event, never confidential

    @property
    def direct(self) -> bool:
        """Direct channels carry must-know news to those concerned; the others are for awareness."""
        return self is not Reach.PROGRAMME


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    command: type[DeliveryCommand]
    topic: str
    reach: Reach


CHANNELS: dict[str, ChannelSpec] = {}


def register_channel(command: type[DeliveryCommand], topic: str, reach: Reach) -> ChannelSpec:
    spec = ChannelSpec(name=command.channel, command=command, topic=topic, reach=reach)
    if spec.name in CHANNELS and CHANNELS[spec.name] != spec:
        raise ValueError(f"channel {spec.name!r} is registered already")
    CHANNELS[spec.name] = spec
    return spec


@contextmanager
def registered_channel(command: type[DeliveryCommand], topic: str, reach: Reach) -> Iterator[ChannelSpec]:
    """A channel registered for a while (tests, tools), removed afterwards."""
    spec = register_channel(command, topic, reach)
    try:
        yield spec
    finally:
        CHANNELS.pop(spec.name, None)


register_channel(SendEmail, topics.EMAIL_DELIVERY_REQUESTED, Reach.PERSON)
register_channel(SendTeamsCard, topics.TEAMS_DELIVERY_REQUESTED, Reach.GROUP)
register_channel(PublishIntranetItem, topics.INTRANET_DELIVERY_REQUESTED, Reach.PROGRAMME)
