"""A programme's configuration (`deploy/programs/<program>.yaml`): who it is, how it looks, its areas,
municipalities and target groups. Shared domain knowledge that every service may read."""

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from contracts.channels import CHANNELS, Reach
from contracts.deliveries import ChannelName
from contracts.events import EVENT_TYPES, AudienceId, Importance
from programs.quiet import QuietHours

#: Directory attributes a member selector may use.
DIRECTORY_ATTRIBUTES = ("organisation", "role", "profession", "area", "municipality", "options")


def _known_channels(names: tuple[str, ...], reaches: tuple[Reach, ...]) -> tuple[str, ...]:
    """Every name must be a registered channel plug-in of one of `reaches`."""
    for name in names:
        spec = CHANNELS.get(name)
        if spec is None:
            raise ValueError(f"no channel plug-in provides {name!r} (known: {', '.join(sorted(CHANNELS))})")
        if spec.reach not in reaches:
            raise ValueError(f"channel {name!r} reaches {spec.reach.value}s, not {' or '.join(reaches)}s")
    return names


class Tier(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    STAKEHOLDER = "stakeholder"
    PUBLIC = "public"


TIER_RANK = {Tier.PRIMARY: 0, Tier.SECONDARY: 1, Tier.STAKEHOLDER: 2, Tier.PUBLIC: 3}


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sender(Config):
    name: str = Field(min_length=1, max_length=200)
    address: EmailStr


class CoBrand(Config):
    name: str
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")


class Brand(Config):
    primary_color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    accent_color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    logo_text: str
    co_brand: CoBrand | None = None


class Municipality(Config):
    name: str
    area: str
    options: tuple[Literal[1, 2, 3], ...] = (1,)


class Audience(Config):
    id: AudienceId
    name: str = Field(min_length=1)
    tier: Tier
    external: bool = False
    cleared_for_confidential: bool = False
    tone: Literal["detailed", "standard", "plain"] = "standard"
    members: dict[str, tuple[str, ...]] = Field(min_length=1)
    channels: tuple[ChannelName, ...] = ("intranet",)
    teams_webhook_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")] | None = None
    digest: Literal["none", "weekly", "monthly"] = "none"
    follows: tuple[str, ...] = Field(default_factory=lambda: tuple(EVENT_TYPES))  # every registered type
    area_scoped: bool = False
    co_branded: bool = False
    quiet_hours: QuietHours | None = Field(default=None, description="e.g. \"21:00-07:00\" (Europe/Stockholm): "
                                           "only must-know alerts are pushed to the group's people in them")

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _known_channels(value, tuple(Reach))

    @model_validator(mode="after")
    def _check(self) -> "Audience":
        unknown = sorted(set(self.members) - set(DIRECTORY_ATTRIBUTES))
        if unknown:
            raise ValueError(
                f"member selector uses {unknown}, which the directory lacks "
                f"(it has {', '.join(DIRECTORY_ATTRIBUTES)})"
            )
        if any(not values for values in self.members.values()):
            raise ValueError("member selector has an attribute with no values")
        bad = sorted(set(self.follows) - set(EVENT_TYPES))
        if bad:
            raise ValueError(f"follows unknown event types {bad}")
        return self


class TimelineEntry(Config):
    """One step of the programme's plan: a go-live wave of an area, or a decision point (B1…B7)."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    title: str = Field(min_length=1, max_length=300)
    area: str | None = Field(default=None, description="a go-live wave's area: golive.milestone events update it")
    when: str = Field(min_length=1, max_length=60, description="as the plan says it: 'hösten 2024', '2020-Q4'")
    planned_date: date
    state: Literal["planned", "rescheduled", "started", "completed"] = "planned"


class Baseline(Config):
    """What the programme's plan says before any event: its phase and its timeline. Shown on the status page
    and in every digest, so a quiet period still tells where the programme stands."""

    phase: str = Field(min_length=1, max_length=200)
    timeline: tuple[TimelineEntry, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> "Baseline":
        ids = [e.id for e in self.timeline]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate timeline ids {dupes}")
        return self


class Role(StrEnum):
    """What a signed-in person may do in a programme. `member`: a person of the programme (reads its internal
    intranet items, answers through its groups' links); `reader`: also its follow-up figures; `editor` and
    `approver`: the console's work; `admin`: all of it, and what belongs to no programme."""

    MEMBER = "member"
    READER = "reader"
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"


#: The roles that include each role: an editor is a reader and a member, an admin everything.
INCLUDED_IN: dict[Role, frozenset[Role]] = {
    Role.MEMBER: frozenset(Role),
    Role.READER: frozenset({Role.READER, Role.EDITOR, Role.APPROVER, Role.ADMIN}),
    Role.EDITOR: frozenset({Role.EDITOR, Role.ADMIN}),
    Role.APPROVER: frozenset({Role.APPROVER, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.ADMIN}),
}

#: A value of the provider's roles claim (a group's name or id, as the region's provider gives it).
ClaimValue = Annotated[str, Field(min_length=1, max_length=256)]


class ApprovalTriggers(Config):
    """What makes an event need a second person's approval before anything of it is sent (any one suffices)."""

    importance: tuple[Importance, ...] = Field(default=(), description="e.g. [must_know]")
    external: bool = Field(default=False, description="an event to any external target group")
    recipients_over: int | None = Field(default=None, ge=0, description="more recipients than this, all groups "
                                                                        "and channels together")


class Approval(Config):
    """The programme's four-eyes rule (DESIGN.md, Governance)."""

    required_for: ApprovalTriggers
    expires_after_hours: int = Field(default=72, ge=1, le=24 * 30, description="a submission not decided within "
                                     "this long since it was submitted or last changed can no longer be approved")


class AcknowledgementRules(Config):
    """How must-know news that asks to be acknowledged by a deadline (`acknowledge_by`) follows up."""

    reminders_before_hours: tuple[Annotated[int, Field(ge=1, le=24 * 90)], ...] = Field(
        default=(24, 2), max_length=5, description="reminders to those who have not acknowledged, this many hours "
                                                   "before the deadline (the ones still ahead when it goes out)")

    escalate_after_hours: int | None = Field(
        default=None, ge=1, le=24 * 30, description="not acknowledged this long after the news went out: a group "
        "reached only by Teams gets it by email, and after as long again (or at once, for a group reached by "
        "email) each person's manager gets a short notice; absent: no escalation")

    @field_validator("reminders_before_hours")
    @classmethod
    def _distinct(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(value)) < len(value):
            raise ValueError("each reminder time once")
        return tuple(sorted(value, reverse=True))


class Program(Config):
    program: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")
    name: str
    acronym: str = Field(min_length=2)
    first_mention: str
    organisation: str
    sender: Sender
    brand: Brand
    publishes_to: tuple[ChannelName, ...] = Field(
        default=("intranet",), description="programme-wide channels that every event not confidential reaches")
    areas: tuple[str, ...] = ()
    municipalities: tuple[Municipality, ...] = ()
    baseline: Baseline | None = None
    audiences: tuple[Audience, ...] = Field(min_length=1)
    approval: Approval | None = Field(default=None, description="what needs approval (absent: nothing does)")
    acknowledgement: AcknowledgementRules = AcknowledgementRules()
    roles: dict[Role, tuple[ClaimValue, ...]] = Field(
        default_factory=dict, description="per role, the values of the sign-in's roles claim (e.g. the groups "
                                          "of the region's provider) whose holders have that role here")

    @field_validator("publishes_to")
    @classmethod
    def _publishes_to(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _known_channels(value, (Reach.PROGRAMME,))

    @model_validator(mode="after")
    def _check(self) -> "Program":
        if not self.first_mention.startswith(self.acronym):
            raise ValueError("first_mention must start with the acronym, e.g. 'FVM (Framtidens …)'")
        ids = [a.id for a in self.audiences]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate audience ids {dupes}")
        clash = sorted(set(ids) & set(self.publishes_to))
        if clash:  # a programme-wide channel is planned and counted under its own name
            raise ValueError(f"audience ids {clash} are taken by programme-wide channels")
        for m in self.municipalities:
            if self.areas and m.area not in self.areas:
                raise ValueError(f"municipality {m.name!r} is in unknown area {m.area!r}")
        for entry in self.baseline.timeline if self.baseline else ():
            if entry.area is not None and entry.area not in self.areas:
                raise ValueError(f"timeline entry {entry.id!r} is in unknown area {entry.area!r}")
        return self

    def audience(self, audience_id: str) -> Audience | None:
        return next((a for a in self.audiences if a.id == audience_id), None)


