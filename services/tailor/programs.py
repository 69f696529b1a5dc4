"""Programme configurations (`deploy/programs/<program>.yaml`), validated at start-up."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, model_validator

from contracts.events import EVENT_TYPES, AudienceId

#: Directory attributes a member selector may use.
DIRECTORY_ATTRIBUTES = ("organisation", "role", "profession", "area", "municipality", "options")

ChannelName = Literal["email", "teams", "intranet"]


class Tier(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    STAKEHOLDER = "stakeholder"
    PUBLIC = "public"


TIER_RANK = {Tier.PRIMARY: 0, Tier.SECONDARY: 1, Tier.STAKEHOLDER: 2, Tier.PUBLIC: 3}


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sender(Config):
    name: str = Field(min_length=1)
    address: EmailStr


class CoBrand(Config):
    name: str
    color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")


class Brand(Config):
    primary_color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    accent_color: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    logo_text: str
    co_brand: CoBrand | None = None


class Municipality(Config):
    name: str
    area: str
    options: tuple[Literal[1, 2, 3], ...] = (1,)


class Audience(Config):
    id: AudienceId
    name: str = Field(min_length=1)
    tier: Tier
    external: bool = False
    cleared_for_confidential: bool = False
    tone: Literal["detailed", "standard", "plain"] = "standard"
    members: dict[str, tuple[str, ...]] = Field(min_length=1)
    channels: tuple[ChannelName, ...] = ("intranet",)
    teams_webhook_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")] | None = None
    digest: Literal["none", "weekly", "monthly"] = "none"
    follows: tuple[str, ...] = EVENT_TYPES
    area_scoped: bool = False
    co_branded: bool = False

    @model_validator(mode="after")
    def _check(self) -> "Audience":
        unknown = sorted(set(self.members) - set(DIRECTORY_ATTRIBUTES))
        if unknown:
            raise ValueError(
                f"member selector uses {unknown}, which the directory lacks "
                f"(it has {', '.join(DIRECTORY_ATTRIBUTES)})"
            )
        if any(not values for values in self.members.values()):
            raise ValueError("member selector has an attribute with no values")
        bad = sorted(set(self.follows) - set(EVENT_TYPES))
        if bad:
            raise ValueError(f"follows unknown event types {bad}")
        return self


class Program(Config):
    program: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")
    name: str
    acronym: str = Field(min_length=2)
    first_mention: str
    organisation: str
    sender: Sender
    brand: Brand
    intranet: bool = True
    areas: tuple[str, ...] = ()
    municipalities: tuple[Municipality, ...] = ()
    decision_points: dict[str, str] = Field(default_factory=dict)
    audiences: tuple[Audience, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "Program":
        if not self.first_mention.startswith(self.acronym):
            raise ValueError("first_mention must start with the acronym, e.g. 'FVM (Framtidens …)'")
        ids = [a.id for a in self.audiences]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate audience ids {dupes}")
        for m in self.municipalities:
            if self.areas and m.area not in self.areas:
                raise ValueError(f"municipality {m.name!r} is in unknown area {m.area!r}")
        return self

    def audience(self, audience_id: str) -> Audience | None:
        return next((a for a in self.audiences if a.id == audience_id), None)


class ProgramConfigError(Exception):
    """A programme file that cannot be used; the message names the file, the path and the problem."""


def load_program(path: Path) -> Program:
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        tree = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ProgramConfigError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ProgramConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    if not isinstance(data, dict):
        raise ProgramConfigError(f"{path}: expected a mapping at the top level")
    try:
        program = Program.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"line {_line(err['loc'], tree)}: {_path(err['loc'], data)}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ProgramConfigError(f"{path}: {problems}") from exc
    if program.program != path.stem:
        raise ProgramConfigError(f"{path}: program id {program.program!r} does not match the file name")
    return program


def _line(loc: tuple[int | str, ...], node: yaml.Node | None) -> int:
    """The 1-based line of the deepest YAML node the error's path reaches."""
    line = node.start_mark.line + 1 if node is not None else 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == key), None)
            if found is None:
                break
            # an unknown key is best shown at the key itself; anything else at its value
            node = found[1]
            line = (found[0] if key == loc[-1] else found[1]).start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _path(loc: tuple[int | str, ...], data: object) -> str:
    """A readable path like `audiences[3] (facklig-referensgrupp).members`."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and key < len(node):
                node = node[key]
                if isinstance(node, dict) and "id" in node:
                    label += f" ({node['id']})"
            parts.append(label)
        else:
            parts.append(f".{key}" if parts else str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "<top>"


def load_programs(directory: Path) -> dict[str, Program]:
    if not directory.is_dir():
        raise ProgramConfigError(f"{directory}: programme directory does not exist")
    programs = {p.stem: load_program(p) for p in sorted(directory.glob("*.yaml"))}
    if not programs:
        raise ProgramConfigError(f"{directory}: no programme files (*.yaml)")
    return programs
