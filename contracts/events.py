"""Publisher events, version 1: one envelope, a payload per event type, and the registry of event types.

A published version never changes shape; a new shape is a new version.
"""

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Union, get_args
from uuid import UUID, uuid4

from pydantic import AfterValidator, AwareDatetime, Field, HttpUrl, TypeAdapter, ValidationError, model_validator

from contracts.base import Contract

#: The largest event, as JSON, that the platform accepts (the gateway answers 413 above it).
MAX_EVENT_BYTES = 256 * 1024

#: A programme's code, as programme files and every contract spell it.
PROGRAM_PATTERN = r"^[a-z][a-z0-9_-]{1,31}$"
ProgramId = Annotated[str, Field(pattern=PROGRAM_PATTERN)]
AudienceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]

_FORBIDDEN_IN_LINE = re.compile(r"[\x00-\x1f\x7f\ufffe\uffff]")
_FORBIDDEN_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def _refuse(forbidden: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        found = forbidden.search(value)
        if found:
            raise ValueError(f"contains the control character U+{ord(found.group()):04X} at position "
                             f"{found.start()}, which {what}")
        return value
    return check


#: One line of text: no control characters at all (a line break in a title would break a mail header) and
#: no U+FFFE/U+FFFF, which XML 1.0 (the Atom feed) cannot carry.
_one_line = AfterValidator(_refuse(_FORBIDDEN_IN_LINE, "a one-line field, a mail header or a feed cannot carry"))
#: Running text: line breaks and tabs, but no other control characters and no U+FFFE/U+FFFF.
_running_text = AfterValidator(_refuse(_FORBIDDEN_IN_TEXT, "pages and feeds cannot carry"))

#: What the schema says of the same rules (the validators above give the reasons): a client generating
#: data from the document (Schemathesis) meets the rules the API enforces.
_LINE_PATTERN = {"pattern": r"^[^\x00-\x1f\x7f\ufffe\uffff]*$"}
_TEXT_PATTERN = {"pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]*$"}

Line64 = Annotated[str, Field(min_length=1, max_length=64, json_schema_extra=_LINE_PATTERN), _one_line]
Line100 = Annotated[str, Field(min_length=1, max_length=100, json_schema_extra=_LINE_PATTERN), _one_line]
Line200 = Annotated[str, Field(min_length=1, max_length=200, json_schema_extra=_LINE_PATTERN), _one_line]
Title = Line200
Text = Annotated[str, Field(min_length=1, max_length=20_000, json_schema_extra=_TEXT_PATTERN), _running_text]


def _plausible(value: datetime) -> datetime:
    """Instants written in the years 2000 to 2099: anything else is a typo, and an extreme offset at the edge of
    the calendar cannot even be converted to UTC by the services downstream."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("instant lies outside the calendar once converted to UTC") from None
    if not 2000 <= value.year < 2100:
        raise ValueError("instant must lie between the years 2000 and 2100")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_plausible),
                    Field(json_schema_extra={"pattern": "^20[0-9]{2}-", "description": "in the years 2000 to 2099"})]


class Importance(StrEnum):
    MUST_KNOW = "must_know"
    AWARENESS = "awareness"


class Sensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"


def _now() -> datetime:
    return datetime.now(UTC)


class Cascade(Contract):
    """Managers first: the managers of the people an event reaches get it before their staff, with talking points
    for the workplace meeting, and confirm that they took it up there."""

    talking_points: Annotated[str, Field(min_length=1, max_length=5000, description="samtalsstöd: what a manager "
                                                                                     "says and asks at the meeting")]
    managers_before_hours: int = Field(default=24, ge=1, le=24 * 14, description="how long before their staff")


class Envelope(Contract):
    event_id: UUID = Field(default_factory=uuid4)
    version: Literal[1] = 1
    program: ProgramId
    occurred_at: Instant = Field(default_factory=_now)
    published_at: Instant | None = None
    publisher: Line200
    correlation_id: Annotated[str, Field(max_length=200, json_schema_extra=_LINE_PATTERN), _one_line] | None = None
    importance: Importance
    sensitivity: Sensitivity = Sensitivity.INTERNAL
    embargo_until: Instant | None = None
    regions: tuple[Line64, ...] | None = None
    audiences: tuple[AudienceId, ...] | None = None
    language: Literal["sv", "en"] = "sv"
    cascade: Cascade | None = Field(default=None, description="managers first: their staff hear it this long later")
    acknowledge_by: Instant | None = Field(
        default=None, description="must-know news only: each person is asked to acknowledge it "
                                  "(\"Jag har tagit del av informationen\") by this instant, and reminded until then")

    @model_validator(mode="after")
    def _acknowledgement(self) -> "Envelope":
        if self.acknowledge_by is None:
            return self
        if self.importance is not Importance.MUST_KNOW:
            raise ValueError("acknowledge_by: only must-know news asks for an acknowledgement")
        if self.embargo_until is not None and self.acknowledge_by <= self.embargo_until:
            raise ValueError("acknowledge_by: the deadline must come after the embargo lifts")
        return self


class Appeal(Contract):
    """How and by when an appealable decision can be appealed."""

    how: Text = Field(description="e.g. laglighetsprövning hos förvaltningsrätten, and where to send it")
    by: date = Field(description="the last day an appeal can come in")


class Provenance(Contract):
    """Where a decision is recorded: what a reader needs to find it in the register and the minutes."""

    registration_number: Line64 = Field(description="diarienummer, e.g. RS 2022-01234")
    minutes_paragraph: Line64 = Field(description="the minutes' paragraph, e.g. § 112")
    meeting_date: date
    body: Line200 = Field(description="the deciding body, e.g. Regionstyrelsen")
    appeal: Appeal | None = Field(default=None, description="for an appealable decision")


class SteeringDecision(Contract):
    committee: Line200
    decision_code: Annotated[str, Field(pattern=r"^[A-Z]{1,3}[0-9]{1,3}$")] | None = None
    title: Title
    decision_text: Text
    rationale: Text | None = None
    consequences: Text | None = None
    effective_date: date | None = None
    read_more_url: HttpUrl | None = None
    provenance: Provenance | None = None


class DesignDecision(Contract):
    workstream: Line200
    level: Literal["workstream", "clinical_leadership"]
    title: Title
    summary: Text
    affected_professions: tuple[Line100, ...] = ()
    affected_processes: tuple[Line200, ...] = ()
    effective_date: date | None = None
    read_more_url: HttpUrl | None = None
    provenance: Provenance | None = None


#: Where an area's go-live stands.
GoLiveState = Literal["planned", "rescheduled", "started", "completed"]


class GoLiveMilestone(Contract):
    area: Line64
    wave: Line100 | None = None
    planned_date: date
    status: GoLiveState
    title: Title
    what_changes: Text
    previous_date: date | None = None
    read_more_url: HttpUrl | None = None


class Milestone(Contract):
    title: Title
    date: date


class StatusUpdate(Contract):
    title: Title
    summary: Text
    phase: Annotated[str, Field(max_length=200, json_schema_extra=_LINE_PATTERN), _one_line] | None = None
    next_milestones: tuple[Milestone, ...] = ()
    read_more_url: HttpUrl | None = None


class NewsletterSection(Contract):
    heading: Title
    body: Text


class NewsletterIssue(Contract):
    title: Title
    intro: Text | None = None
    sections: tuple[NewsletterSection, ...] = Field(min_length=1)
    send_at: Instant | None = None


class Correction(Contract):
    """A correction of an earlier event (or of a correction of it): it reaches exactly those the original
    reached, on the channels it reached them by, and the original's intranet item shows it."""

    corrects: UUID = Field(description="the event corrected: the original, or an earlier correction of it")
    title: Title = Field(description="the corrected message's title, as people see it after 'Rättelse:'")
    what_changed: Text = Field(description="what changed, in a sentence or two")
    reason: Text = Field(description="why it was corrected")
    corrected: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")], Any] = Field(
        min_length=1, max_length=50, json_schema_extra={"additionalProperties": False},
        description="the original's payload fields that change, by name, with their new values (checked against the "
                    "original's type)")


