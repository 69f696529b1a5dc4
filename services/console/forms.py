"""The compose form, built from the event type's contract (pure functions, no I/O).

Each input is named by the contract's path of its field (`importance`, `payload.title`,
`payload.sections.0.heading`), so that the contract's own validation errors land beside the input they are
about. The form's values (`Fields`: name → what was typed, or several values) are what a draft keeps; they
become an event only when published, and the gateway validates them again.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from contracts.events import EVENT_TYPES, event_adapter

STOCKHOLM = ZoneInfo("Europe/Stockholm")

Fields = dict[str, str | list[str]]

#: The envelope's fields a communicator sets (the rest the gateway or the page sets: id, programme, publisher).
ENVELOPE = ("importance", "sensitivity", "audiences", "regions", "embargo_until", "acknowledge_by", "cascade",
            "occurred_at")

LABELS = {
    "importance": "Vikt", "sensitivity": "Känslighet", "audiences": "Målgrupper", "regions": "Områden",
    "embargo_until": "Embargo till", "acknowledge_by": "Bekräftas senast",
    "talking_points": "Samtalsstöd till cheferna (chefer först)", "managers_before_hours": "Timmar före medarbetarna",
    "occurred_at": "Beslutet fattades / händelsen inträffade",
    "title": "Rubrik", "committee": "Beslutande organ", "decision_code": "Beslutskod",
    "decision_text": "Beslutstext", "rationale": "Motivering", "consequences": "Konsekvenser",
    "effective_date": "Gäller från", "read_more_url": "Läs mer-länk", "workstream": "Delprojekt",
    "level": "Beslutsnivå", "summary": "Sammanfattning", "affected_professions": "Berörda yrkesgrupper",
    "affected_processes": "Berörda processer", "area": "Område", "wave": "Våg", "planned_date": "Planerat datum",
    "status": "Status", "what_changes": "Vad som ändras", "previous_date": "Tidigare datum", "phase": "Fas",
    "next_milestones": "Kommande milstolpar", "date": "Datum", "intro": "Ingress", "sections": "Avsnitt",
    "heading": "Rubrik", "body": "Text", "send_at": "Skickas",
    "registration_number": "Diarienummer", "minutes_paragraph": "Paragraf i protokollet",
    "meeting_date": "Sammanträdesdatum", "provenance.body": "Beslutande organ enligt protokollet",
    "how": "Hur beslutet överklagas", "by": "Sista dag att överklaga",
}
HINTS = {
    "audiences": "Inga valda: de grupper som följer händelsetypen.",
    "regions": "Ett område per rad; tomt: hela programmet.",
    "affected_professions": "En per rad.", "affected_processes": "En per rad.",
    "embargo_until": "Tomt: skickas direkt. Svensk tid.", "send_at": "Tomt: skickas direkt. Svensk tid.",
    "occurred_at": "Svensk tid; tomt: nu.",
    "talking_points": "Fyll i för att cheferna ska få nyheten först, med samtalsstöd till arbetsplatsträffen; "
                      "tomt: alla samtidigt.",
    "acknowledge_by": "Bara för Måste veta: var och en ombeds bekräfta att de tagit del av informationen, och "
                      "påminns tills dess. Tomt: ingen bekräftelse. Svensk tid.",
    "registration_number": "För ett diariefört beslut: diarienummer, paragraf, datum och organ (t.ex. RS 2022-01234).",
    "how": "För ett beslut som kan överklagas: hur, till vem och var det står.",
}
OPTION_LABELS = {
    "must_know": "Måste veta", "awareness": "Bra att veta", "public": "Offentlig", "internal": "Intern",
    "confidential": "Konfidentiell", "workstream": "Delprojekt", "clinical_leadership": "Klinisk ledning",
    "planned": "Planerad", "rescheduled": "Ny tidpunkt", "started": "Startad", "completed": "Genomförd",
}


@dataclass(frozen=True)
class Input:
    """One input of the form: `kind` is text, textarea, select, date, datetime, url, lines (one value per line),
    groups (the target-group chooser) or rows (a list of records: its `children`, one set per row)."""

    name: str
    label: str
    kind: str
    required: bool = False
    options: tuple[tuple[str, str], ...] = ()
    max_length: int | None = None
    hint: str = ""
    children: tuple["Input", ...] = field(default=())

    def row(self, index: int) -> tuple["Input", ...]:
        """The children of row `index`, named for it (`payload.sections.2.heading`)."""
        return tuple(Input(f"{self.name}.{index}.{c.name}", c.label, c.kind, c.required, c.options, c.max_length,
                           c.hint) for c in self.children)


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """A property's schema with its `$ref` followed and `T | None` unwrapped."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
    if len(options) == 1:
        return _resolve({**options[0], **{k: v for k, v in schema.items() if k != "anyOf"}}, root)
    return schema


