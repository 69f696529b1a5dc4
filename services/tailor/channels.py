"""How the tailor composes each channel's commands: one composer per registered channel.

The channel registry (`contracts.channels`) says which channels exist, their command and topic, and
whom they reach; this registry says how the tailor turns a planned (event, group) into that channel's
commands, and which templates it renders. `Tailor.deliver` loops over the plan and these composers;
no code here or there branches on a channel's name.
"""

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NotRequired, Protocol, TypedDict
from uuid import UUID

from contracts.channels import CHANNELS, Reach
from contracts.deliveries import (
    EMAIL_CHUNK,
    Amendment,
    DeliveryCommand,
    EmailRecipient,
    GoLiveFacts,
    PublishIntranetItem,
    SendEmail,
    SendTeamsCard,
    fill,
)
from contracts.events import (
    Correction,
    Event,
    GoLiveMilestoneReached,
    Retraction,
    Sensitivity,
    StatusUpdated,
    event_type,
)
from programs import Audience, Program
from services.tailor import policy
from services.tailor.digests import Digest, render_card, render_email, render_item
from services.tailor.directory import Recipient
from services.tailor.rendering import PREVIEW_LINKS, RenderedEmail, Renderer, personal_text


@dataclass(frozen=True)
class Composition:
    """One planned delivery target: a group (or, for a programme-wide channel, the whole programme)."""

    event: Event
    program: Program
    audience_id: str
    audience: Audience | None  # None for a programme-wide channel
    recipients: Sequence[Recipient]  # the people a person channel reaches; empty otherwise
    planned_audiences: tuple[str, ...]  # every group the event reaches
    published_at: datetime
    #: A correction's or retraction's original, as it now reads: its deliveries follow the original's, their
    #: follow-up links are the original's, and the intranet amends the original's item.
    amends: Event | None = None


#: A rendered command as a person would look at it: file suffix → text.
Preview = dict[str, str]


class Composer(Protocol):
    templates: tuple[str, ...]

    def compose(self, c: Composition, renderer: Renderer) -> Iterable[DeliveryCommand]: ...

    def preview(self, command: DeliveryCommand) -> Preview: ...


_SAMPLE = Recipient(id="sample", name="Exempel Exempelsson", email="exempel@example.se")


class Envelope(TypedDict):
    """What every command of one delivery carries before its channel's own fields."""

    event_id: UUID
    program: str
    audience_id: str
    correlation_id: str | None
    follows: NotRequired[UUID | None]


def _envelope(c: Composition) -> Envelope:
    return {"event_id": c.event.event_id, "program": c.program.program, "audience_id": c.audience_id,
            "correlation_id": c.event.correlation_id, "follows": c.amends.event_id if c.amends else None}


def _about(c: Composition) -> UUID | None:
    """What a message's follow-up links are about: an amendment's are its original's (whose item they open)."""
    return c.amends.event_id if c.amends else None


def _group(c: Composition) -> Audience:
    if c.audience is None:
        raise ValueError(f"channel needs a target group; {c.audience_id!r} is programme-wide")
    return c.audience


def emails(envelope: Envelope, program: Program, rendered: RenderedEmail, people: Sequence[Recipient],
           bulk: bool) -> Iterator[SendEmail]:
    """One rendered message, from the programme, in commands of at most EMAIL_CHUNK recipients each."""
    sender = policy.sender_for(program)
    text, html = personal_text(rendered.text), personal_text(rendered.html)
    for start in range(0, len(people), EMAIL_CHUNK):
        # The directory checked every address when it was imported; checking each again here cost more
        # than rendering a whole fan-out. The email service validates what it receives.
        yield SendEmail(**envelope, sender_name=sender.name, sender_address=sender.address,
                        subject=rendered.subject, text_body=text, html_body=html,
                        recipients=tuple(EmailRecipient.model_construct(id=p.id, address=p.email, name=p.name)
                                         for p in people[start:start + EMAIL_CHUNK]), bulk=bulk)


