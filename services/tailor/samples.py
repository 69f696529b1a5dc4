"""Sample events of every type, used to check every template at start-up, by `budkavle preview` and by tests.

Two of each type: one with every optional field filled, one with none, so a template that reads a
field that may be missing fails at start-up rather than at send time.
"""

from datetime import UTC, datetime

from contracts.events import Event, parse_event

_FULL: list[dict[str, object]] = [
    {"type": "steering.decision", "payload": {
        "committee": "Regionstyrelsen", "decision_code": "B3", "title": "Ny tidplan för införandet",
        "decision_text": "Regionstyrelsen godkänner avsiktsförklaringen och den nya tidplanen.",
        "rationale": "Förhandlingarna med leverantören har gett en tidplan som håller.",
        "consequences": "Södra området inför hösten 2024, norra och östra våren 2026, västra hösten 2026.",
        "effective_date": "2022-05-17", "read_more_url": "https://www.vgregion.se/fvm"}},
    {"type": "design.decision", "payload": {
        "workstream": "Vårdadministration", "level": "clinical_leadership", "title": "Nytt arbetssätt vid utskrivning",
        "summary": "Utskrivningsprocessen blir gemensam i hela regionen.",
        "affected_professions": ["läkare", "sjuksköterska"], "affected_processes": ["Utskrivning"],
        "effective_date": "2024-09-01", "read_more_url": "https://www.vgregion.se/fvm"}},
    {"type": "golive.milestone", "payload": {
        "area": "södra", "wave": "Våg 1", "planned_date": "2024-10-01", "status": "rescheduled",
        "previous_date": "2024-04-01", "title": "Södra området inför Millennium",
        "what_changes": "Vårdpersonal i södra området börjar arbeta i Millennium.",
        "read_more_url": "https://www.vgregion.se/fvm"}},
    {"type": "status.update", "payload": {
        "title": "Lägessummering", "summary": "Arbetet med konfigurationen går enligt plan.",
        "phase": "Införandeförberedelser",
        "next_milestones": [{"title": "Utbildning startar", "date": "2024-06-01"}],
        "read_more_url": "https://www.vgregion.se/fvm"}},
    {"type": "newsletter.issue", "payload": {
        "title": "Nyhetsbrev juni", "intro": "Det här har hänt sedan sist.",
        "sections": [{"heading": "Utbildning", "body": "Utbildningen börjar i juni."}],
        "send_at": "2024-06-01T08:00:00+02:00"}},
]

_MINIMAL: list[dict[str, object]] = [
    {"type": "steering.decision", "payload": {"committee": "Programstyrgrupp", "title": "Beslut",
                                              "decision_text": "Beslutet."}},
    {"type": "design.decision", "payload": {"workstream": "Läkemedel", "level": "workstream",
                                            "title": "Beslut", "summary": "Sammanfattning."}},
    {"type": "golive.milestone", "payload": {"area": "västra", "planned_date": "2026-10-01",
                                             "status": "planned", "title": "Västra", "what_changes": "Allt."}},
    {"type": "status.update", "payload": {"title": "Läget", "summary": "Inget nytt."}},
    {"type": "newsletter.issue", "payload": {"title": "Nyhetsbrev",
                                             "sections": [{"heading": "Rubrik", "body": "Text."}]}},
]


def sample_events(program: str) -> list[Event]:
    envelope = {"program": program, "publisher": "budkavle-samples", "importance": "must_know",
                "sensitivity": "internal",
                "occurred_at": datetime(2022, 5, 17, 10, 0, tzinfo=UTC).isoformat()}
    return [parse_event({**envelope, **e}) for e in (*_FULL, *_MINIMAL)]