def _input(name: str, short: str, schema: Mapping[str, Any], root: Mapping[str, Any], required: bool) -> Input:
    prop = _resolve(schema, root)
    last = short.rsplit(".", 1)[-1]
    label = LABELS.get(short) or LABELS.get(last) or str(schema.get("title", last))
    hint = HINTS.get(short) or HINTS.get(last, "")
    if "enum" in prop:
        return Input(name, label, "select", required, tuple((v, OPTION_LABELS.get(v, v)) for v in prop["enum"]),
                     hint=hint)
    if prop.get("type") == "array":
        items = _resolve(prop["items"], root)
        if items.get("type") == "object":
            needed = set(items.get("required", ()))
            children = tuple(_input(k, k, v, root, k in needed) for k, v in items["properties"].items())
            return Input(name, label, "rows", required or bool(prop.get("minItems")), children=children, hint=hint)
        return Input(name, label, "lines", required, max_length=items.get("maxLength"), hint=hint)
    kind = {"date": "date", "date-time": "datetime", "uri": "url"}.get(prop.get("format", ""), "text")
    max_length = prop.get("maxLength")
    if kind == "text" and max_length and max_length > 300:
        kind = "textarea"
    return Input(name, label, kind, required, max_length=max_length, hint=hint)


def form_of(event_type: str) -> tuple[Input, ...]:
    """The inputs of a new message of `event_type`: the envelope's a communicator sets, then the payload's, in
    the contract's order. KeyError for an unregistered type."""
    model = EVENT_TYPES[event_type].model
    root = model.model_json_schema()
    inputs = []
    for name in ENVELOPE:
        if name == "audiences":
            inputs.append(Input("audiences", LABELS[name], "groups", hint=HINTS[name]))
            continue
        schema = root["properties"][name]
        record = _resolve(schema, root)
        if record.get("type") == "object" and "properties" in record:  # managers first: its own fields
            inputs += _inputs(name, "", record, root, False)
            continue
        inputs.append(_input(name, name, schema, root, name in root.get("required", ()) and name != "occurred_at"))
    inputs += _inputs("payload", "", _resolve(root["properties"]["payload"], root), root, True)
    return tuple(inputs)


def _inputs(name: str, short: str, schema: Mapping[str, Any], root: Mapping[str, Any],
            required: bool) -> list[Input]:
    """The inputs of an object's fields: a nested record (a decision's provenance, its appeal) as its own fields,
    named by their path; inside an optional record none is required by the form (the contract says what a
    record begun needs)."""
    needed = set(schema.get("required", ())) if required else set()
    inputs = []
    for key, value in schema["properties"].items():
        prop = _resolve(value, root)
        path, qualified = f"{name}.{key}", f"{short}.{key}" if short else key
        if prop.get("type") == "object" and "properties" in prop:
            inputs += _inputs(path, qualified, prop, root, required and key in needed)
        else:
            inputs.append(_input(path, qualified, value, root, key in needed))
    return inputs


def payload_inputs(event_type: str) -> tuple[Input, ...]:
    """The inputs of an event type's payload alone: what a correction may change."""
    return tuple(i for i in form_of(event_type) if i.name.startswith("payload."))


