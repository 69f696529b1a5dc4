"""The demo's first start tells a story: a short history built from the programme documents (seeds 001–004),
published through the platform's own API, so that the intranet, the status page, the feed and the mail
viewer show real content at once. Then some of the demo directory's people answer: they open their mails in
the local sink and follow the follow-up links in them, over HTTP, as a person would, so that `/insights/`
shows figures at once. The answers are synthetic (drawn from a fixed seed), and say so nowhere else. Told
once per data directory; `budkavle up --no-history` (or BUDKAVLE_DEMO_HISTORY=false) leaves it out."""

import asyncio
import email
import email.policy
import logging
import random
import re
from pathlib import Path
from typing import Any

import httpx

from programs import Role
from services.common.people import Person
from services.common.sessions import Sessions

log = logging.getLogger(__name__)

MARK = "demo-history-told"


def _event(kind: str, program: str, occurred: str, payload: dict[str, Any], importance: str = "awareness",
           audiences: list[str] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind, "program": program, "publisher": "Budkavle demo", "importance": importance,
                             "sensitivity": "internal", "occurred_at": f"{occurred}T09:00:00+02:00",
                             "payload": payload}
    if audiences:
        event["audiences"] = audiences
    return event


#: How a regional board's decision is appealed (kommunallagen 13 kap.: laglighetsprövning, three weeks from the
#: day the minutes were posted on the region's official notice board).
APPEAL = ("Beslutet kan överklagas genom laglighetsprövning hos förvaltningsrätten av den som är medlem i regionen. "
          "Överklagandet ska ha kommit in inom tre veckor från den dag då protokollet tillkännagavs på regionens "
          "anslagstavla.")


def _provenance(body: str, meeting: str, number: str, paragraph: str, appeal_by: str | None) -> dict[str, Any]:
    """Where a decision of the history is recorded. The seeds name the bodies and dates; the registration
    numbers and paragraphs are illustrative (the documents do not give them)."""
    found: dict[str, Any] = {"registration_number": number, "minutes_paragraph": paragraph, "meeting_date": meeting,
                             "body": body}
    if appeal_by:
        found["appeal"] = {"how": APPEAL, "by": appeal_by}
    return found


#: Oldest first, as it happened.
HISTORY: tuple[dict[str, Any], ...] = (
    _event("steering.decision", "fvis", "2018-05-09", {
        "committee": "Regionstyrelsen", "decision_code": "B1", "title": "Beslut att starta programmet FVIS",
        "decision_text": "Regionstyrelsen beslutar att starta programmet Framtidens vårdinformationsstöd.",
        "rationale": "Region Västerbotten behöver ett sammanhållet vårdinformationsstöd tillsammans med Sussa.",
        "consequences": "Initieringsfasen startar.", "effective_date": "2018-05-09",
        "provenance": _provenance("Regionstyrelsen", "2018-05-09", "RUN 2018-00412", "§ 98", "2018-06-05")},
        "must_know", ["regionstyrelsen"]),
    _event("steering.decision", "fvis", "2019-12-17", {
        "committee": "Regionstyrelsen", "decision_code": "B2",
        "title": "Initieringsarbetet godkänt: FVIS går vidare till definitionsfasen",
        "decision_text": "Regionstyrelsen godkänner initieringsarbetet och beslutar att fortsätta med "
                         "definitionsfasen.",
        "rationale": "Initieringsarbetet är genomfört enligt plan.", "consequences": "Definitionsfasen startar.",
        "effective_date": "2019-12-17",
        "provenance": _provenance("Regionstyrelsen", "2019-12-17", "RUN 2019-02270", "§ 311", "2020-01-14")},
        "must_know", ["regionstyrelsen"]),
    _event("steering.decision", "fvis", "2020-05-05", {
        "committee": "Regionstyrelsen", "decision_code": "B3", "title": "FVIS fortsätter enligt plan",
        "decision_text": "Regionstyrelsen beslutar att fortsätta programmet efter beslutspunkt B3.",
        "rationale": "Definitionsfasen visar att programmet kan nå sina effektmål.",
        "consequences": "Arbetet fortsätter mot beslutspunkt B4.", "effective_date": "2020-05-05",
        "provenance": _provenance("Regionstyrelsen", "2020-05-05", "RUN 2020-00871", "§ 104", "2020-06-02")},
        "must_know", ["regionstyrelsen"]),
    _event("steering.decision", "fvm", "2020-05-29", {
        "committee": "Kommunerna i Västra Götaland och VGR",
        "title": "Gemensam vårdinformationsmiljö för regionen och alla 49 kommuner",
        "decision_text": "Alla 49 kommuner har sagt ja till att gå med i satsningen på en gemensam "
                         "vårdinformationsmiljö inom programmet FVM.",
        "rationale": "Enklare samverkan mellan vårdgivare, till nytta för invånarna.",
        "consequences": "Alla 49 kommuner tar option 1 (informationsutbyte), 14 option 2 (elevhälsa) och nio "
                        "option 3 (Millennium som gemensamt journalsystem)."}, "must_know", ["vastkom", "kommuner"]),
    _event("status.update", "fvm", "2020-05-31", {
        "title": "Summering FVM maj 2020",
        "summary": "Nu är det klart att alla 49 kommuner i Västra Götaland går med i satsningen på framtidens "
                   "vårdinformationsmiljö. Förändringsledningsstrategin tar form, och designarbetet fortsätter: "
                   "90 procent av besluten fattas i arbetsströmmarna, de större lyfts till FVM Klinisk ledning."}),
    _event("design.decision", "fvm", "2020-06-10", {
        "workstream": "Läkemedel", "level": "clinical_leadership",
        "title": "Gemensam läkemedelslista för varje patient",
        "summary": "FVM Klinisk ledning beslutar att varje patient ska ha en gemensam läkemedelslista i Millennium, "
                   "som alla vårdgivare ser och uppdaterar.",
        "affected_professions": ["läkare", "sjuksköterska"],
        "provenance": _provenance("FVM Klinisk ledning", "2020-06-10", "FVM 2020-00154", "§ 12", None)},
        "must_know", ["programstyrgrupp"]),
    _event("steering.decision", "fvm", "2022-05-17", {
        "committee": "Regionstyrelsen", "title": "Ny tidplan för Framtidens vårdinformationsmiljö",
        "decision_text": "Regionstyrelsen godkänner avsiktsförklaringen med Cerner och den nya tidplanen för "
                         "införandet av Millennium.",
        "rationale": "Förhandlingarna har gett en tidplan som håller och kompensation för förseningen.",
        "consequences": "Södra området inför hösten 2024, resten av södra ett år senare, norra och östra våren "
                        "2026 och västra hösten 2026.", "effective_date": "2022-05-17",
        # Seed 004: the regional board's decision of 17 May 2022.
        "provenance": _provenance("Regionstyrelsen", "2022-05-17", "RS 2022-03301", "§ 112", "2022-06-15")},
        "must_know", ["politisk-styrgrupp", "strategisk-styrgrupp", "programstyrgrupp"]),
)