class Retraction(Contract):
    """An earlier event withdrawn: those it reached are told, and its intranet item is marked 'Återkallad'."""

    corrects: UUID = Field(description="the event withdrawn: the original, or a correction of it")
    title: Title = Field(description="the withdrawn message's title, as people see it after 'Återkallat:'")
    reason: Text = Field(description="why it was withdrawn")
    what_changed: Text | None = Field(default=None, description="what holds instead, if anything")


class SteeringDecisionMade(Envelope):
    type: Literal["steering.decision"]
    payload: SteeringDecision


class DesignDecisionMade(Envelope):
    type: Literal["design.decision"]
    payload: DesignDecision


class GoLiveMilestoneReached(Envelope):
    type: Literal["golive.milestone"]
    payload: GoLiveMilestone


class StatusUpdated(Envelope):
    type: Literal["status.update"]
    payload: StatusUpdate


class NewsletterIssued(Envelope):
    type: Literal["newsletter.issue"]
    payload: NewsletterIssue


class CorrectionIssued(Envelope):
    type: Literal["correction"]
    payload: Correction


class RetractionIssued(Envelope):
    type: Literal["retraction"]
    payload: Retraction


#: The event types that amend an earlier event: they reach whom it reached, never planned on their own.
AMENDMENTS = ("correction", "retraction")


