"""Delivery commands (tailor → channels), the delivery plan, outcomes and dead letters.

Every delivery command shares one base (`DeliveryCommand`); a channel's command adds only what that
channel needs. Commands carry no secrets: a Teams command names its target group, and the Teams
service resolves the webhook itself.
"""

import hashlib
from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Literal
from uuid import UUID

from pydantic import AwareDatetime, BeforeValidator, EmailStr, Field, model_validator

from contracts.base import Contract
from contracts.events import AudienceId, GoLiveState, Line64, Line100, Line200, ProgramId
from contracts.lifecycle import OutcomeStatus, PlanStatus

#: A channel's name, as the channel registry (`contracts.channels`) and programme files spell it.
ChannelName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")]

#: Most recipients one email command carries: the group's message travels once per chunk, not per person.
EMAIL_CHUNK = 250

#: The largest message the bus carries (Kafka's default `message.max.bytes`, and the producers' limit). The
#: gateway refuses an event whose rendered message could not travel as one (`admission.rendered_size`).
MAX_BUS_MESSAGE_BYTES = 1024 * 1024
#: What a command needs besides the event's own text: the templates' markup and a chunk of recipients.
COMMAND_OVERHEAD_BYTES = 128 * 1024


class DeliveryCommand(Contract):
    """What every delivery command carries. `channel` is the channel's name; `version` its contract version."""

    channel: ClassVar[str]
    version: ClassVar[int]

    event_id: UUID
    program: ProgramId
    audience_id: AudienceId
    correlation_id: Annotated[str, Field(max_length=200)] | None = None
    follows: UUID | None = Field(default=None, description=(
        "a correction's or a retraction's original event: each delivery goes only where the channel delivered "
        "the original (the same person or group), and after it; where the original failed, nothing is sent"))

    def follows_key(self, recipient_id: str | None = None) -> str | None:
        """The ledger key of the original's delivery that this one follows, if it follows one."""
        return None if self.follows is None else f"{self.follows}:{recipient_id or self.audience_id}:{self.channel}"

    def delivery_key(self, recipient_id: str | None = None) -> str:
        """The ledger key of one delivery: per person for person channels, per group otherwise."""
        return f"{self.event_id}:{recipient_id or self.audience_id}:{self.channel}"

    @property
    def bus_key(self) -> str:
        return f"{self.event_id}:{self.audience_id}"

    @property
    def deliveries(self) -> int:
        """How many deliveries the command carries: one per person for person channels, one otherwise."""
        return 1

    def recipient_ids(self) -> tuple[str | None, ...]:
        """Each delivery's recipient: the people of a person channel's command, None for a group's."""
        return (None,)


class EmailRecipient(Contract):
    id: Annotated[str, Field(min_length=1, max_length=128)]
    address: EmailStr
    name: Annotated[str, Field(max_length=200)]


class PersonalLink(StrEnum):
    """A person's own link token in a mail: the email service signs it for each recipient."""

    PREFERENCES = "preferences"  # their preference centre (`/preferences/…`, `/unsubscribe/…`): bulk mail
    FEEDBACK = "feedback"  # their answers and counted reads (`/feedback/…`, `/r/…`): every event's mail


class Slot(Contract):
    """Where a body made once for a whole group wants a person's own link token."""

    slot: PersonalLink


def _as_parts(value: object) -> object:
    return ((value,) if value else ()) if isinstance(value, str) else value


#: A body made once for a whole group: text, and slots where each person's own link token goes. A plain string
#: is a body without slots.
PersonalText = Annotated[tuple[str | Slot, ...], BeforeValidator(_as_parts)]


def fill(body: PersonalText, tokens: Mapping[PersonalLink, str]) -> str:
    """The body with each slot's token (a slot without a token: empty)."""
    return "".join(part if isinstance(part, str) else tokens.get(part.slot, "") for part in body)


