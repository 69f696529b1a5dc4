"""The compose form is the contract's: its inputs, the event its values make, and the contract's errors beside
the input they are about, in Swedish."""

from datetime import UTC, datetime
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from contracts.events import EVENT_TYPES
from services.console.forms import apply_action, errors_of, event_of, fields_of, form_of, rows_of

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_registered_type_has_a_form_named_by_its_contracts_fields(event_type: str) -> None:
    inputs = form_of(event_type)
    payload = EVENT_TYPES[event_type].model.model_fields["payload"].annotation
    assert payload is not None
    # A nested record (a decision's provenance) is its own fields, named by their path.
    assert [i.name for i in inputs if i.name.startswith("payload.")] == [
        name for field in payload.model_fields for name in _leaves(f"payload.{field}", payload.model_fields[field])]
    assert {"importance", "sensitivity", "audiences", "embargo_until"} <= {i.name for i in inputs}


def _leaves(name: str, info: Any) -> list[str]:
    options = (info.annotation,) if get_origin(info.annotation) is tuple else (info.annotation, *get_args(info.annotation))
    record = next((t for t in options if isinstance(t, type) and issubclass(t, BaseModel)), None)
    if record is None:
        return [name]
    return [leaf for k, v in record.model_fields.items() for leaf in _leaves(f"{name}.{k}", v)]


def test_a_decisions_provenance_is_typed_in_its_own_fields_and_a_record_begun_says_what_it_lacks() -> None:
    inputs = form_of("steering.decision")
    fields = {"payload.committee": "Regionstyrelsen", "payload.title": "Ny tidplan",
              "payload.decision_text": "Regionstyrelsen godkänner.", "importance": "must_know",
              "payload.provenance.registration_number": "RS 2022-03301",
              "payload.provenance.appeal.by": "2022-06-15"}
    event = event_of("steering.decision", "fvm", "redaktor@fvm.example", fields, inputs, NOW)
    errors = errors_of(event, inputs)
    assert set(errors) == {"payload.provenance.minutes_paragraph", "payload.provenance.meeting_date",
                           "payload.provenance.body", "payload.provenance.appeal.how"}
    assert errors["payload.provenance.body"] == "Måste fyllas i."
    done = {**fields, "payload.provenance.minutes_paragraph": "§ 112", "payload.provenance.meeting_date": "2022-05-17",
            "payload.provenance.body": "Regionstyrelsen", "payload.provenance.appeal.how": "Laglighetsprövning."}
    event = event_of("steering.decision", "fvm", "redaktor@fvm.example", done, inputs, NOW)
    assert errors_of(event, inputs) == {}
    assert event["payload"]["provenance"]["appeal"] == {"how": "Laglighetsprövning.", "by": "2022-06-15"}
    bare = event_of("steering.decision", "fvm", "x", {k: v for k, v in done.items() if "provenance" not in k},
                    inputs, NOW)
    assert "provenance" not in bare["payload"] and errors_of(bare, inputs) == {}


def test_a_design_decision_typed_into_the_form_is_the_event_the_contract_accepts() -> None:
    inputs = form_of("design.decision")
    kinds = {i.name: i.kind for i in inputs}
    assert (kinds["payload.level"], kinds["payload.summary"], kinds["payload.affected_professions"],
            kinds["payload.effective_date"], kinds["embargo_until"]) == ("select", "textarea", "lines", "date",
                                                                         "datetime")
    form = [("importance", "must_know"), ("sensitivity", "internal"), ("audiences", "vardpersonal"),
            ("audiences", "chefer"), ("payload.workstream", "Vårdadministration"), ("payload.level", "clinical_leadership"),
            ("payload.title", " Nytt arbetssätt "), ("payload.summary", "Rad ett.\r\nRad två."),
            ("payload.affected_professions", "sjuksköterska\r\n\r\nundersköterska"),
            ("embargo_until", "2026-12-01T09:00"), ("csrf", "ignored"), ("payload.unknown", "dropped")]
    fields = fields_of(form, inputs)
    assert fields["audiences"] == ["vardpersonal", "chefer"] and "csrf" not in fields and "payload.unknown" not in fields
    event = event_of("design.decision", "fvm", "redaktor@fvm.example", fields, inputs, NOW)
    assert errors_of(event, inputs) == {}
    assert event["payload"]["title"] == "Nytt arbetssätt" and event["payload"]["summary"] == "Rad ett.\nRad två."
    assert event["payload"]["affected_professions"] == ["sjuksköterska", "undersköterska"]
    assert event["embargo_until"] == "2026-12-01T09:00:00+01:00"  # Swedish time, winter
    assert event["occurred_at"] == NOW.isoformat() and "effective_date" not in event["payload"]


