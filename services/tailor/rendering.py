"""Rendering one message per group and channel from `templates/` (Jinja2, autoescape, StrictUndefined).

Pure apart from reading templates: the same event, programme and group always render the same text.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from contracts.deliveries import PERSONAL_LINK
from contracts.events import (
    DesignDecisionMade,
    Event,
    GoLiveMilestoneReached,
    StatusUpdated,
    SteeringDecisionMade,
)
from programs import Audience, Program
from programs.labels import GOLIVE_STATUS, TYPE_LABELS, sv_date
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


class TemplateProblem(Exception):
    """A template that cannot render an event; found at start-up, not at send time."""


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
    elif isinstance(event, DesignDecisionMade):
        d = event.payload
        out["Arbetsström"] = d.workstream
        out["Nivå"] = "FVM Klinisk ledning" if d.level == "clinical_leadership" else "Arbetsström"
        if d.affected_professions:
            out["Berörda yrken"] = ", ".join(d.affected_professions)
        if d.effective_date:
            out["Gäller från"] = sv_date(d.effective_date)
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


def adaptive_card(kicker: str, heading: str, body: str, program: Program, action: tuple[str, str],
                  facts: dict[str, str] | None = None) -> dict[str, Any]:
    """An Adaptive Card 1.5: kicker, heading, body text, the facts (if any), the sender, and one link."""
    blocks: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": kicker, "size": "Small", "weight": "Bolder", "color": "Accent", "wrap": True},
        {"type": "TextBlock", "text": heading, "size": "Large", "weight": "Bolder", "wrap": True, "style": "heading"},
        {"type": "TextBlock", "text": body.strip(), "wrap": True},
    ]
    if facts is not None:
        blocks.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts.items()]})
    blocks.append({"type": "TextBlock", "text": f"Avsändare: {program.sender.name}", "size": "Small",
                   "isSubtle": True, "wrap": True})
    return {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.5", "body": blocks, "actions": [{"type": "Action.OpenUrl", "title": action[0],
                                                          "url": action[1]}]}


class Renderer:
    def __init__(self, templates_dir: Path, public_url: str) -> None:
        loader = FileSystemLoader(str(templates_dir))
        self._html = Environment(loader=loader, autoescape=True, undefined=StrictUndefined,
                                 trim_blocks=True, lstrip_blocks=True)
        self._text = Environment(loader=loader, autoescape=False, undefined=StrictUndefined,
                                 trim_blocks=True, lstrip_blocks=True)
        for env in (self._html, self._text):
            env.filters["sv_date"] = sv_date
        self.public_url = public_url.rstrip("/")

    def _context(self, event: Event, program: Program, audience: Audience | None) -> dict[str, Any]:
        tone = audience.tone if audience else "standard"
        return {
            "event": event,
            "p": event.payload,
            "program": program,
            "audience": audience,
            "tone": tone,
            "sender": policy.sender_for(program),
            "co_brand": program.brand.co_brand if audience is not None and audience.co_branded else None,
            "facts": facts(event),
            "type_label": TYPE_LABELS[event.type],
            "item_url": f"{self.public_url}/intranet/items/{event.event_id}",
            "read_more_url": str(getattr(event.payload, "read_more_url", None) or
                                 f"{self.public_url}/intranet/items/{event.event_id}"),
            "part": event.type.replace(".", "_"),
            "base": self.public_url,
            # A newsletter is bulk mail: each person's copy links to their own preference page.
            "bulk": event.type == "newsletter.issue",
            "personal_link": PERSONAL_LINK,
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

    def email(self, event: Event, program: Program, audience: Audience) -> RenderedEmail:
        ctx = self._context(event, program, audience)
        text = self._render(self._text, "email/message.txt.j2", ctx)
        html = self._render(self._html, "email/message.html.j2", ctx)
        return RenderedEmail(
            subject=self.subject(event, program, audience),
            text=policy.expand_first_mention(text, program.acronym, program.first_mention),
            html=policy.expand_first_mention_html(html, program.acronym, program.first_mention),
        )

    def teams_card(self, event: Event, program: Program, audience: Audience) -> dict[str, Any]:
        """An Adaptive Card 1.5: title, body text, fact set and a "Läs mer" link."""
        ctx = self._context(event, program, audience)
        body = policy.expand_first_mention(
            self._render(self._text, "teams/message.md.j2", ctx), program.acronym, program.first_mention
        )
        return adaptive_card(ctx["type_label"].upper(), self.subject(event, program, audience), body, program,
                             ("Läs mer", ctx["read_more_url"]), facts=ctx["facts"])

    def intranet_item(self, event: Event, program: Program) -> RenderedItem:
        ctx = self._context(event, program, None)
        html = self._render(self._html, "intranet/item.html.j2", ctx)
        return RenderedItem(
            title=event.payload.title,
            summary=policy.expand_first_mention(summary_of(event), program.acronym, program.first_mention),
            html=policy.expand_first_mention_html(html, program.acronym, program.first_mention),
            facts=ctx["facts"],
        )
