"""The clicks on the follow-up links in every message: a one-click answer (`/feedback/{token}`) and a
counted "Läs mer" (`/r/{token}`).

A token names the event, the target group and, in a person's own mail, the person. What a whole group
sees (a Teams card, an intranet item) names no one: an answer through it needs a signed-in person of the
programme, and counts once per person. Nobody is stored by name: a person becomes a keyed hash of their
directory id (a mail) or of their subject at the sign-in provider (a group's link). Only a POST from the page a
link opens records anything: mail security gateways fetch every link of a mail before its reader sees it.
Each click is kept in the outbox and announced on the bus (`feedback.given`, `feedback.read`); the insights
service's own consumer counts it, once per respondent, event and question.
"""

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from pydantic import BaseModel

from contracts import topics
from contracts.feedback import ANSWERS, Acknowledged, FeedbackGiven, ItemRead
from programs import Program
from services.common.bus import Bus
from services.common.links import FEEDBACK, BadLink, LinkSigner
from services.insights.store import InsightsStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class ClickRefused(Exception):
    """A click that cannot be taken: the status and what the page says (in Swedish)."""

    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status, self.heading, self.message = status, heading, message


def check_answer(question: str, answer: str) -> None:
    """ClickRefused (422) for a question or an answer that is not among the choices."""
    if answer not in ANSWERS.get(question, ()):
        raise ClickRefused(422, "Svaret gick inte att ta emot", "Frågan eller svaret finns inte bland valen.")


@dataclass(frozen=True)
class Link:
    """What a trusted follow-up token names."""

    program: Program
    event_id: UUID
    audience_id: str
    person: str | None


