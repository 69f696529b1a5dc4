"""Every subscription on the bus, declared once: which service reads which topics in which consumer group,
what each message parses into, and how the consumer polls.

One helper (`services.common.subscriptions.subscribe`) builds the FastStream subscriber from a declaration:
it parses into the model, dead-letters an unreadable body with the reason, bounds a handler's failures and
backs off only when a dependency is down. A handler receives parsed models, never bytes.

The tuning numbers live here, each with why:
- `batch`: messages handed to the handler together (and records per poll). Bigger batches mean one
  database transaction for many small facts (outcomes, clicks, preferences); a delivery command is big work
  on its own, so channels take a few at a time.
- `fetch_wait_ms`: Kafka's long poll (broker default 500 ms). Apache Kafka answers as soon as data arrives,
  but some brokers answer only at the deadline, so the subscribers on an alert's path wait less.
- `batch_timeout_ms`: how long FastStream's batch subscriber sleeps after an empty poll (200 ms by default);
  an alert arriving then would wait that long.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from pydantic import TypeAdapter

from contracts import topics
from contracts.deliveries import (
    AddressBounced,
    DeadLetter,
    DeliveriesScheduled,
    DeliveryOutcomes,
    DigestSent,
    EventPlanned,
    FollowUpSent,
    PublishIntranetItem,
    SendEmail,
    SendTeamsCard,
)
from contracts.events import event_topics, parse_event
from contracts.feedback import Acknowledged, FeedbackGiven, ItemRead
from contracts.lifecycle import EventCancelled
from contracts.people import SessionEnded
from contracts.preferences import PreferencesChanged
from contracts.schedule import parse_schedule_due

T = TypeVar("T")

#: Subscribers on an alert's path (events, delivery commands) poll with a short wait; idle, this costs a few
#: wake-ups a second per subscriber.
ALERT_FETCH_WAIT_MS: Final = 50
ALERT_BATCH_TIMEOUT_MS: Final = 25
#: Outcome messages per poll: each carries up to `OUTCOMES_PER_MESSAGE` outcomes, so 20 is up to 10 000 rows
#: written in one transaction.
OUTCOME_BATCH: Final = 20
#: Email commands per poll: each carries up to 250 recipients sent concurrently; four keep the SMTP pool busy
#: without holding many chunks when the mail server is slow.
EMAIL_CHUNKS_PER_BATCH: Final = 4
#: Small facts (a person's choices, a click, a dead letter) per poll: many fit in one transaction.
SMALL_FACTS_BATCH: Final = 500
DEAD_LETTER_BATCH: Final = 200


@dataclass(frozen=True)
class Subscription(Generic[T]):
    """One consumer group's subscription. `topics` empty means every registered event type's topic (read
    when the subscriber is built, so that an event type registered before then is included)."""

    service: str  # the consumer named in dead letters and logs
    name: str  # what the subscription is for; the subscriber's title is `service:name`
    group: str
    parse: Callable[[bytes], T]
    topics: tuple[str, ...] = ()
    batch: int | None = None  # None: one message at a time
    fetch_wait_ms: int | None = None  # None: the broker's default
    batch_timeout_ms: int | None = None  # None: FastStream's default
    #: An unreadable body goes to the dead-letter topic; not on the dead-letter topic itself, where it
    #: would go round for ever (it is logged and skipped).
    dead_letter_unreadable: bool = True

    @property
    def title(self) -> str:
        return f"{self.service}:{self.name}"

    def topics_now(self) -> tuple[str, ...]:
        return self.topics or event_topics()


def _adapter(adapter: TypeAdapter[T]) -> Callable[[bytes], T]:
    return adapter.validate_json


Click = FeedbackGiven | ItemRead | Acknowledged
Counted = EventPlanned | DigestSent | FollowUpSent

TAILOR_EVENTS = Subscription("tailor", "events", "tailor", parse_event, fetch_wait_ms=ALERT_FETCH_WAIT_MS)
TAILOR_OUTCOMES = Subscription("tailor", "outcomes", "tailor-outcomes", DeliveryOutcomes.model_validate_json,
                               (topics.DELIVERY_OUTCOMES,), batch=OUTCOME_BATCH)
TAILOR_PREFERENCES = Subscription("tailor", "preferences", "tailor-preferences",
                                  PreferencesChanged.model_validate_json, (topics.PREFERENCES_CHANGED,),
                                  batch=SMALL_FACTS_BATCH)
TAILOR_CANCELLED = Subscription("tailor", "cancelled", "tailor-cancelled", EventCancelled.model_validate_json,
                                (topics.EVENT_CANCELLED,))
TAILOR_SCHEDULE = Subscription("tailor", "schedule", "tailor-schedule", parse_schedule_due,
                               (topics.SCHEDULE_DUE, topics.SCHEDULE_DUE_V1))

EMAIL_DELIVERIES = Subscription("email", "deliveries", "email", SendEmail.model_validate_json,
                                (topics.EMAIL_DELIVERY_REQUESTED,), batch=EMAIL_CHUNKS_PER_BATCH,
                                fetch_wait_ms=ALERT_FETCH_WAIT_MS, batch_timeout_ms=ALERT_BATCH_TIMEOUT_MS)
TEAMS_DELIVERIES = Subscription("teams", "deliveries", "teams", SendTeamsCard.model_validate_json,
                                (topics.TEAMS_DELIVERY_REQUESTED,), fetch_wait_ms=ALERT_FETCH_WAIT_MS)
INTRANET_DELIVERIES = Subscription("intranet", "deliveries", "intranet", PublishIntranetItem.model_validate_json,
                                   (topics.INTRANET_DELIVERY_REQUESTED,), fetch_wait_ms=ALERT_FETCH_WAIT_MS)
INTRANET_SESSIONS = Subscription("intranet", "sessions", "intranet-sessions", SessionEnded.model_validate_json,
                                 (topics.SESSION_ENDED,))

CONSOLE_SESSIONS = Subscription("console", "sessions", "console-sessions", SessionEnded.model_validate_json,
                                (topics.SESSION_ENDED,))

SCHEDULER_PLANS = Subscription("scheduler", "plans", "scheduler", EventPlanned.model_validate_json,
                               (topics.EVENT_PLANNED,))

SCHEDULER_SCHEDULED = Subscription("scheduler", "scheduled", "scheduler-scheduled",
                                   DeliveriesScheduled.model_validate_json, (topics.DELIVERIES_SCHEDULED,))

TAILOR_ACKNOWLEDGED = Subscription("tailor", "acknowledged", "tailor-acknowledged", Acknowledged.model_validate_json,
                                   (topics.ACKNOWLEDGED,), batch=SMALL_FACTS_BATCH)

TAILOR_BOUNCES = Subscription("tailor", "bounces", "tailor-bounces", AddressBounced.model_validate_json,
                              (topics.ADDRESS_BOUNCED,), batch=SMALL_FACTS_BATCH)

SCHEDULER_CANCELLED = Subscription("scheduler", "cancelled", "scheduler-cancelled",
                                   EventCancelled.model_validate_json, (topics.EVENT_CANCELLED,))

GATEWAY_PLANS = Subscription("gateway", "plans", "gateway-plans", EventPlanned.model_validate_json,
                             (topics.EVENT_PLANNED,))
GATEWAY_OUTCOMES = Subscription("gateway", "outcomes", "gateway-outcomes", DeliveryOutcomes.model_validate_json,
                                (topics.DELIVERY_OUTCOMES,), batch=OUTCOME_BATCH)
GATEWAY_SESSIONS = Subscription("gateway", "sessions", "gateway-sessions", SessionEnded.model_validate_json,
                                (topics.SESSION_ENDED,))
GATEWAY_DEAD_LETTERS = Subscription("gateway", "dead-letters", "gateway-dead-letters", DeadLetter.model_validate_json,
                                    (topics.DEAD_LETTER,), batch=DEAD_LETTER_BATCH, dead_letter_unreadable=False)

INSIGHTS_EVENTS = Subscription("insights", "events", "insights", parse_event)
INSIGHTS_PLANS = Subscription("insights", "plans", "insights-plans", _adapter(TypeAdapter[Counted](Counted)),
                              (topics.EVENT_PLANNED, topics.DIGEST_SENT, topics.FOLLOW_UP_SENT))
INSIGHTS_BOUNCES = Subscription("insights", "bounces", "insights-bounces", AddressBounced.model_validate_json,
                                (topics.ADDRESS_BOUNCED,), batch=SMALL_FACTS_BATCH)
INSIGHTS_OUTCOMES = Subscription("insights", "outcomes", "insights-outcomes", DeliveryOutcomes.model_validate_json,
                                 (topics.DELIVERY_OUTCOMES,), batch=OUTCOME_BATCH)
INSIGHTS_CLICKS = Subscription("insights", "clicks", "insights-clicks", _adapter(TypeAdapter[Click](Click)),
                               (topics.FEEDBACK_GIVEN, topics.ITEM_READ, topics.ACKNOWLEDGED), batch=SMALL_FACTS_BATCH)

#: Every subscription, for documents and checks (each consumer group once).
SUBSCRIPTIONS: tuple[Subscription[Any], ...] = (
    TAILOR_EVENTS, TAILOR_OUTCOMES, TAILOR_PREFERENCES, TAILOR_SCHEDULE, TAILOR_CANCELLED, TAILOR_ACKNOWLEDGED,
    TAILOR_BOUNCES, SCHEDULER_CANCELLED,
    EMAIL_DELIVERIES, TEAMS_DELIVERIES,
    INTRANET_DELIVERIES, INTRANET_SESSIONS, SCHEDULER_PLANS, SCHEDULER_SCHEDULED, GATEWAY_PLANS, GATEWAY_OUTCOMES,
    GATEWAY_SESSIONS, GATEWAY_DEAD_LETTERS, INSIGHTS_EVENTS, INSIGHTS_PLANS, INSIGHTS_BOUNCES,
    INSIGHTS_OUTCOMES, INSIGHTS_CLICKS, CONSOLE_SESSIONS)