class SendEmail(DeliveryCommand):
    """One target group's rendered email and a chunk of its recipients; the email service adds what is
    personal (To, message id, the link tokens in the bodies' slots) at send time."""

    channel: ClassVar[str] = "email"
    version: ClassVar[int] = 5  # 3: `bulk`; 4: the personal links are typed slots in the bodies; 5: `follows`

    sender_name: Annotated[str, Field(min_length=1, max_length=200)]
    sender_address: EmailStr
    subject: Annotated[str, Field(min_length=1, max_length=300)]
    text_body: PersonalText
    html_body: PersonalText
    recipients: tuple[EmailRecipient, ...] = Field(min_length=1, max_length=EMAIL_CHUNK)
    bulk: bool = Field(default=False, description=(
        "a newsletter or digest: each person's copy gets their own preference link (in the bodies' "
        "`preferences` slots), the RFC 8058 List-Unsubscribe headers and, when configured, a DKIM signature"))

    @property
    def personal_links(self) -> frozenset[PersonalLink]:
        """The links the bodies want made each person's own."""
        return frozenset(p.slot for body in (self.text_body, self.html_body) for p in body if isinstance(p, Slot))

    @property
    def bus_key(self) -> str:
        """Chunks of one group spread over the partitions (so over the email replicas); a chunk's repeats
        keep its key."""
        return f"{self.event_id}:{self.audience_id}:{self.recipients[0].id}"

    @property
    def deliveries(self) -> int:
        return len(self.recipients)

    def recipient_ids(self) -> tuple[str | None, ...]:
        return tuple(r.id for r in self.recipients)


class SendTeamsCard(DeliveryCommand):
    """One Adaptive Card to one target group's Teams channel; the Teams service knows the group's webhook."""

    channel: ClassVar[str] = "teams"
    version: ClassVar[int] = 3  # 3: `follows`

    card: dict[str, Any]


class GoLiveFacts(Contract):
    """Where and when an area goes live, as a go-live item tells it: the status page lays it over the plan."""

    area: Line64
    wave: Line100 | None = None
    planned_date: date
    state: GoLiveState


class Amendment(Contract):
    """What a correction or a retraction says of the item it amends, shown on the item."""

    kind: Literal["correction", "retraction"]
    what_changed: Annotated[str, Field(max_length=20_000)] | None = None
    reason: Annotated[str, Field(max_length=20_000)]
    at: AwareDatetime


class PublishIntranetItem(DeliveryCommand):
    """One news item for the intranet, rendered once for the whole organisation. Version 3: what the pages
    need beyond the text (a go-live's area, date and state; a status update's phase) is typed, not read back
    from the facts labelled for people. Version 4: a correction or a retraction (`follows`, `amendment`)
    replaces the original's item, whose earlier text the intranet keeps in the item's history."""

    channel: ClassVar[str] = "intranet"
    version: ClassVar[int] = 4

    event_type: str
    title: str
    summary: str
    html_body: str
    importance: Literal["must_know", "awareness"]
    sensitivity: Literal["public", "internal"]
    occurred_at: AwareDatetime
    published_at: AwareDatetime
    audiences: tuple[AudienceId, ...]
    facts: dict[str, str] = Field(default_factory=dict, description="the key facts, labelled in Swedish for people")
    golive: GoLiveFacts | None = Field(default=None, description="a go-live item: for the status page's timeline")
    phase: Line200 | None = Field(default=None, description="a status update: the programme's phase")
    amendment: Amendment | None = Field(default=None, description="with `follows`: the item of that event is "
                                                                  "amended (its text replaced, or withdrawn)")


class PlannedGroup(Contract):
    audience_id: AudienceId
    name: str
    tier: str
    channels: tuple[ChannelName, ...]
    recipients: int
    reasons: tuple[str, ...]


class RefusedGroup(Contract):
    audience_id: AudienceId
    name: str
    rule: str
    reason: str