def rows_of(fields: Mapping[str, str | list[str]], rows: Input) -> list[int]:
    """The row numbers the form holds for a list input (at least one where the contract needs one)."""
    prefix = f"{rows.name}."
    found = sorted({int(k[len(prefix):].split(".", 1)[0]) for k in fields
                    if k.startswith(prefix) and k[len(prefix):].split(".", 1)[0].isdigit()})
    return found or ([0] if rows.required else [])


def apply_action(fields: Fields, inputs: Sequence[Input], action: str) -> Fields:
    """The form's values after a row action: `add:NAME`, `remove:NAME.I`, `up:NAME.I`, `down:NAME.I`. Rows are
    numbered again from 0 in their new order; anything else is left as it was."""
    verb, _, target = action.partition(":")
    for rows in (i for i in inputs if i.kind == "rows"):
        if not target.startswith(rows.name):
            continue
        order = rows_of(fields, rows)
        index = target[len(rows.name) + 1:]
        if verb == "add" and target == rows.name:
            order.append(max(order, default=-1) + 1)
        elif index.isdigit() and int(index) in order:
            at = order.index(int(index))
            if verb == "remove":
                order.pop(at)
            elif verb == "up" and at > 0:
                order[at - 1], order[at] = order[at], order[at - 1]
            elif verb == "down" and at < len(order) - 1:
                order[at + 1], order[at] = order[at], order[at + 1]
        prefix = f"{rows.name}."
        kept = {k: v for k, v in fields.items() if not k.startswith(prefix)}
        for new, old in enumerate(order):
            for child in rows.children:
                kept[f"{rows.name}.{new}.{child.name}"] = fields.get(f"{rows.name}.{old}.{child.name}", "")
        return kept
    return fields


def fields_of(form: Sequence[tuple[str, str]], inputs: Sequence[Input]) -> Fields:
    """The values a posted form holds for the inputs (several for the group chooser, a row's fields by row)."""
    names: dict[str, Input] = {}
    for i in inputs:
        names[i.name] = i
    multiple = {i.name for i in inputs if i.kind == "groups"}
    rows = [i for i in inputs if i.kind == "rows"]
    fields: Fields = {}
    for name, value in form:
        if name in multiple:
            chosen = fields.setdefault(name, [])
            assert isinstance(chosen, list)
            chosen.append(value)
        elif name in names or any(name.startswith(f"{r.name}.") and name.rsplit(".", 1)[-1] in
                                  {c.name for c in r.children} for r in rows):
            fields[name] = value
    return fields


def _local_instant(value: str) -> str:
    """A `datetime-local` input's value (Swedish time) as an instant; as typed when it is not one, so that the
    contract's own error names it."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=STOCKHOLM)).isoformat()


def _value(i: Input, raw: str | list[str]) -> Any:
    if i.kind == "groups":
        return list(raw) if isinstance(raw, list) else [raw]
    text = raw if isinstance(raw, str) else "\n".join(raw)
    if i.kind == "lines":
        return [line.strip() for line in text.splitlines() if line.strip()]
    text = text.strip() if i.kind != "textarea" else text.strip("\r\n ").replace("\r\n", "\n")
    return _local_instant(text) if i.kind == "datetime" and text else text


def event_of(event_type: str, program: str, publisher: str, fields: Mapping[str, str | list[str]],
             inputs: Sequence[Input],
             now: datetime) -> dict[str, Any]:
    """The event the form's values make (not yet validated): an empty optional input is left out."""
    event: dict[str, Any] = {"type": event_type, "program": program, "publisher": publisher, "payload": {}}

    def put(path: str, value: Any) -> None:
        *parents, last = path.split(".")
        into = event
        for part in parents:
            into = into.setdefault(part, {})
        into[last] = value

    for i in inputs:
        if i.kind == "rows":
            records = []
            for n in rows_of(fields, i):
                record = {c.name: _value(c, fields.get(f"{i.name}.{n}.{c.name}", "")) for c in i.children}
                record = {k: v for k, v in record.items() if v not in ("", [])}
                if record:
                    records.append(record)
            if records or i.required:
                put(i.name, records)
            continue
        value = _value(i, fields.get(i.name, [] if i.kind == "groups" else ""))
        if value not in ("", []):
            put(i.name, value)
    event.setdefault("occurred_at", now.isoformat())
    return event


