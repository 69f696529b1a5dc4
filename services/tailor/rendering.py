"""Rendering one message per group and channel from `templates/` (Jinja2, autoescape, StrictUndefined).

Pure apart from reading templates: the same event, programme and group always render the same text.
"""

import copy
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from contracts.deliveries import PersonalLink, Slot
from contracts.events import (
    DesignDecisionMade,
    Event,
    GoLiveMilestoneReached,
    Provenance,
    StatusUpdated,
    SteeringDecisionMade,
    event_type,
)
from contracts.feedback import ANSWER_TEXT, ANSWERS, QUESTION_TEXT
from programs import Audience, Program
from programs.labels import GOLIVE_STATUS, TYPE_LABELS, sv_date
from services.common.links import FEEDBACK, FEEDBACK_TTL, LinkSigner, feedback_claims
from services.tailor import policy


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class RenderedItem:
    title: str
    summary: str
    html: str
    facts: dict[str, str]


#: Where a rendered mail wants a person's own link token, as the templates write it: control characters that no
#: event's text may contain, so that nothing a publisher writes is taken for one. `personal_text` makes them
#: the typed slots the email command carries; they never leave the tailor.
SLOT_MARKS: dict[PersonalLink, str] = {link: f"\x00{link.value}\x00" for link in PersonalLink}
_SLOT_MARK = re.compile("\x00(" + "|".join(PersonalLink) + ")\x00")
#: What a preview shows where a person's own link token would be.
PREVIEW_LINKS: dict[PersonalLink, str] = {link: "din-personliga-lank" for link in PersonalLink}


def personal_text(rendered: str) -> tuple[str | Slot, ...]:
    """A rendered body as text and typed slots."""
    parts: list[str | Slot] = []
    for i, piece in enumerate(_SLOT_MARK.split(rendered)):  # text, slot name, text, slot name, …, text
        if i % 2:
            parts.append(Slot(slot=PersonalLink(piece)))
        elif piece:
            parts.append(piece)
    return tuple(parts)


class TemplateProblem(Exception):
    """A template that cannot render an event; found at start-up, not at send time."""


def provenance_facts(provenance: Provenance | None) -> dict[str, str]:
    """Where a decision is recorded, and how to appeal it, as facts in plain Swedish."""
    if provenance is None:
        return {}
    out = {"Diarienummer": provenance.registration_number,
           "Protokoll": f"{provenance.body}, {sv_date(provenance.meeting_date)}, {provenance.minutes_paragraph}"}
    if provenance.appeal is not None:
        out["Överklagande"] = f"Senast {sv_date(provenance.appeal.by)}. {provenance.appeal.how}"
    return out


def facts(event: Event) -> dict[str, str]:
    """The key facts of an event, labelled in Swedish, shown as a fact list in every channel."""
    out = {"Typ": TYPE_LABELS[event.type]}
    if isinstance(event, SteeringDecisionMade):
        p = event.payload
        out["Beslutande organ"] = p.committee
        if p.decision_code:
            out["Beslutspunkt"] = p.decision_code
        if p.effective_date:
            out["Gäller från"] = sv_date(p.effective_date)
        out.update(provenance_facts(p.provenance))
    elif isinstance(event, DesignDecisionMade):
        d = event.payload
        out["Arbetsström"] = d.workstream
        out["Nivå"] = "FVM Klinisk ledning" if d.level == "clinical_leadership" else "Arbetsström"
        if d.affected_professions:
            out["Berörda yrken"] = ", ".join(d.affected_professions)
        if d.effective_date:
            out["Gäller från"] = sv_date(d.effective_date)
        out.update(provenance_facts(d.provenance))
    elif isinstance(event, GoLiveMilestoneReached):
        g = event.payload
        out["Område"] = g.area
        if g.wave:
            out["Våg"] = g.wave
        out["Datum"] = sv_date(g.planned_date)
        out["Status"] = GOLIVE_STATUS[g.status]
    elif isinstance(event, StatusUpdated) and event.payload.phase:
        out["Fas"] = event.payload.phase
    return out


def summary_of(event: Event) -> str:
    p = event.payload
    for name in ("summary", "decision_text", "what_changes", "intro"):
        value = getattr(p, name, None)
        if value:
            return str(value)
    return p.title


#: A subject's length limit: what an email command carries (mail clients show far less anyway).
SUBJECT_LIMIT = 300


def fit(text: str, limit: int) -> str:
    """`text`, or its longest beginning that ends at a word and leaves room for "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


@dataclass(frozen=True)
class Answer:
    text: str
    url: str


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    answers: tuple[Answer, ...]


def feedback_questions(base: str, token: str) -> tuple[Question, ...]:
    """The one-click questions every message asks, each answer a link carrying the message's signed token."""
    return tuple(Question(q, QUESTION_TEXT[q], tuple(Answer(ANSWER_TEXT[a], f"{base}/feedback/{token}?q={q}&a={a}")
                                                     for a in answers)) for q, answers in ANSWERS.items())


#: The words of the acknowledgement button in every message that asks for one.
ACKNOWLEDGE = "Jag har tagit del av informationen"


