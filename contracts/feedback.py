"""Follow-up from the people themselves: one-click answers and counted reads, announced by the insights
service (which serves the signed links in every message) whenever someone clicks.

Nobody is named: `respondent` is a pseudonym, a keyed hash of the person's directory id (from an email's
own link, `p:`) or of the signed-in person's subject at the sign-in provider (from a Teams card or an
intranet item, which are the same for everyone, `s:`). A later answer from the same respondent replaces the
earlier one.
"""

from typing import Annotated, ClassVar, Final, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, model_validator

from contracts.base import Contract
from contracts.events import AudienceId, ProgramId

Question = Literal["understood", "involved"]

#: The questions every message asks (seed 000: has the group understood, does it feel involved) and their
#: answers, in the order they are offered.
ANSWERS: Final[dict[str, tuple[str, ...]]] = {"understood": ("ja", "nej"), "involved": ("ja", "delvis", "nej")}

#: How each question and answer reads in Swedish, in messages and pages.
QUESTION_TEXT: Final[dict[str, str]] = {"understood": "Förstod du informationen?",
                                        "involved": "Känner du dig delaktig?"}
ANSWER_TEXT: Final[dict[str, str]] = {"ja": "Ja", "nej": "Nej", "delvis": "Delvis"}

Respondent = Annotated[str, Field(pattern=r"^[a-z]:[A-Za-z0-9_-]{8,64}$",
                                  description="p:<keyed hash of a person's directory id> or s:<keyed hash of a "
                                              "signed-in person's subject>")]


class FeedbackGiven(Contract):
    """One respondent's answer to one question about one event, as it reached one target group."""

    version: ClassVar[int] = 1

    program: ProgramId
    event_id: UUID
    audience_id: AudienceId = Field(description="the target group (or programme-wide channel) the link was in")
    respondent: Respondent
    question: Question
    answer: Literal["ja", "delvis", "nej"]
    answered_at: AwareDatetime

    @model_validator(mode="after")
    def _answer_fits_question(self) -> "FeedbackGiven":
        if self.answer not in ANSWERS[self.question]:
            raise ValueError(f"{self.answer!r} is not an answer to {self.question!r} "
                             f"(one of {', '.join(ANSWERS[self.question])})")
        return self

    @property
    def bus_key(self) -> str:
        return f"{self.event_id}:{self.audience_id}"


class ItemRead(Contract):
    """A respondent followed an event's "Läs mer" link (counted once per respondent and event)."""

    version: ClassVar[int] = 1

    program: ProgramId
    event_id: UUID
    audience_id: AudienceId
    respondent: Respondent
    at: AwareDatetime

    @property
    def bus_key(self) -> str:
        return f"{self.event_id}:{self.audience_id}"


class Acknowledged(Contract):
    """A respondent acknowledged must-know news ("Jag har tagit del av informationen") as it reached one target
    group. `person_id` is the directory id of the person a mail's own link was for, so that the tailor reminds
    only those who have not acknowledged; an acknowledgement through a group's link (a Teams card, an intranet
    item) by a signed-in person names no directory id."""

    version: ClassVar[int] = 1

    program: ProgramId
    event_id: UUID
    audience_id: AudienceId
    respondent: Respondent
    person_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    acknowledged_at: AwareDatetime

    @property
    def bus_key(self) -> str:
        return f"{self.event_id}:{self.audience_id}"
