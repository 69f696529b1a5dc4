"""What the console says in Swedish of what the gateway and the tailor report in English: a plan's reasons and
refusals, and the gateway's refusals of a person's request (pure functions)."""

import re

from programs.labels import TYPE_LABELS

#: A plan's reasons and refusals, as the tailor words them (services/tailor/planning.py, policy.py): pattern →
#: Swedish, with the pattern's groups in the braces.
PLAN_WORDS: tuple[tuple[str, str], ...] = (
    (r"explicitly targeted", "vald som målgrupp"),
    (r"must_know", "måste veta"),
    (r"awareness", "bra att veta"),
    (r"clinical leadership: not among the most affected, intranet and digest only",
     "klinisk ledning: inte bland de mest berörda, bara intranät och sammanfattning"),
    (r"clinical leadership: among the most affected, alerted at once",
     "klinisk ledning: bland de mest berörda, får besked direkt"),
    (r"limited to area (.+)", "begränsat till området {0}"),
    (r"(\d+) asked for awareness news by email", "{0} har bett om nyheter med e-post"),
    (r"(\d+) opted out of newsletters \((\w+)\)", "{0} har avböjt nyhetsbrev ({1})"),
    (r"(\d+) already reached through a higher-tier group \((\w+)\)", "{0} nås redan genom en högre grupp ({1})"),
    (r"confidential: never to external groups", "konfidentiellt: aldrig till externa grupper"),
    (r"confidential: group is not cleared for confidential matters",
     "konfidentiellt: gruppen får inte ta del av konfidentiella ärenden"),
    (r"internal: never to external groups", "internt: aldrig till externa grupper"),
    (r"go-live reaches the area's staff and municipalities and the primary groups",
     "ett införande når områdets personal och kommuner och de primära grupperna"),
    (r"no recipients in the directory match the group", "ingen i katalogen hör till gruppen"),
    (r"no channel the group allows fits this event", "ingen av gruppens kanaler passar händelsen"),
    (r"reached by the event it amends", "nåddes av utskicket som rättas"),
)
#: Why the tailor refuses a directory row or file (services/tailor/directory.py, imports.py).
DIRECTORY_WORDS: tuple[tuple[str, str], ...] = (
    (r"wrong number of columns", "fel antal kolumner"),
    (r"id missing or has characters other than letters, digits, \. _ : -",
     "id saknas eller har andra tecken än bokstäver, siffror, . _ : -"),
    (r"duplicate id", "samma id som på en tidigare rad"),
    (r"name missing", "namn saknas"),
    (r"name longer than 200 characters", "namnet är längre än 200 tecken"),
    (r"name has a control character", "namnet innehåller ett styrtecken"),
    (r"bad email address", "ogiltig e-postadress"),
    (r"unknown area (.+)", "okänt område {0}"),
    (r"options must be a list of 1, 2, 3 separated by ;", "options ska vara 1, 2 eller 3, åtskilda med ;"),
    (r"CSV header lacks required columns (.+); expected (.+)", "rubrikraden saknar kolumnerna {0} (väntade: {1})"),
    (r"CSV header has unknown columns (.+); expected (.+)", "rubrikraden har okända kolumner {0} (väntade: {1})"),
    (r"the file has no rows", "filen har inga rader"),
    (r"line (\d+): not readable as CSV \((.+)\)", "rad {0} går inte att läsa som CSV ({1})"),
)
RULE_WORDS = {"sensitivity": "känslighet", "golive": "införande", "members": "medlemmar", "channels": "kanaler"}


def _worded(text: str, words: tuple[tuple[str, str], ...]) -> str:
    for pattern, swedish in words:
        found = re.fullmatch(pattern, text)
        if found:
            return swedish.format(*found.groups())
    return text


