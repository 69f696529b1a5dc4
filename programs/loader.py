"""Loading programme files: every problem is reported with the file, the YAML line and a readable path."""

from pathlib import Path

import yaml
from pydantic import ValidationError

from programs.model import Program

#: libyaml's parser where PyYAML was built with it (its wheels are), about ten times faster than the pure
#: Python one: the programme files are read by every service at start-up.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ProgramConfigError(Exception):
    """A programme file that cannot be used; the message names the file, the path and the problem."""


def load_program(path: Path) -> Program:
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise ProgramConfigError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ProgramConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    if not isinstance(data, dict):
        raise ProgramConfigError(f"{path}: expected a mapping at the top level")
    try:
        program = Program.model_validate(data)
    except ValidationError as exc:
        tree = yaml.compose(text, Loader=_Loader)  # the nodes' lines, for the message
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


def copy_without_approval(source: Path, target: Path) -> Path:
    """The programme files of `source` written to `target` without their approval rules: for a run that
    measures or tests what happens once an event is released (the benchmark, most tests), where waiting for a
    person's approval is not what is looked at."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.yaml")):
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        config.pop("approval", None)
        (target / path.name).write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target