class Clicks:
    def __init__(self, store: InsightsStore, bus: Bus, signer: LinkSigner, programs: Mapping[str, Program],
                 public_url: str, retention: timedelta, clock: Clock = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.bus = bus
        self.signer = signer
        self.programs = programs
        self.base = public_url.rstrip("/")
        self.retention = retention
        self.clock = clock

    def trusted(self, token: str) -> Link:
        try:
            claims = self.signer.verify(FEEDBACK, token)
        except BadLink as exc:
            if exc.expired:
                raise ClickRefused(410, "Länken har gått ut", "Länken är för gammal för att svara med.") from exc
            raise ClickRefused(400, "Länken fungerar inte",
                               "Länken är inte en som vi har skickat, eller så har den ändrats.") from exc
        program = self.programs.get(claims.get("pr", ""))
        try:
            event_id = UUID(claims.get("ev", ""))
        except ValueError:
            event_id = None
        if program is None or event_id is None or not claims.get("au"):
            raise ClickRefused(404, "Länken fungerar inte", "Länken gäller ett program som inte finns här.")
        return Link(program, event_id, claims["au"], claims.get("pe"))

    def respondent(self, link: Link, subject: str | None) -> str | None:
        """Who answers, as a pseudonym: a keyed hash of the person a mail was for, or else of the signed-in
        person's subject; None for a group's link followed by someone not signed in."""
        if link.person is not None:
            who = link.person
        elif subject is not None:
            who = f"sub:{subject}"
        else:
            return None
        mac = hmac.new(self.signer.key, f"{link.program.program}:{who}".encode(), hashlib.sha256)
        return ("p:" if link.person is not None else "s:") + base64.urlsafe_b64encode(mac.digest()[:16]).rstrip(b"=").decode()

    async def answer(self, link: Link, respondent: str, question: str, answer: str) -> str:
        """Take an answer (one `check_answer` let through) and return where the thank-you page leads back
        to: the item on the intranet, or for a group's digest (which has no item of its own) the programme's
        status page. The same answer again is not announced again; another one replaces it."""
        item = await self.store.item(str(link.event_id))
        if item is not None and item.published_at < self.clock() - self.retention:
            raise ClickRefused(410, "Frågan är stängd", "Det går inte längre att svara om den här nyheten.")
        given = FeedbackGiven(program=link.program.program, event_id=link.event_id, audience_id=link.audience_id,
                              respondent=respondent, question=question, answer=answer,
                              answered_at=self.clock())
        if await self.store.answer_of(str(link.event_id), link.audience_id, respondent, question) != answer:
            await self.announce(topics.FEEDBACK_GIVEN, given)
        if item is not None and item.type == "digest" and link.audience_id != "intranet":
            return f"{self.base}/intranet/status?program={link.program.program}"
        return f"{self.base}/intranet/items/{link.event_id}"

    async def asks_acknowledgement(self, link: Link) -> tuple[str, str, bool]:
        """What the link confirms: the news's title, its item's page, and whether it is a manager's briefing
        (confirming "taken up at the workplace meeting"); ClickRefused (404) when it asks for nothing."""
        about = await self.store.briefing(str(link.event_id))
        item = await self.store.item(about or str(link.event_id))
        if item is None or item.program != link.program.program or (about is None and item.acknowledge_by is None):
            raise ClickRefused(404, "Nyheten ber inte om någon bekräftelse",
                               "Det finns ingen nyhet att bekräfta genom den här länken.")
        return item.title, f"{self.base}/intranet/items/{item.event_id}", about is not None

    async def acknowledge(self, link: Link, respondent: str) -> str:
        """Take an acknowledgement, or a manager's confirmation (once per respondent; a repeat is thanked and not
        announced again) and return the news item's page."""
        _title, back, _briefing = await self.asks_acknowledgement(link)
        if not await self.store.has_acknowledged(str(link.event_id), link.audience_id, respondent):
            await self.announce(topics.ACKNOWLEDGED, Acknowledged(
                program=link.program.program, event_id=link.event_id, audience_id=link.audience_id,
                respondent=respondent, person_id=link.person, acknowledged_at=self.clock()))
        return back

    @staticmethod
    def check_target(to: str | None) -> None:
        """ClickRefused (400) for a "Läs mer" that names anything but the event's own page or its item."""
        if to not in (None, "item", "more"):
            raise ClickRefused(400, "Länken fungerar inte", "Länken pekar inte på något som vi har skickat.")

    async def read(self, link: Link, respondent: str | None, to: str | None) -> str:
        """Where "Läs mer" leads: the event's own page elsewhere (`more`, the default where there is one)
        or its intranet item (`item`); never a place the request names. Counted once per respondent."""
        self.check_target(to)
        item = await self.store.item(str(link.event_id))
        own = f"{self.base}/intranet/items/{link.event_id}"
        if to == "more" and (item is None or not item.read_more_url):
            raise ClickRefused(404, "Sidan finns inte", "Nyheten har ingen sådan länk.")
        target = item.read_more_url if item is not None and item.read_more_url and to != "item" else own
        if respondent is not None and not await self.store.has_read(str(link.event_id), link.audience_id,
                                                                     respondent):
            await self.announce(topics.ITEM_READ, ItemRead(program=link.program.program, event_id=link.event_id,
                                                            audience_id=link.audience_id, respondent=respondent,
                                                            at=self.clock()))
        return target

    async def announce(self, topic: str, message: BaseModel) -> None:
        """Keep `message` in the outbox, then say it on the bus (or let `announce_pending` say it later)."""
        key = message.bus_key  # type: ignore[attr-defined]
        ref = await self.store.keep(topic, key, message.model_dump_json())
        try:
            await self.bus.publish(topic, message, key)
        except Exception:  # kept in the outbox: `announce_pending` says it again
            log.warning("click kept; announcing it failed", extra={"topic": topic}, exc_info=True)
            return
        await self.store.announced([ref])

    async def announce_pending(self) -> int:
        """Announce what was kept but not announced (a crash, or a bus that was down)."""
        told = 0
        while pending := await self.store.unannounced():
            for row in pending:
                await self.bus.publish_json(row.topic, row.payload.encode(), row.key)
            await self.store.announced([row.id for row in pending])
            told += len(pending)
        return told
