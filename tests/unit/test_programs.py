from pathlib import Path

import pytest
import yaml

from programs import ProgramConfigError, load_program, load_programs
from tests.conftest import PROGRAMS_DIR


def _write(tmp_path: Path, mutate: object) -> Path:
    data = yaml.safe_load((PROGRAMS_DIR / "fvm.yaml").read_text())
    mutate(data)  # type: ignore[operator]
    path = tmp_path / "fvm.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_fvm_configuration_has_the_seed_groups_and_49_municipalities() -> None:
    fvm = load_program(PROGRAMS_DIR / "fvm.yaml")
    assert len(fvm.municipalities) == 49
    assert sum(2 in m.options for m in fvm.municipalities) == 14
    assert sum(3 in m.options for m in fvm.municipalities) == 9
    assert fvm.first_mention == "FVM (Framtidens vårdinformationsmiljö)"
    tiers = {a.tier.value for a in fvm.audiences}
    assert tiers == {"primary", "secondary", "stakeholder", "public"}
    assert len([a for a in fvm.audiences if a.tier.value == "primary"]) == 15


def test_unknown_key_is_named_with_file_and_path(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["audiences"][3].update({"colour": "red"}))
    with pytest.raises(ProgramConfigError) as info:
        load_program(path)
    message = str(info.value)
    assert str(path) in message and "audiences[3] (programstyrgrupp).colour" in message
    lines = path.read_text().splitlines()
    line = int(message.split("line ")[1].split(":")[0])
    assert lines[line - 1].strip().startswith("colour:")
    assert "Extra inputs are not permitted" in message


def test_selector_on_an_attribute_the_directory_lacks_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["audiences"][0]["members"].update({"shoe_size": ["42"]}))
    with pytest.raises(ProgramConfigError, match="shoe_size.*directory lacks"):
        load_program(path)


def test_file_name_must_match_the_programme_id(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: None)
    path = path.rename(tmp_path / "other.yaml")
    with pytest.raises(ProgramConfigError, match="does not match the file name"):
        load_program(path)


def test_not_yaml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "fvm.yaml").write_text("audiences: [unclosed")
    with pytest.raises(ProgramConfigError, match="not valid YAML"):
        load_programs(tmp_path)


def test_a_channel_no_plug_in_provides_fails_with_file_line_and_path(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["audiences"][3]["channels"].append("sms"))
    with pytest.raises(ProgramConfigError) as info:
        load_program(path)
    message = str(info.value)
    assert str(path) in message and "audiences[3] (programstyrgrupp).channels" in message
    assert "no channel plug-in provides 'sms' (known: email, intranet, teams)" in message
    line = int(message.split("line ")[1].split(":")[0])
    assert path.read_text().splitlines()[line - 1].lstrip("- ").startswith("channels:")


def test_a_programme_wide_channel_must_reach_the_whole_programme(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d.update(publishes_to=["intranet", "email"]))
    with pytest.raises(ProgramConfigError, match="publishes_to: .*channel 'email' reaches persons, not programmes"):
        load_program(path)


def test_a_target_group_may_not_take_the_name_of_a_programme_wide_channel(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["audiences"][0].update(id="intranet"))
    with pytest.raises(ProgramConfigError, match=r"audience ids \['intranet'\] are taken by programme-wide channels"):
        load_program(path)


def test_a_digest_cadence_that_is_not_one_of_the_allowed_fails_with_file_line_and_path(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["audiences"][3].update(digest="daily"))
    with pytest.raises(ProgramConfigError) as info:
        load_program(path)
    message = str(info.value)
    assert str(path) in message and "audiences[3] (programstyrgrupp).digest" in message
    assert "'none', 'weekly' or 'monthly'" in message
    line = int(message.split("line ")[1].split(":")[0])
    assert path.read_text().splitlines()[line - 1].lstrip("- ").startswith("digest:")


def test_a_timeline_step_in_an_area_the_programme_lacks_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d["baseline"]["timeline"][1].update(area="mitten"))
    with pytest.raises(ProgramConfigError, match="timeline entry 'sodra-1' is in unknown area 'mitten'"):
        load_program(path)