class DeliveryPlan(Contract):
    """What the tailor decided for one event, and why."""

    event_id: UUID
    program: ProgramId
    groups: tuple[PlannedGroup, ...]
    refused: tuple[RefusedGroup, ...]
    targeted: dict[str, dict[ChannelName, int]] = Field(
        description="audience id (or, for a programme-wide channel, the channel's name) → channel → messages",
        default_factory=dict,
    )
    embargoed_until: AwareDatetime | None = None


class EventPlanned(Contract):
    """The tailor's plan of an event: held (`embargoed`, until `plan.embargoed_until`) or going out now
    (`planned`, which is also the scheduler's receipt that a held event was released)."""

    plan: DeliveryPlan
    status: PlanStatus
    planned_at: AwareDatetime

    @property
    def held_until(self) -> datetime | None:
        """Until when the event is held; None once it goes out."""
        return self.plan.embargoed_until if self.status is PlanStatus.EMBARGOED else None

    @property
    def released(self) -> bool:
        return self.status is PlanStatus.PLANNED


class DeliveriesScheduled(Contract):
    """Some of an event's deliveries are due at a later instant: what waited for a target group's quiet hours
    to end (rule 10), a reminder before an acknowledgement deadline. The scheduler says when it comes (a
    `ReleaseDue` of the event) and the tailor sends, from its own record, whatever is due by then. Announced
    again after a tailor's start, for a scheduler that may not have heard it; keyed by event."""

    version: ClassVar[int] = 1

    event_id: UUID
    program: ProgramId
    at: AwareDatetime
    audiences: tuple[AudienceId, ...] = Field(min_length=1, description="the target groups concerned")
    reason: Annotated[str, Field(min_length=1, max_length=64, description="why, for people reading logs: "
                                 "'quiet hours', 'reminder'")]
    scheduled_at: AwareDatetime

    @property
    def bus_key(self) -> str:
        return str(self.event_id)


class FollowUpSent(Contract):
    """A delivery of its own that follows an event, sent to one target group: a reminder to those who had not
    acknowledged it, an escalation step, or the managers' briefing before their staff hear it (one per area of
    the managers). Its id is its deliveries' own, so that each person gets each once; it says how many it
    targeted per channel, so that follow-up counts its deliveries."""

    version: ClassVar[int] = 1

    follow_up_id: UUID
    event_id: UUID
    program: ProgramId
    audience_id: AudienceId
    kind: Literal["reminder", "email", "managers", "briefing"] = "reminder"
    area: Line64 | None = Field(default=None, description="a briefing's: the area of the managers it reached")
    sent_at: AwareDatetime
    targeted: dict[ChannelName, Annotated[int, Field(ge=0)]]

    @property
    def bus_key(self) -> str:
        return str(self.event_id)


def address_sha256(address: str) -> str:
    """How an address travels on the bus (`AddressBounced.address_sha256`): a hash of its lower-cased form."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


class AddressBounced(Contract):
    """A delivery status notification (RFC 3464) came back for one person's mail: a hard bounce (the address
    does not take mail) or a soft one (not for now). The email service read it and found the delivery by its
    envelope sender (VERP); the address travels only as a hash, for the tailor to check it is still the
    person's. Keyed by person."""

    version: ClassVar[int] = 1

    event_id: UUID = Field(description="the event or digest whose mail bounced")
    audience_id: AudienceId
    person_id: Annotated[str, Field(min_length=1, max_length=128)]
    address_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="of the lower-cased address")]
    kind: Literal["hard", "soft"]
    status: Annotated[str, Field(pattern=r"^[245]\.\d{1,3}\.\d{1,3}$", description="e.g. 5.1.1")]
    reason: Annotated[str, Field(max_length=300, description="the reporting server's diagnostic, without "
                                                             "addresses")] = ""
    bounced_at: AwareDatetime

    @property
    def bus_key(self) -> str:
        return self.person_id