#: Every event type this code knows, for the type checker. At run time the registry below is what counts: an
#: event type registered there (`register_event_type`) is parsed, planned, rendered and delivered too.
Event = Annotated[
    SteeringDecisionMade | DesignDecisionMade | GoLiveMilestoneReached | StatusUpdated | NewsletterIssued
    | CorrectionIssued | RetractionIssued,
    Field(discriminator="type"),
]


# The event type registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventType:
    """One event type, named once: its model, the topic it travels on, what people call it, the templates
    that render it and where a digest tells it. Adding one is a model, one `register_event_type` line and
    its two templates (`templates/parts/<part>.html.j2` and `.txt.j2`)."""

    model: type[Envelope]  # an Envelope with `type: Literal[<name>]` and a `payload` with a `title`
    label: str  # in Swedish, in messages, digests and pages: "Styrgruppsbeslut"
    samples: tuple[Mapping[str, Any], ...]  # payloads that every template is checked with at start-up
    digest_section: int | None = None  # where its section comes in a digest (lowest first); None: never in one
    bulk: bool = False  # bulk mail (a newsletter): people may decline it, each copy carries unsubscribe links
    version: int = 1

    @property
    def name(self) -> str:
        return _type_name(self.model)

    @property
    def topic(self) -> str:
        return f"events.{self.name}.v{self.version}"

    @property
    def part(self) -> str:
        """The template part: `templates/parts/<part>.html.j2` and `.txt.j2`."""
        return self.name.replace(".", "_")


def _type_name(model: type[Envelope]) -> str:
    annotation = model.model_fields["type"].annotation
    names = get_args(annotation)
    if len(names) != 1 or not isinstance(names[0], str):
        raise ValueError(f"{model.__name__}.type must be Literal[<one name>]")
    return names[0]


#: The registry: event type name → its definition, in the order registered.
EVENT_TYPES: dict[str, EventType] = {}
_adapter: list[TypeAdapter[Any]] = []


def register_event_type(event_type: EventType) -> EventType:
    if not event_type.samples:
        raise ValueError(f"event type {event_type.name!r} has no samples to check its templates with")
    if event_type.name in EVENT_TYPES and EVENT_TYPES[event_type.name] != event_type:
        raise ValueError(f"event type {event_type.name!r} is registered already")
    EVENT_TYPES[event_type.name] = event_type
    _adapter.clear()
    return event_type


@contextmanager
def registered_event_type(event_type: EventType) -> Iterator[EventType]:
    """An event type registered for a while (tests, tools), removed afterwards."""
    register_event_type(event_type)
    try:
        yield event_type
    finally:
        EVENT_TYPES.pop(event_type.name, None)
        _adapter.clear()


def event_adapter() -> TypeAdapter[Event]:
    """Validates an event of any registered type (a discriminated union on `type`)."""
    if not _adapter:
        models = tuple(t.model for t in EVENT_TYPES.values())
        union: Any = Union[models]  # noqa: UP007 - a union of the registered models, built at run time
        _adapter.append(TypeAdapter(Annotated[union, Field(discriminator="type")]))
    return _adapter[0]


def event_type(name: str) -> EventType:
    return EVENT_TYPES[name]


def event_topics() -> tuple[str, ...]:
    return tuple(t.topic for t in EVENT_TYPES.values())


def parse_event(data: bytes | str | Mapping[str, object]) -> Event:
    """Validate one event from JSON text or a decoded mapping; raises pydantic.ValidationError."""
    if isinstance(data, Mapping):
        return event_adapter().validate_python(data)
    return event_adapter().validate_json(data)


register_event_type(EventType(SteeringDecisionMade, "Styrgruppsbeslut", digest_section=1, samples=(
    {"committee": "Regionstyrelsen", "decision_code": "B3", "title": "Ny tidplan för införandet",
     "decision_text": "Regionstyrelsen godkänner avsiktsförklaringen och den nya tidplanen.",
     "rationale": "Förhandlingarna med leverantören har gett en tidplan som håller.",
     "consequences": "Södra området inför hösten 2024, norra och östra våren 2026, västra hösten 2026.",
     "effective_date": "2022-05-17", "read_more_url": "https://www.vgregion.se/fvm",
     "provenance": {"registration_number": "RS 2022-03301", "minutes_paragraph": "§ 112", "meeting_date": "2022-05-17",
                    "body": "Regionstyrelsen", "appeal": {
                        "how": "Beslutet kan överklagas genom laglighetsprövning hos förvaltningsrätten.",
                        "by": "2022-06-15"}}},
    {"committee": "Programstyrgrupp", "title": "Beslut", "decision_text": "Beslutet."})))
