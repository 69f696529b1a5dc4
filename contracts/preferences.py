"""A person's choices in the preference centre, announced by the preferences service on every change;
the tailor keeps its own read model of them and honours them in the very next send."""

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field

from contracts.base import Contract
from contracts.events import ProgramId

DigestChoice = Literal["group", "weekly", "monthly", "none"]


class PreferencesChanged(Contract):
    """The whole of one person's choices for one programme (the newest `changed_at` wins)."""

    version: ClassVar[int] = 1

    program: ProgramId
    person_id: Annotated[str, Field(min_length=1, max_length=128)]
    digest: DigestChoice = Field(default="group", description="the group's cadence, another one, or none")
    newsletters: bool = True
    awareness_email: bool = Field(default=False, description="news for awareness by email too, not only on "
                                                             "the intranet and in the digest")
    changed_at: AwareDatetime

    @property
    def bus_key(self) -> str:
        return f"{self.program}:{self.person_id}"