def test_the_contracts_errors_stand_beside_their_inputs_in_swedish() -> None:
    inputs = form_of("design.decision")
    fields = {"importance": "must_know", "payload.level": "clinical_leadership", "payload.title": "x" * 201,
              "payload.effective_date": "i morgon", "payload.read_more_url": "inte en adress",
              "payload.affected_professions": "ok\n" + "y" * 101}
    errors = errors_of(event_of("design.decision", "fvm", "p", fields, inputs, NOW), inputs)
    assert errors == {"payload.workstream": "Måste fyllas i.", "payload.summary": "Måste fyllas i.",
                      "payload.title": "Får vara högst 200 tecken.",
                      "payload.effective_date": "Ange ett datum (ÅÅÅÅ-MM-DD).",
                      "payload.read_more_url": "Ange en fullständig adress (https://…).",
                      "payload.affected_professions": "Får vara högst 100 tecken."}


def test_newsletter_sections_are_added_removed_and_reordered_and_each_error_names_its_row() -> None:
    inputs = form_of("newsletter.issue")
    [sections] = [i for i in inputs if i.name == "payload.sections"]
    assert sections.kind == "rows" and [c.name for c in sections.children] == ["heading", "body"]
    fields: dict[str, str | list[str]] = {"payload.title": "Nyhetsbrev december"}
    assert rows_of(fields, sections) == [0]  # the contract needs one
    fields |= {"payload.sections.0.heading": "Första", "payload.sections.0.body": "Ett."}
    fields = apply_action(fields, inputs, "add:payload.sections")
    fields |= {"payload.sections.1.heading": "Andra", "payload.sections.1.body": ""}
    fields = apply_action(fields, inputs, "add:payload.sections")
    fields |= {"payload.sections.2.heading": "Tredje", "payload.sections.2.body": "Tre."}
    fields = apply_action(fields, inputs, "up:payload.sections.2")
    assert [fields[f"payload.sections.{n}.heading"] for n in range(3)] == ["Första", "Tredje", "Andra"]
    errors = errors_of(event_of("newsletter.issue", "fvm", "p", fields, inputs, NOW), inputs)
    assert errors == {"importance": "Måste fyllas i.", "payload.sections.2.body": "Måste fyllas i."}
    fields = apply_action(fields, inputs, "remove:payload.sections.0")
    assert rows_of(fields, sections) == [0, 1] and fields["payload.sections.0.heading"] == "Tredje"
    assert apply_action(fields, inputs, "down:payload.sections.1") == fields  # the last stays last
    assert apply_action(fields, inputs, "remove:payload.title") == fields  # not a row: nothing happens


def test_what_the_tailor_says_in_english_the_console_says_in_swedish() -> None:
    from services.console.wording import sv_directory, sv_reason, sv_rule

    assert sv_reason("follows design.decision") == "följer designbeslut"
    assert sv_reason("12 already reached through a higher-tier group (email)") == (
        "12 nås redan genom en högre grupp (email)")
    assert sv_rule("sensitivity") == "känslighet"
    assert sv_directory("unknown area 'Umeå'") == "okänt område 'Umeå'"
    assert sv_directory("id missing or has characters other than letters, digits, . _ : -").startswith("id saknas")
    assert sv_reason("a reason not known here") == "a reason not known here"