def adaptive_card(kicker: str, heading: str, body: str, program: Program, action: tuple[str, str],
                  facts: dict[str, str] | None = None, questions: tuple[Question, ...] = (),
                  acknowledge: str | None = None, ack_url: str = "") -> dict[str, Any]:
    """An Adaptive Card 1.5: kicker, heading, body text, the facts (if any), the acknowledgement (when asked:
    the group's link, which asks its reader to sign in), the one-click questions (if any, each answer an
    `Action.OpenUrl`), the sender, and one link."""
    blocks: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": kicker, "size": "Small", "weight": "Bolder", "color": "Accent", "wrap": True},
        {"type": "TextBlock", "text": heading, "size": "Large", "weight": "Bolder", "wrap": True, "style": "heading"},
        {"type": "TextBlock", "text": body.strip(), "wrap": True},
    ]
    if facts is not None:
        blocks.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts.items()]})
    if acknowledge is not None:
        blocks.append({"type": "ActionSet", "actions": [{"type": "Action.OpenUrl", "title": acknowledge,
                                                         "url": ack_url, "style": "positive"}]})
    for q in questions:
        blocks.append({"type": "TextBlock", "text": q.text, "weight": "Bolder", "wrap": True, "spacing": "Medium"})
        blocks.append({"type": "ActionSet", "actions": [{"type": "Action.OpenUrl", "title": a.text, "url": a.url}
                                                        for a in q.answers]})
    blocks.append({"type": "TextBlock", "text": f"Avsändare: {program.sender.name}", "size": "Small",
                   "isSubtle": True, "wrap": True})
    return {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.5", "body": blocks, "actions": [{"type": "Action.OpenUrl", "title": action[0],
                                                          "url": action[1]}]}