class DigestSent(Contract):
    """A digest the tailor sent to one target (a group, or a programme-wide channel): what it is called and
    how many deliveries it targeted per channel, so that follow-up counts a digest as it counts an event."""

    version: ClassVar[int] = 1

    digest_id: UUID
    program: ProgramId
    audience_id: AudienceId
    period: Annotated[str, Field(pattern=r"^\d{4}-(W\d{2}|\d{2})$")]
    title: Annotated[str, Field(min_length=1, max_length=300)]
    sent_at: AwareDatetime
    targeted: dict[ChannelName, Annotated[int, Field(ge=0)]]

    @property
    def bus_key(self) -> str:
        return str(self.digest_id)


class DeliveryOutcome(Contract):
    """What became of one delivery. Version 2: a temporary refusal is `deferred`, with the next attempt's
    time; it ends as `sent` or, at the retry horizon or on a permanent refusal, `failed`."""

    version: ClassVar[int] = 2

    event_id: UUID
    program: ProgramId
    channel: ChannelName
    audience_id: AudienceId
    recipient_id: str | None = None
    status: OutcomeStatus
    reason: str | None = None
    attempts: int = 1
    next_attempt_at: AwareDatetime | None = None
    at: AwareDatetime


#: Most deliveries one command carries, so one `DeliveryOutcomes` message (an email chunk is 250).
OUTCOMES_PER_MESSAGE: Final = 500


class DeliveryOutcomes(Contract):
    """What became of one delivery command's deliveries (an email chunk's people, a group's card or item):
    how many were sent, failed or deferred, with the failed and deferred ones named and their reasons; sent
    ones are counted, not named (the channel's ledger is the one record of who got what). Version 4 of the
    outcome topic.

    Each message is the chunk's whole state so far, announced again when it changes (a deferred delivery
    sent later): a reader keeps the newest state per chunk, so a redelivered or repeated message counts
    once. A delivery only moves forward (not tried, deferred, then sent or failed), so the state with more
    ended deliveries is the newer one."""

    version: ClassVar[int] = 4

    event_id: UUID
    program: ProgramId
    channel: ChannelName
    audience_id: AudienceId
    chunk: Annotated[str, Field(min_length=1, max_length=300, description=(
        "the command's identity within the event, target group and channel (its bus key)"))]
    size: Annotated[int, Field(ge=1, le=OUTCOMES_PER_MESSAGE, description="deliveries the command carried")]
    sent: Annotated[int, Field(ge=0)]
    failed: Annotated[int, Field(ge=0)]
    deferred: Annotated[int, Field(ge=0)]
    unsent: tuple[DeliveryOutcome, ...] = Field(default=(), max_length=OUTCOMES_PER_MESSAGE, description=(
        "the failed and deferred deliveries, each with its reason (and, deferred, its next attempt)"))
    at: AwareDatetime

    @model_validator(mode="after")
    def _consistent(self) -> "DeliveryOutcomes":
        if self.sent + self.failed + self.deferred > self.size:
            raise ValueError(f"the chunk claims {self.sent + self.failed + self.deferred} deliveries "
                             f"but its command carried {self.size}")
        named = Counter(o.status for o in self.unsent)
        if named[OutcomeStatus.SENT] or named[OutcomeStatus.FAILED] != self.failed \
                or named[OutcomeStatus.DEFERRED] != self.deferred:
            raise ValueError("unsent names exactly the failed and deferred deliveries")
        if any((o.event_id, o.audience_id, o.channel) != (self.event_id, self.audience_id, self.channel)
               for o in self.unsent):
            raise ValueError("unsent deliveries are of the chunk's event, target group and channel")
        return self

    @property
    def ended(self) -> int:
        """Deliveries that will not be tried again."""
        return self.sent + self.failed

    @property
    def bus_key(self) -> str:
        """One chunk's states stay in order on one partition."""
        return f"{self.chunk}:{self.channel}"


class DeadLetter(Contract):
    topic: str
    consumer: str
    reason: str
    payload: str
    at: datetime