register_event_type(EventType(DesignDecisionMade, "Designbeslut", digest_section=2, samples=(
    {"workstream": "Vårdadministration", "level": "clinical_leadership", "title": "Nytt arbetssätt vid utskrivning",
     "summary": "Utskrivningsprocessen blir gemensam i hela regionen.",
     "affected_professions": ["läkare", "sjuksköterska"], "affected_processes": ["Utskrivning"],
     "effective_date": "2024-09-01", "read_more_url": "https://www.vgregion.se/fvm",
     "provenance": {"registration_number": "FVM 2020-00154", "minutes_paragraph": "§ 12",
                    "meeting_date": "2020-06-10", "body": "FVM Klinisk ledning"}},
    {"workstream": "Läkemedel", "level": "workstream", "title": "Beslut", "summary": "Sammanfattning."})))
register_event_type(EventType(GoLiveMilestoneReached, "Införande", digest_section=3, samples=(
    {"area": "södra", "wave": "Våg 1", "planned_date": "2024-10-01", "status": "rescheduled",
     "previous_date": "2024-04-01", "title": "Södra området inför Millennium",
     "what_changes": "Vårdpersonal i södra området börjar arbeta i Millennium.",
     "read_more_url": "https://www.vgregion.se/fvm"},
    {"area": "västra", "planned_date": "2026-10-01", "status": "planned", "title": "Västra",
     "what_changes": "Allt."})))
register_event_type(EventType(StatusUpdated, "Lägesrapport", digest_section=4, samples=(
    {"title": "Lägessummering", "summary": "Arbetet med konfigurationen går enligt plan.",
     "phase": "Införandeförberedelser", "next_milestones": [{"title": "Utbildning startar", "date": "2024-06-01"}],
     "read_more_url": "https://www.vgregion.se/fvm"},
    {"title": "Läget", "summary": "Inget nytt."})))
register_event_type(EventType(NewsletterIssued, "Nyhetsbrev", digest_section=5, bulk=True, samples=(
    {"title": "Nyhetsbrev juni", "intro": "Det här har hänt sedan sist.",
     "sections": [{"heading": "Utbildning", "body": "Utbildningen börjar i juni."}],
     "send_at": "2024-06-01T08:00:00+02:00"},
    {"title": "Nyhetsbrev", "sections": [{"heading": "Rubrik", "body": "Text."}]})))
register_event_type(EventType(CorrectionIssued, "Rättelse", samples=(
    {"corrects": "00000000-0000-4000-8000-000000000001", "title": "Ny tidplan för införandet",
     "what_changed": "Södra området inför hösten 2024, inte våren.", "reason": "Fel datum i det första utskicket.",
     "corrected": {"consequences": "Södra området inför hösten 2024."}},)))
register_event_type(EventType(RetractionIssued, "Återkallelse", samples=(
    {"corrects": "00000000-0000-4000-8000-000000000001", "title": "Ny tidplan för införandet",
     "reason": "Beslutet var inte fattat ännu.", "what_changed": "Tidplanen gäller inte; ett nytt besked kommer."},
    {"corrects": "00000000-0000-4000-8000-000000000001", "title": "Beslut", "reason": "Skickat av misstag."})))


def apply_correction(original: Event, correction: Correction) -> Event:
    """The original as the correction says it should read: its payload's fields replaced by the corrected ones,
    checked by the original's type. ValueError names each field that does not fit, by its path in the
    correction (`corrected.<field>…`)."""
    unknown = sorted(set(correction.corrected) - set(type(original.payload).model_fields))
    if unknown:
        raise ValueError("; ".join(f"corrected.{name}: {original.type} has no such field" for name in unknown))
    body: dict[str, Any] = original.model_dump(mode="json")
    body["payload"] = {**body["payload"], **correction.corrected}
    try:
        return parse_event(body)
    except ValidationError as exc:
        raise ValueError("; ".join(f"corrected.{'.'.join(str(p) for p in e['loc'][2:])}: {e['msg']}"
                                   for e in exc.errors(include_input=False, include_url=False))) from exc