class Renderer:
    """Renders messages. `signer` signs the follow-up links of what a whole group sees (a Teams card, an
    intranet item); without one (previews, tests) they are signed with a key nobody else knows."""

    def __init__(self, templates_dir: Path, public_url: str, signer: LinkSigner | None = None) -> None:
        loader = FileSystemLoader(str(templates_dir))
        # Templates are read once (no check of the file at every render): what was checked at start-up
        # (`check_templates`) is what renders until the next start.
        self._html = Environment(loader=loader, autoescape=True, undefined=StrictUndefined,
                                 trim_blocks=True, lstrip_blocks=True, auto_reload=False)
        self._text = Environment(loader=loader, autoescape=False, undefined=StrictUndefined,
                                 trim_blocks=True, lstrip_blocks=True, auto_reload=False)
        for env in (self._html, self._text):
            env.filters["sv_date"] = sv_date
        self.public_url = public_url.rstrip("/")
        self.signer = signer or LinkSigner(secrets.token_bytes(32))

    def for_previews(self) -> "Renderer":
        """The same renderer, but its group links are signed with a key that nobody checks: a preview shows
        what a message looks like and never carries a working link, whatever event id its body names."""
        preview = copy.copy(self)
        preview.signer = LinkSigner(secrets.token_bytes(32))
        return preview

    def follow_up(self, program: Program, item_id: UUID, target: str, personal: bool) -> dict[str, Any]:
        """The follow-up links of a message about `item_id` (an event or a digest): its questions and its
        counted "Läs mer" (`read_url`). A person's own mail carries a feedback slot, which the email service
        fills with their own token; what a whole group sees carries the group's token, signed here."""
        token = SLOT_MARKS[PersonalLink.FEEDBACK] if personal else self.signer.sign(
            FEEDBACK, feedback_claims(program.program, str(item_id), target), FEEDBACK_TTL)
        return {"questions": feedback_questions(self.public_url, token), "read_url": f"{self.public_url}/r/{token}",
                "ack_url": f"{self.public_url}/ack/{token}"}

    def _context(self, event: Event, program: Program, audience: Audience | None,
                 follow_up: dict[str, Any] | None = None) -> dict[str, Any]:
        tone = audience.tone if audience else "standard"
        return {
            **(follow_up or {"questions": (), "read_url": "", "ack_url": ""}),
            "event": event,
            "p": event.payload,
            "program": program,
            "audience": audience,
            "tone": tone,
            "sender": policy.sender_for(program),
            "co_brand": program.brand.co_brand if audience is not None and audience.co_branded else None,
            "facts": facts(event),
            "type_label": TYPE_LABELS[event.type],
            "part": event_type(event.type).part,
            "base": self.public_url,
            # A newsletter is bulk mail: each person's copy links to their own preference page.
            "bulk": event_type(event.type).bulk,
            "personal_link": SLOT_MARKS[PersonalLink.PREFERENCES],
            "reminder": False,
        }

    def _render(self, env: Environment, name: str, ctx: dict[str, Any]) -> str:
        try:
            return env.get_template(name).render(ctx).strip() + "\n"
        except TemplateError as exc:
            what = ctx["event"].type if "event" in ctx else "a digest"
            raise TemplateProblem(f"templates/{name} for {what} ({ctx['tone']}): {exc}") from exc

    def render_text(self, name: str, ctx: dict[str, Any]) -> str:
        """A template of plain text (no escaping), with the public URL as `base`."""
        return self._render(self._text, name, {"base": self.public_url, **ctx})

    def render_html(self, name: str, ctx: dict[str, Any]) -> str:
        """An HTML template (autoescaped), with the public URL as `base`."""
        return self._render(self._html, name, {"base": self.public_url, **ctx})

    def subject(self, event: Event, program: Program, audience: Audience | None) -> str:
        """One line, at most SUBJECT_LIMIT characters: a long committee name and a long title together are
        cut at a word with "…", so that every accepted event can be sent (the full title is in the body)."""
        ctx = self._context(event, program, audience)
        subject = " ".join(self._render(self._text, "subject.txt.j2", ctx).split())
        return fit(policy.expand_first_mention(subject, program.acronym, program.first_mention), SUBJECT_LIMIT)

    def email(self, event: Event, program: Program, audience: Audience, about: UUID | None = None,
              reminder: bool = False) -> RenderedEmail:
        """`about`: what the follow-up links are about, when not the event itself (an amendment's original).
        `reminder`: the message again, as a reminder to acknowledge it."""
        ctx = self._context(event, program, audience,
                            self.follow_up(program, about or event.event_id, audience.id, personal=True))
        ctx["reminder"] = reminder
        text = self._render(self._text, "email/message.txt.j2", ctx)
        html = self._render(self._html, "email/message.html.j2", ctx)
        subject = self.subject(event, program, audience)
        return RenderedEmail(
            subject=fit(f"Påminnelse: {subject}", SUBJECT_LIMIT) if reminder else subject,
            text=policy.expand_first_mention(text, program.acronym, program.first_mention),
            html=policy.expand_first_mention_html(html, program.acronym, program.first_mention),
        )

    def briefing(self, event: Event, program: Program, audience: Audience) -> RenderedEmail:
        """Managers first: the message to a manager before their staff, with its talking points and the manager's
        own link to confirm that they took it up at the workplace meeting."""
        assert event.cascade is not None
        ctx = {**self._context(event, program, audience,
                               self.follow_up(program, event.event_id, audience.id, personal=True)),
               "talking_points": event.cascade.talking_points,
               "staff_at": (event.published_at or event.occurred_at) + timedelta(
                   hours=event.cascade.managers_before_hours)}
        return self._to_manager("email/briefing", "Inför arbetsplatsträffen", event, program, audience, ctx)

    def manager_notice(self, event: Event, program: Program, audience: Audience, names: Sequence[str]) -> RenderedEmail:
        """A short notice to a manager: the message, and which of their staff have not acknowledged it."""
        ctx = {**self._context(event, program, audience), "names": names,
               "item_url": f"{self.public_url}/intranet/items/{event.event_id}"}
        return self._to_manager("email/manager_notice", "Till dig som chef", event, program, audience, ctx)

    def _to_manager(self, template: str, heading: str, event: Event, program: Program, audience: Audience,
                    ctx: dict[str, Any]) -> RenderedEmail:
        """A mail to a manager about `event`: `template`'s text and HTML, the subject headed by `heading`."""
        text = self._render(self._text, f"{template}.txt.j2", ctx)
        html = self._render(self._html, f"{template}.html.j2", ctx)
        return RenderedEmail(subject=fit(f"{heading}: {self.subject(event, program, audience)}", SUBJECT_LIMIT),
                             text=policy.expand_first_mention(text, program.acronym, program.first_mention),
                             html=policy.expand_first_mention_html(html, program.acronym, program.first_mention))

    def teams_card(self, event: Event, program: Program, audience: Audience, about: UUID | None = None) -> dict[str, Any]:
        """An Adaptive Card 1.5: title, body text, fact set, the questions and a counted "Läs mer" link."""
        ctx = self._context(event, program, audience,
                            self.follow_up(program, about or event.event_id, audience.id, personal=False))
        body = policy.expand_first_mention(
            self._render(self._text, "teams/message.md.j2", ctx), program.acronym, program.first_mention
        )
        return adaptive_card(ctx["type_label"].upper(), self.subject(event, program, audience), body, program,
                             ("Läs mer", ctx["read_url"]), facts=ctx["facts"], questions=ctx["questions"],
                             acknowledge=ACKNOWLEDGE if event.acknowledge_by is not None else None,
                             ack_url=ctx["ack_url"])

    def intranet_item(self, event: Event, program: Program, target: str = "intranet") -> RenderedItem:
        """The item, once for everyone on the programme-wide channel `target`, with its questions."""
        ctx = self._context(event, program, None, self.follow_up(program, event.event_id, target, personal=False))
        html = self._render(self._html, "intranet/item.html.j2", ctx)
        return RenderedItem(
            title=event.payload.title,
            summary=policy.expand_first_mention(summary_of(event), program.acronym, program.first_mention),
            html=policy.expand_first_mention_html(html, program.acronym, program.first_mention),
            facts=ctx["facts"],
        )
