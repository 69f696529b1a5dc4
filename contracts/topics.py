"""Every Kafka topic Budkavle uses, in one place: `<domain>.<event>.v<N>`."""

from typing import Final

from contracts.events import EVENT_TYPES, event_topics

#: Publisher events travel one topic per event type (`events.<type>.v<N>`, keyed by event id): the event type
#: registry (`contracts.events.EVENT_TYPES`) names them.

#: A held event withdrawn before its instant (`EventCancelled`), announced by the gateway, keyed by event id.
EVENT_CANCELLED: Final = "lifecycle.event_cancelled.v1"

#: Per-channel delivery commands emitted by the tailor, keyed by event and target group. Version 2: one
#: email command carries a group's message once with a chunk of its recipients; no command carries a secret.
#: v3: bulk marked; v4: personal links as typed slots; v5 (each channel's next): `follows` (corrections).
EMAIL_DELIVERY_REQUESTED: Final = "deliveries.email.v5"
TEAMS_DELIVERY_REQUESTED: Final = "deliveries.teams.v3"
INTRANET_DELIVERY_REQUESTED: Final = "deliveries.intranet.v4"  # v3: go-live facts and phase typed; v4: amendments

#: The tailor's explainable delivery plan for each event.
EVENT_PLANNED: Final = "plans.event_planned.v1"
#: An event's direct deliveries waiting for a target group's quiet hours to end (`DeliveriesScheduled`).
DELIVERIES_SCHEDULED: Final = "plans.deliveries_scheduled.v1"
#: Each follow-up of an event the tailor sent to a target group (a reminder, an escalation step, a managers'
#: briefing), with what it targeted (`FollowUpSent`).
FOLLOW_UP_SENT: Final = "plans.follow_up_sent.v1"
#: Each digest the tailor sent, per target, with what it targeted (`DigestSent`).
DIGEST_SENT: Final = "plans.digest_sent.v1"

#: What became of each delivery, announced in batches of one event and target group (`DeliveryOutcomes`;
#: version 3: a batch per message; version 2 added deferred, with the next attempt, beside sent and failed).
DELIVERY_OUTCOMES: Final = "delivery.outcomes.v4"

#: The scheduler's word that time has come: a target group's digest period, a held event's release (version 2:
#: one type for each, told apart by `kind`). Version 1 is still read while a rolling upgrade drains it.
SCHEDULE_DUE: Final = "schedule.due.v2"
SCHEDULE_DUE_V1: Final = "schedule.due.v1"

#: A person's choices in the preference centre, on every change (keyed by programme and person).
PREFERENCES_CHANGED: Final = "preferences.changed.v1"

#: A person's mail came back as undeliverable (`AddressBounced`), announced by the email service, keyed by person.
ADDRESS_BOUNCED: Final = "delivery.bounced.v1"

#: Follow-up clicks, announced by the insights service: an answer to a question (`FeedbackGiven`), and a
#: counted "Läs mer" (`ItemRead`); keyed by event and target group.
FEEDBACK_GIVEN: Final = "feedback.given.v1"
ITEM_READ: Final = "feedback.read.v1"
#: An acknowledgement of must-know news (`Acknowledged`), announced by the insights service; keyed by event
#: and target group. The tailor reads it to remind only those who have not acknowledged.
ACKNOWLEDGED: Final = "feedback.acknowledged.v1"

#: A signed-in person's session ended by sign-out (`SessionEnded`), announced by the service that signs people
#: out, so that every service reading sessions stops honouring it; keyed by session id.
SESSION_ENDED: Final = "people.session_ended.v1"

#: Bus messages that failed validation, with the reason.
DEAD_LETTER: Final = "deadletter.v1"


def event_topic(name: str) -> str:
    return EVENT_TYPES[name].topic


def all_topics(*extra: str) -> tuple[str, ...]:
    """Every topic the platform needs; `extra` are the delivery topics of the registered channels."""
    return (*event_topics(), *extra, EVENT_CANCELLED, EVENT_PLANNED, DELIVERIES_SCHEDULED, FOLLOW_UP_SENT, DIGEST_SENT,
            DELIVERY_OUTCOMES, ADDRESS_BOUNCED, SCHEDULE_DUE, SCHEDULE_DUE_V1,
            PREFERENCES_CHANGED, FEEDBACK_GIVEN, ITEM_READ, ACKNOWLEDGED, SESSION_ENDED, DEAD_LETTER)
