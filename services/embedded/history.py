"""The demo's first start tells a story: a short history built from the programme documents (seeds 001–004),
published through the platform's own API, so that the intranet, the status page, the feed and the mail
viewer show real content at once. Told once per data directory; `budkavle up --no-history` (or
BUDKAVLE_DEMO_HISTORY=false) leaves it out."""

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx

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


#: Oldest first, as it happened.
HISTORY: tuple[dict[str, Any], ...] = (
    _event("steering.decision", "fvis", "2018-05-09", {
        "committee": "Regionstyrelsen", "decision_code": "B1", "title": "Beslut att starta programmet FVIS",
        "decision_text": "Regionstyrelsen beslutar att starta programmet Framtidens vårdinformationsstöd.",
        "rationale": "Region Västerbotten behöver ett sammanhållet vårdinformationsstöd tillsammans med Sussa.",
        "consequences": "Initieringsfasen startar.", "effective_date": "2018-05-09"},
        "must_know", ["regionstyrelsen"]),
    _event("steering.decision", "fvis", "2019-12-17", {
        "committee": "Regionstyrelsen", "decision_code": "B2",
        "title": "Initieringsarbetet godkänt: FVIS går vidare till definitionsfasen",
        "decision_text": "Regionstyrelsen godkänner initieringsarbetet och beslutar att fortsätta med "
                         "definitionsfasen.",
        "rationale": "Initieringsarbetet är genomfört enligt plan.", "consequences": "Definitionsfasen startar.",
        "effective_date": "2019-12-17"}, "must_know", ["regionstyrelsen"]),
    _event("steering.decision", "fvis", "2020-05-05", {
        "committee": "Regionstyrelsen", "decision_code": "B3", "title": "FVIS fortsätter enligt plan",
        "decision_text": "Regionstyrelsen beslutar att fortsätta programmet efter beslutspunkt B3.",
        "rationale": "Definitionsfasen visar att programmet kan nå sina effektmål.",
        "consequences": "Arbetet fortsätter mot beslutspunkt B4.", "effective_date": "2020-05-05"},
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
        "affected_professions": ["läkare", "sjuksköterska"]}, "must_know", ["programstyrgrupp"]),
    _event("steering.decision", "fvm", "2022-05-17", {
        "committee": "Regionstyrelsen", "title": "Ny tidplan för Framtidens vårdinformationsmiljö",
        "decision_text": "Regionstyrelsen godkänner avsiktsförklaringen med Cerner och den nya tidplanen för "
                         "införandet av Millennium.",
        "rationale": "Förhandlingarna har gett en tidplan som håller och kompensation för förseningen.",
        "consequences": "Södra området inför hösten 2024, resten av södra ett år senare, norra och östra våren "
                        "2026 och västra hösten 2026.", "effective_date": "2022-05-17"},
        "must_know", ["politisk-styrgrupp", "strategisk-styrgrupp", "programstyrgrupp"]),
)


async def tell(base: str, token: str, data_dir: Path, timeout: float = 120.0) -> int:
    """Post the history once the platform answers; mark the data directory so it is told only once."""
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
        told = 0
        for n, event in enumerate(HISTORY):
            response = await client.post("/v1/events", json=event, headers={"Idempotency-Key": f"demo-history-{n}"})
            if response.status_code != 202:
                log.warning("demo history event refused", extra={"status": response.status_code,
                                                                 "detail": response.text[:300]})
                continue
            told += 1
    mark.write_text(f"{told} events\n")
    log.info("demo history told", extra={"events": told})
    return told