def sv_reason(reason: str) -> str:
    """A plan's reason or refusal in Swedish (as the tailor wrote it, when it is one not known here)."""
    follows = re.fullmatch(r"follows (.+)", reason)
    if follows:
        return f"följer {TYPE_LABELS.get(follows.group(1), follows.group(1)).lower()}"
    return _worded(reason, PLAN_WORDS)


def sv_directory(reason: str) -> str:
    """Why a directory row or file is refused, in Swedish."""
    return _worded(reason, DIRECTORY_WORDS)


def sv_rule(rule: str) -> str:
    return RULE_WORDS.get(rule, rule)


def sv_approval_reason(reason: dict[str, str]) -> str:
    """Why an event needs approval (the gateway's `ApprovalReason`), in Swedish."""
    rule, detail = reason.get("rule", ""), reason.get("detail", "")
    if rule == "importance":
        return f"viktighet: {_worded(detail, PLAN_WORDS)}"
    if rule == "external":
        return f"når externa målgrupper ({detail})"
    if rule == "recipients":
        found = re.fullmatch(r"(\d+) > (\d+)", detail)
        return f"når {found.group(1)} mottagare, fler än {found.group(2)}" if found else f"många mottagare ({detail})"
    if rule == "unplanned":
        return "antalet mottagare kunde inte räknas just nu, så det hålls för säkerhets skull"
    return f"{rule}: {detail}"


#: The gateway's reasons for refusing an approval or a cancellation (services/gateway/approval.py), in Swedish.
APPROVAL_WORDS: tuple[tuple[str, str], ...] = (
    (r"nobody approves or rejects what they wrote or changed.*",
     "Du kan inte godkänna eller avslå det du själv skrivit eller senast ändrat: en annan godkännare måste göra det."),
    (r"you are not an approver in programme '(.+)'", "Du är inte godkännare i programmet {0}."),
    (r"the content changed since you saw it.*",
     "Innehållet har ändrats sedan du läste det. Läs det igen innan du beslutar; inget är godkänt."),
    (r"the submission expired at .*",
     "Begäran om godkännande har gått ut. Författaren behöver ändra meddelandet eller skicka in det igen."),
    (r"cannot (approve|reject|cancel): it was approved already by (\S+) at (\S+)",
     "Det är redan godkänt av {1}."),
    (r"cannot (approve|reject|cancel): it was rejected by (\S+) at (\S+);.*", "Det är redan avslaget av {1}."),
    (r"cannot (approve|reject|cancel): it was cancelled by (\S+) at (\S+)", "Det är redan stoppat av {1}."),
    (r"cannot (approve|reject): it needs no approval", "Det behöver inget godkännande."),
    (r"cannot cancel: sending began or is about to .*; so far (\d+) of (\d+) deliveries sent.*",
     "Det går inte att stoppa: utskicket har börjat eller börjar strax ({0} av {1} skickade). Skicka en "
     "återkallelse i stället."),
)


def sv_refusal(status: int, detail: str) -> str:
    """Why the gateway refused a person's request, as the page says it."""
    if "CSRF" in detail:
        return ("Formuläret saknade sin säkerhetskod eller den var fel, så inget sparades. Ladda om sidan och "
                "försök igen.")
    if status == 401:
        return "Din inloggning har gått ut. Logga in igen; inget sparades."
    worded = _worded(detail, APPROVAL_WORDS)
    if worded != detail:
        return worded
    if status == 403 and "token never approves" in detail:
        return "Bara en person med rollen godkännare kan godkänna."
    if status == 403:
        found = re.search(r"programme '([^']+)'", detail)
        where = f" i programmet {found.group(1)}" if found else ""
        return f"Du har inte behörighet att göra det här{where}: det kräver rollen redaktör. Inget sparades."
    if status == 404:
        return "Det finns inte, eller så har du inte behörighet att se det."
    if status == 413:
        return "Meddelandet är för stort. Korta texten och försök igen."
    return f"Gatewayen tog inte emot det ({status}): {detail}"
