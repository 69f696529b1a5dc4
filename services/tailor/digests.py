"""Pure: what a target group's digest says for a period. The events of the period the group follows and
may see (policy rule 2), in sections per event type; the programme's current status; the timeline as it
stands. A quiet period still says where the programme is ("Inget nytt sedan …" is a message too)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from contracts.deliveries import PersonalLink
from contracts.events import EVENT_TYPES, Event, GoLiveMilestoneReached, StatusUpdated
from contracts.schedule import Period, digest_id
from programs import Audience, Program, Tier
from programs.timeline import AreaUpdate, Step, current_timeline
from services.tailor import policy
from services.tailor.rendering import (
    SLOT_MARKS,
    SUBJECT_LIMIT,
    RenderedEmail,
    RenderedItem,
    Renderer,
    adaptive_card,
    fit,
    summary_of,
)


@dataclass(frozen=True)
class Entry:
    event_id: UUID
    title: str
    summary: str
    published_at: datetime


@dataclass(frozen=True)
class Section:
    label: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Digest:
    id: UUID
    program: Program
    audience: Audience
    period: Period
    period_label: str  # "november 2026", "vecka 47 2026"
    sections: tuple[Section, ...]
    status: Entry | None  # the latest status update up to the period's end
    phase: str | None
    timeline: tuple[Step, ...]
    quiet_since: datetime | None  # a quiet period: when the group last had news (None: never)

    @property
    def monthly(self) -> bool:
        return "W" not in self.period.label

    @property
    def is_quiet(self) -> bool:
        return not self.sections


def for_group(event: Event, audience: Audience) -> bool:
    """A group's digest tells what it follows and may see: never what policy rule 2 keeps from it."""
    return event.type in audience.follows and policy.sensitivity_refusal(event, audience) is None


def _entry(event: Event) -> Entry:
    assert event.published_at is not None
    return Entry(event.event_id, event.payload.title, summary_of(event), event.published_at)


def build_digest(program: Program, audience: Audience, period: Period, period_label: str,
                 in_period: Sequence[Event], history: Sequence[Event], also: Sequence[Audience] = ()) -> Digest:
    """`in_period`: the programme's events published in the period; `history`: its events before the
    period's end, oldest first (for the status, the timeline and "nothing new since"). `also`: other groups
    of the readers whose sections the digest carries too (one digest per person, in `audience`'s variant)."""
    followed = (audience, *also)
    mine = [e for e in in_period if any(for_group(e, g) for g in followed)]
    order = sorted((t for t in EVENT_TYPES.values() if t.digest_section is not None),
                   key=lambda t: t.digest_section or 0)
    sections = tuple(Section(t.label, tuple(_entry(e) for e in mine if e.type == t.name))
                     for t in order if any(e.type == t.name for e in mine))
    visible = [e for e in history if policy.sensitivity_refusal(e, audience) is None and e.published_at]
    statuses = [e for e in visible if isinstance(e, StatusUpdated)]
    golives = [AreaUpdate(e.payload.area, e.payload.planned_date, e.payload.status, e.payload.title,
                          e.payload.wave, str(e.event_id)) for e in visible if isinstance(e, GoLiveMilestoneReached)]
    latest_status = statuses[-1] if statuses else None
    earlier = [e for e in history if any(for_group(e, g) for g in followed) and e.published_at
               and e.published_at < period.start]
    phase = (latest_status.payload.phase if latest_status and latest_status.payload.phase else
             program.baseline.phase if program.baseline else None)
    return Digest(
        id=digest_id(program.program, audience.id, period.label), program=program, audience=audience, period=period,
        period_label=period_label, sections=sections, status=_entry(latest_status) if latest_status else None,
        phase=phase, timeline=tuple(current_timeline(program.baseline, golives)),
        quiet_since=earlier[-1].published_at if earlier and not sections else None)


# Rendering ------------------------------------------------------------------------------------------------

#: The programme-wide reader of the monthly summary on the intranet: staff, never cleared for confidential.
INTRANET_READER = Audience(id="intranet", name="Intranätet", tier=Tier.PRIMARY, members={"organisation": ("*",)})

#: Every template a digest renders (checked at start-up like the event templates).
TEMPLATES = ("digest/email.txt.j2", "digest/email.html.j2", "digest/body.html.j2", "digest/teams.md.j2",
             "digest/intranet.html.j2")


def heading(d: Digest) -> str:
    kind = "Lägessummering" if d.monthly else "Veckosammanfattning"
    return f"{kind} {d.period_label}"


def _context(d: Digest, renderer: Renderer, personal: bool) -> dict[str, Any]:
    """The templates' context, with the digest's own follow-up questions (a person's own in an email)."""
    return {**renderer.follow_up(d.program, d.id, d.audience.id, personal), "digest": d, "program": d.program,
            "audience": d.audience, "tone": d.audience.tone,
            "sender": policy.sender_for(d.program), "heading": heading(d),
            "co_brand": d.program.brand.co_brand if d.audience.co_branded else None,
            "personal_link": SLOT_MARKS[PersonalLink.PREFERENCES]}


def render_email(d: Digest, renderer: Renderer) -> RenderedEmail:
    program, ctx = d.program, _context(d, renderer, personal=True)
    subject = policy.expand_first_mention(f"{program.acronym}: {heading(d)}", program.acronym, program.first_mention)
    return RenderedEmail(
        subject=fit(subject, SUBJECT_LIMIT),
        text=policy.expand_first_mention(renderer.render_text("digest/email.txt.j2", ctx), program.acronym,
                                         program.first_mention),
        html=policy.expand_first_mention_html(renderer.render_html("digest/email.html.j2", ctx), program.acronym,
                                              program.first_mention))


def render_card(d: Digest, renderer: Renderer) -> dict[str, Any]:
    """An Adaptive Card 1.5 for the group's Teams channel."""
    program, ctx = d.program, _context(d, renderer, personal=False)
    body = policy.expand_first_mention(renderer.render_text("digest/teams.md.j2", ctx), program.acronym,
                                       program.first_mention)
    return adaptive_card(program.first_mention.upper(), heading(d), body, program,
                         ("Se läget", f"{renderer.public_url}/intranet/status?program={program.program}"),
                         questions=ctx["questions"])


def render_item(d: Digest, renderer: Renderer) -> RenderedItem:
    program = d.program
    html = renderer.render_html("digest/intranet.html.j2", _context(d, renderer, personal=False))
    summary = (f"Inget nytt under {d.period_label}; läget och tidplanen just nu." if d.is_quiet else
               f"Det här hände under {d.period_label}: " + "; ".join(
                   f"{s.label.lower()} ({len(s.entries)})" for s in d.sections) + ".")
    return RenderedItem(title=f"{heading(d)}", summary=summary,
                        html=policy.expand_first_mention_html(html, program.acronym, program.first_mention),
                        facts={"Typ": "Lägessummering", "Period": d.period_label})