async def tell(base: str, token: str, data_dir: Path, sessions: Sessions, timeout: float = 120.0) -> int:
    """Post the history once the platform answers; mark the data directory so it is told only once. What the
    programme's rules hold for approval (its must-know decisions) the programme's demo approver approves, as
    themselves, through the API: the register and the statuses tell it as it would have happened."""
    mark = data_dir / MARK
    if mark.exists():
        return 0
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for _ in range(int(timeout / 0.1)):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        told: list[str] = []
        for n, event in enumerate(HISTORY):
            response = await client.post("/v1/events", json=event, headers={"Idempotency-Key": f"demo-history-{n}"})
            if response.status_code != 202:
                log.warning("demo history event refused", extra={"status": response.status_code,
                                                                 "detail": response.text[:300]})
                continue
            told.append(response.json()["event_id"])
            if response.json()["status"] == "awaiting_approval":
                await approve_as_demo_approver(client, event["program"], told[-1], sessions)
        answered = await answer_as_readers(client, told, data_dir / "mail", timeout)
    mark.write_text(f"{len(told)} events, {answered} answers\n")
    log.info("demo history told", extra={"events": len(told), "answers": answered})
    return len(told)


async def approve_as_demo_approver(client: httpx.AsyncClient, program: str, event_id: str, sessions: Sessions) -> None:
    approver = Person(f"godkannare@{program}.example", "Demo godkännare", {program: frozenset({Role.APPROVER})})
    session, value = sessions.issue(approver)
    headers = {"Authorization": f"Session {value}"}
    status = (await client.get(f"/v1/events/{event_id}", headers=headers)).json()
    approved = await client.post(f"/v1/events/{event_id}/approval", headers={**headers, "X-CSRF-Token": sessions.csrf(session)},
                                 json={"decision": "approve", "content_hash": status["approval"]["content_hash"],
                                       "comment": "Demohistorik: beslutet är fattat och protokollfört."})
    if approved.status_code != 200:
        log.warning("demo history approval refused", extra={"status": approved.status_code,
                                                            "detail": approved.text[:300]})


_LINK = re.compile(r"(https?://\S+?)/feedback/([A-Za-z0-9_.-]+)\?q=understood")
#: How the demo's readers answer: understood (ja, nej), involved (ja, delvis, nej), and how many read more.
_UNDERSTOOD = (("ja", 0.8), ("nej", 0.2))
_INVOLVED = (("ja", 0.45), ("delvis", 0.35), ("nej", 0.2))


def _draw(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([a for a, _ in weights], [w for _, w in weights])[0]


async def answer_as_readers(client: httpx.AsyncClient, event_ids: list[str], mail_dir: Path, timeout: float) -> int:
    """Once the history is delivered, about two in three of its mails' readers answer through their own links
    (and some read more); the rest do not, as in life. Returns how many answers were given."""
    for event_id in event_ids:
        for _ in range(int(timeout / 0.2)):
            status = (await client.get(f"/v1/events/{event_id}")).json().get("status")
            if status == "delivered":
                break
            await asyncio.sleep(0.2)
    answers = 0
    for event_id, reader, base, token in await asyncio.to_thread(_links_in_mails, mail_dir, set(event_ids)):
        rng = random.Random(f"{event_id}:{reader}")
        if rng.random() > 0.65:
            continue
        # What the page a link opens sends (a GET alone records nothing).
        for question, weights in (("understood", _UNDERSTOOD), ("involved", _INVOLVED)):
            response = await client.post(f"{base}/feedback/{token}", data={"q": question, "a": _draw(rng, weights)})
            answers += response.status_code == 200
        if rng.random() < 0.5:
            await client.post(f"{base}/r/{token}")
    return answers


def _links_in_mails(mail_dir: Path, event_ids: set[str]) -> list[tuple[str, str, str, str]]:
    """(event, reader, base URL, their token) of each mail of the events in the sink."""
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        event_id = str(msg.get("X-Budkavle-Event", ""))
        body = msg.get_body(("plain",)) if event_id in event_ids else None
        link = _LINK.search(body.get_content()) if body is not None else None
        if link is not None:
            found.append((event_id, str(msg["To"]), link.group(1), link.group(2)))
    return found