class EmailComposer:
    """The group's message rendered once; it travels once per chunk of recipients."""

    templates: tuple[str, ...] = ("subject.txt.j2", "email/message.txt.j2", "email/message.html.j2")

    def compose(self, c: Composition, renderer: Renderer) -> Iterator[SendEmail]:
        yield from emails(_envelope(c), c.program, renderer.email(c.event, c.program, _group(c), _about(c)),
                           c.recipients, bulk=event_type(c.event.type).bulk)

    def preview(self, command: DeliveryCommand) -> Preview:
        assert isinstance(command, SendEmail)
        return {".html": fill(command.html_body, PREVIEW_LINKS),
                ".txt": f"Ämne: {command.subject}\n\n{fill(command.text_body, PREVIEW_LINKS)}"}


class EmailReminder:
    """A reminder to acknowledge must-know news: the message again, headed as a reminder, under the reminder's
    own id and following the event (sent only to whom the event went, after it)."""

    def remind(self, c: Composition, reminder_id: UUID, renderer: Renderer, follows: bool = True
               ) -> Iterator[SendEmail]:
        """`follows`: only to whom the event's mail went (a reminder); False for people it never mailed (the news
        by email to a group that had it by Teams alone, an escalation)."""
        envelope: Envelope = {"event_id": reminder_id, "program": c.program.program, "audience_id": c.audience_id,
                               "correlation_id": c.event.correlation_id,
                               "follows": c.event.event_id if follows else None}
        rendered = renderer.email(c.event, c.program, _group(c), c.event.event_id, reminder=True)
        yield from emails(envelope, c.program, rendered, c.recipients, bulk=False)


#: Channels that carry reminders to acknowledge (a person channel: a reminder goes to each who has not).
REMINDER_COMPOSERS: dict[str, EmailReminder] = {"email": EmailReminder()}


class TeamsComposer:
    templates: tuple[str, ...] = ("subject.txt.j2", "teams/message.md.j2")

    def compose(self, c: Composition, renderer: Renderer) -> Iterator[SendTeamsCard]:
        yield SendTeamsCard(**_envelope(c), card=renderer.teams_card(c.event, c.program, _group(c), _about(c)))

    def preview(self, command: DeliveryCommand) -> Preview:
        assert isinstance(command, SendTeamsCard)
        return {".json": json.dumps(command.card, ensure_ascii=False, indent=2)}


def _amendment(event: Event) -> Amendment:
    """What a correction or retraction says on the item it amends."""
    p = event.payload
    assert isinstance(p, Correction | Retraction)
    return Amendment(kind="correction" if isinstance(p, Correction) else "retraction", what_changed=p.what_changed,
                     reason=p.reason, at=event.published_at or event.occurred_at)


def _golive(event: Event) -> GoLiveFacts | None:
    if not isinstance(event, GoLiveMilestoneReached):
        return None
    g = event.payload
    return GoLiveFacts(area=g.area, wave=g.wave, planned_date=g.planned_date, state=g.status)


class IntranetComposer:
    templates: tuple[str, ...] = ("intranet/item.html.j2",)

    def compose(self, c: Composition, renderer: Renderer) -> Iterator[PublishIntranetItem]:
        # An amendment replaces (or withdraws) its original's item: the item is the original as it now reads.
        event = c.amends or c.event
        item = renderer.intranet_item(event, c.program, c.audience_id)
        yield PublishIntranetItem(
            **_envelope(c), event_type=event.type, title=item.title, summary=item.summary,
            html_body=item.html, importance=event.importance.value,
            sensitivity="public" if event.sensitivity is Sensitivity.PUBLIC else "internal",
            occurred_at=event.occurred_at, published_at=c.published_at, audiences=c.planned_audiences,
            facts=item.facts, golive=_golive(event),
            phase=event.payload.phase if isinstance(event, StatusUpdated) else None,
            amendment=_amendment(c.event) if c.amends else None)

    def preview(self, command: DeliveryCommand) -> Preview:
        assert isinstance(command, PublishIntranetItem)
        return {".html": command.html_body}


