"""People's sessions, as far as other services need to know: a session that was ended (signed out) before
its time. The service that signs people out announces it; every service that reads sessions stops
honouring it, on every replica, until it would have expired anyway."""

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field

from contracts.base import Contract

SessionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{16,64}$")]


class SessionEnded(Contract):
    """A signed-in person's session ended by sign-out: its cookie, if someone still has it, opens nothing."""

    version: ClassVar[int] = 1

    sid: SessionId
    ended_at: AwareDatetime
    expires_at: AwareDatetime = Field(description="when the session would have ended anyway; forgotten after")

    @property
    def bus_key(self) -> str:
        return self.sid