def fields_from(event: Mapping[str, Any], inputs: Sequence[Input]) -> Fields:
    """The form's values for an event as the gateway reports it (the inverse of `event_of`): what a correction
    form starts from."""
    def at(path: str) -> Any:
        value: Any = event
        for part in path.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return None
        return value

    def typed(i: Input, value: Any) -> str | list[str]:
        if i.kind == "groups":
            return [str(v) for v in value]
        if i.kind == "lines":
            return "\n".join(str(v) for v in value)
        if i.kind == "datetime":
            return datetime.fromisoformat(str(value)).astimezone(STOCKHOLM).strftime("%Y-%m-%dT%H:%M")
        return str(value)

    fields: Fields = {}
    for i in inputs:
        for one in ([c for n in range(len(at(i.name) or ())) for c in i.row(n)] if i.kind == "rows" else [i]):
            value = at(one.name)
            if value is not None:
                fields[one.name] = typed(one, value)
    return fields


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The payload fields whose values differ between two payloads dumped by the same contract (a cleared
    optional field: None): what a correction says."""
    return {k: after.get(k) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}


#: The contract's errors in Swedish, by pydantic's error type (its context fills the braces).
MESSAGES = {
    "missing": "Måste fyllas i.", "string_too_short": "Måste fyllas i.",
    "string_too_long": "Får vara högst {max_length} tecken.",
    "string_pattern_mismatch": "Innehåller tecken eller en form som inte är tillåten.",
    "enum": "Välj ett av alternativen.", "literal_error": "Välj ett av alternativen.",
    "date_from_datetime_parsing": "Ange ett datum (ÅÅÅÅ-MM-DD).", "date_parsing": "Ange ett datum (ÅÅÅÅ-MM-DD).",
    "datetime_from_date_parsing": "Ange datum och tid.", "datetime_parsing": "Ange datum och tid.",
    "timezone_aware": "Ange datum och tid.",
    "url_parsing": "Ange en fullständig adress (https://…).", "url_scheme": "Adressen ska börja med https://.",
    "url_type": "Ange en fullständig adress (https://…).",
    "too_short": "Lägg till minst {min_length}.", "too_long": "Högst {max_length} får anges.",
    "extra_forbidden": "Fältet finns inte i den här meddelandetypen.",
}


def swedish(error: Mapping[str, Any]) -> str:
    template = MESSAGES.get(str(error["type"]))
    if template is None:
        return f"Ogiltigt värde ({error['msg']})."
    try:
        return template.format(**error.get("ctx", {}))
    except (KeyError, IndexError):
        return template


def errors_of(event: Mapping[str, Any], inputs: Sequence[Input]) -> dict[str, str]:
    """The contract's verdict on the event, by the name of the input it is about, in Swedish; empty when valid."""
    try:
        event_adapter().validate_python(dict(event))
    except ValidationError as exc:
        found: dict[str, str] = {}
        for error in exc.errors(include_input=False, include_url=False):
            loc = [str(p) for p in error["loc"]]
            if loc and loc[0] == event.get("type"):
                loc = loc[1:]  # the discriminated union names the type first
            found.setdefault(field_of(".".join(loc) or "type", inputs), swedish(error))
        return found
    return {}


def field_of(path: str, inputs: Sequence[Input]) -> str:
    """The input an error's path belongs to (a list's item error goes to its list input)."""
    names = {i.name for i in inputs}
    parts = path.split(".")
    while parts and ".".join(parts) not in names and not (len(parts) > 2 and parts[-2].isdigit()):
        parts.pop()
    return ".".join(parts) if parts else path