def preview(event: Event, program: Program, audience: Audience, channel: str, renderer: Renderer,
            composers: Mapping[str, Composer] | None = None) -> Preview:
    """What `channel` would carry of `event` for `audience`, without sending (for a sample person)."""
    composer = (COMPOSERS if composers is None else composers)[channel]
    target = channel if CHANNELS[channel].reach is Reach.PROGRAMME else audience.id
    composition = Composition(event, program, target, None if target == channel else audience, (_SAMPLE,),
                              (audience.id,), event.published_at or event.occurred_at)
    command = next(iter(composer.compose(composition, renderer)))
    return composer.preview(command)


def check_templates(renderer: Renderer, program: Program, events: Iterable[Event],
                    composers: Mapping[str, "Composer"]) -> None:
    """Compose every sample event for every group and channel, so that a template that cannot render an
    event fails at start-up rather than at send time (raises TemplateProblem)."""
    sample = (_SAMPLE,)
    for event in events:
        for name, composer in composers.items():
            spec = CHANNELS[name]
            targets: list[tuple[str, Audience | None]] = (
                [(name, None)] if spec.reach is Reach.PROGRAMME else [(a.id, a) for a in program.audiences])
            for audience_id, audience in targets:
                list(composer.compose(Composition(event, program, audience_id, audience, sample, (), event.occurred_at),
                                      renderer))


COMPOSERS: dict[str, Composer] = {}


def register_composer(channel: str, composer: Composer) -> None:
    if channel in COMPOSERS:
        raise ValueError(f"channel {channel!r} has a composer already")
    COMPOSERS[channel] = composer


@contextmanager
def registered_composer(channel: str, composer: Composer) -> Iterator[None]:
    """A composer registered for a while (tests), removed afterwards."""
    register_composer(channel, composer)
    try:
        yield
    finally:
        COMPOSERS.pop(channel, None)


register_composer("email", EmailComposer())
register_composer("teams", TeamsComposer())
register_composer("intranet", IntranetComposer())


# Digests ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DigestComposition:
    """A digest for one target: a group (its people, or its channel), or the whole programme."""

    digest: Digest
    target: str  # the group's id, or the programme-wide channel's name
    recipients: Sequence[Recipient]
    published_at: datetime


class DigestComposer(Protocol):
    """A channel that carries digests: how a digest becomes its commands."""

    def digest(self, c: DigestComposition, renderer: Renderer) -> Iterable[DeliveryCommand]: ...


def _digest_envelope(c: DigestComposition) -> Envelope:
    return {"event_id": c.digest.id, "program": c.digest.program.program, "audience_id": c.target,
            "correlation_id": f"digest:{c.digest.period.label}"}


class EmailDigest:
    def digest(self, c: DigestComposition, renderer: Renderer) -> Iterator[SendEmail]:
        yield from emails(_digest_envelope(c), c.digest.program, render_email(c.digest, renderer), c.recipients,
                           bulk=True)


class TeamsDigest:
    def digest(self, c: DigestComposition, renderer: Renderer) -> Iterator[SendTeamsCard]:
        yield SendTeamsCard(**_digest_envelope(c), card=render_card(c.digest, renderer))


class IntranetDigest:
    def digest(self, c: DigestComposition, renderer: Renderer) -> Iterator[PublishIntranetItem]:
        d = c.digest
        item = render_item(d, renderer)
        yield PublishIntranetItem(
            **_digest_envelope(c), event_type="digest", title=item.title, summary=item.summary, html_body=item.html,
            importance="awareness", sensitivity="internal", occurred_at=d.period.end, published_at=c.published_at,
            audiences=(), facts=item.facts)


#: Channels that carry digests (a channel without an entry carries none).
DIGEST_COMPOSERS: dict[str, DigestComposer] = {"email": EmailDigest(), "teams": TeamsDigest(),
                                               "intranet": IntranetDigest()}
