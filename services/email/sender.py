"""The email channel's sender interface: one mail to one person, from a group's command."""

from dataclasses import dataclass
from typing import Protocol

from contracts.deliveries import EmailRecipient, SendEmail
from services.common.delivery import Delivery


@dataclass(frozen=True)
class Mail(Delivery[SendEmail]):
    """One person's copy of a group's email: the command's message, addressed at send time."""

    recipient: EmailRecipient

    @classmethod
    def each_of(cls, command: SendEmail) -> list["Mail"]:
        return [cls(command, r.id, r) for r in command.recipients]


class EmailSender(Protocol):
    """Send one mail; return the attempts it took, or raise TransientDeliveryError (ChannelUnavailable when
    the server cannot be reached) or PermanentDeliveryError with the server's reason."""

    async def send(self, mail: Mail, /) -> int: ...

    async def close(self) -> None: ...
