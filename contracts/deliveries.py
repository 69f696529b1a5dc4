"""Delivery commands (tailor → channels), the delivery plan, outcomes and dead letters, version 1."""

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, EmailStr, Field

from contracts.base import Contract
from contracts.events import AudienceId, ProgramId

Channel = Literal["email", "teams", "intranet"]

#: The audience id under which the programme-wide intranet item is planned and counted.
INTRANET_AUDIENCE = "intranet"


class SendEmail(Contract):
    """One email to one person, already rendered for their target group."""

    event_id: UUID
    program: ProgramId
    audience_id: AudienceId
    recipient_id: Annotated[str, Field(min_length=1, max_length=128)]
    to_address: EmailStr
    to_name: str
    sender_name: str
    sender_address: EmailStr
    subject: Annotated[str, Field(min_length=1, max_length=300)]
    text_body: str
    html_body: str
    list_unsubscribe: str | None = None
    correlation_id: str | None = None

    @property
    def delivery_key(self) -> str:
        return f"{self.event_id}:{self.recipient_id}:email"


class SendTeamsCard(Contract):
    """One Adaptive Card to one target group's Teams channel (Workflows webhook)."""

    event_id: UUID
    program: ProgramId
    audience_id: AudienceId
    webhook_url: Annotated[str, Field(min_length=8, max_length=2000)]
    card: dict[str, Any]
    correlation_id: str | None = None

    @property
    def delivery_key(self) -> str:
        return f"{self.event_id}:{self.audience_id}:teams"


class PublishIntranetItem(Contract):
    """One news item for the intranet, rendered once for the whole organisation."""

    event_id: UUID
    program: ProgramId
    event_type: str
    title: str
    summary: str
    html_body: str
    importance: Literal["must_know", "awareness"]
    sensitivity: Literal["public", "internal"]
    occurred_at: AwareDatetime
    published_at: AwareDatetime
    audiences: tuple[AudienceId, ...]
    facts: dict[str, str] = Field(default_factory=dict)
    timeline_date: date | None = Field(default=None, description="go-live date, for the status page timeline")
    correlation_id: str | None = None

    @property
    def audience_id(self) -> str:
        return INTRANET_AUDIENCE

    @property
    def delivery_key(self) -> str:
        return f"{self.event_id}:intranet"


class PlannedGroup(Contract):
    audience_id: AudienceId
    name: str
    tier: str
    channels: tuple[Channel, ...]
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
    targeted: dict[str, dict[str, int]] = Field(
        description="audience id → channel → messages to be sent", default_factory=dict
    )
    embargoed_until: AwareDatetime | None = None


class EventPlanned(Contract):
    plan: DeliveryPlan
    status: Literal["planned", "embargoed"]
    planned_at: AwareDatetime


class DeliveryOutcome(Contract):
    event_id: UUID
    program: ProgramId
    channel: Channel
    audience_id: AudienceId
    recipient_id: str | None = None
    status: Literal["sent", "failed"]
    reason: str | None = None
    attempts: int = 1
    at: AwareDatetime


class DeadLetter(Contract):
    topic: str
    consumer: str
    reason: str
    payload: str
    at: datetime
