"""The recipient directory: HSA-like people, selector matching, CSV parsing and a synthetic directory.

Everything here is pure; storing the directory is `store.py`'s job.
"""

import csv
import io
import random
import re
from abc import abstractmethod
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload

from email_validator import EmailNotValidError, validate_email

CSV_COLUMNS = ("id", "name", "email", "organisation", "role", "profession", "area", "municipality", "options",
               "manager")


@dataclass(frozen=True, slots=True)
class Recipient:
    id: str
    name: str
    email: str
    organisation: str = ""
    role: str = ""
    profession: str = ""
    area: str = ""
    municipality: str = ""
    options: frozenset[int] = field(default_factory=frozenset)
    manager: str = ""  # the directory id of the person's manager (escalation, managers first); "" for none


#: A person may hold several roles, separated by this (a manager who also sits in a steering group:
#: `chef;programstyrgrupp`); a selector's role matches any of them.
ROLE_SEPARATOR = ";"
#: The longest `role` value the directory keeps (its column's width), all roles together.
ROLE_LIMIT = 100


def roles_of(role: str) -> tuple[str, ...]:
    """A person's roles, in the order given, each once."""
    return tuple(dict.fromkeys(r.strip() for r in role.split(ROLE_SEPARATOR) if r.strip()))


def member_filter(selector: Mapping[str, Iterable[str]]) -> Callable[[Recipient], bool]:
    """The selector compiled once into a predicate: true when, for every attribute in the selector, the
    recipient has one of the listed values (for roles: one of theirs). Planning runs it over the whole
    directory."""
    scalar = [(attr, frozenset(str(v) for v in values)) for attr, values in selector.items()
              if attr not in ("options", "role")]
    roles = frozenset(str(v) for v in selector.get("role", ()))
    wants_role = "role" in selector
    options = frozenset(int(v) for v in selector.get("options", ()) if str(v).isdigit())
    wants_options = "options" in selector

    def test(r: Recipient) -> bool:
        for attr, allowed in scalar:
            if getattr(r, attr) not in allowed:
                return False
        if wants_role and r.role not in roles and (ROLE_SEPARATOR not in r.role or roles.isdisjoint(roles_of(r.role))):
            return False  # split only the rare person who holds several roles: a scan looks at 60 000
        return not wants_options or not options.isdisjoint(r.options)

    return test


def select_members(directory: Iterable[Recipient], selector: Mapping[str, Iterable[str]]) -> Sequence[Recipient]:
    """The people the selector selects: from the directory's index when it has one (`index.py`), else by
    looking at everyone."""
    members = getattr(directory, "members", None)
    if callable(members):
        selected: Sequence[Recipient] = members(selector)
        return selected
    test = member_filter(selector)
    return [r for r in directory if test(r)]


class Positional(Sequence[Recipient]):
    """People by position, each `Recipient` made while it is looked at (`_person`)."""

    @abstractmethod
    def _person(self, position: int) -> Recipient: ...

    @overload
    def __getitem__(self, index: int) -> Recipient: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Recipient]: ...

    def __getitem__(self, index: int | slice) -> Recipient | Sequence[Recipient]:
        if isinstance(index, slice):
            return [self._person(n) for n in range(len(self))[index]]
        return self._person(range(len(self))[index])

    def __iter__(self) -> Iterator[Recipient]:
        return (self._person(n) for n in range(len(self)))


class People(Positional):
    """Some of a directory's people, by their positions in it: a selection of 100 000 people holds 4 bytes
    per person, not an object each."""

    def __init__(self, directory: Sequence[Recipient], positions: "array[int]") -> None:
        self.directory = directory
        self.positions = positions
        # The person at a directory position, without a sequence's bounds checks when the directory is positional.
        self._at: Callable[[int], Recipient] = (directory._person if isinstance(directory, Positional)
                                                 else directory.__getitem__)

    def __len__(self) -> int:
        return len(self.positions)

    def _person(self, position: int) -> Recipient:
        return self._at(self.positions[position])

    def __iter__(self) -> Iterator[Recipient]:
        return map(self._at, self.positions)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which are not hashable either

    def __repr__(self) -> str:
        return f"People({[p.id for p in self]!r})"

    def where(self, test: Callable[[Recipient], bool]) -> "People":
        at = self._at
        return People(self.directory, array("I", (n for n in self.positions if test(at(n)))))

    def where_id(self, test: Callable[[str], bool]) -> "People":
        return People(self.directory, array("I", (n for n, i in zip(self.positions, self.ids(), strict=True)
                                                  if test(i))))

    def ids(self) -> Iterator[str]:
        """Their ids, one at a time (from an index's own column: no Recipient made for them)."""
        ids = getattr(self.directory, "ids", None)
        if callable(ids):
            found: Iterator[str] = ids(self.positions)
            return found
        return (p.id for p in self)


def ids_of(people: Sequence[Recipient]) -> Iterator[str]:
    """The people's ids, in order, one at a time."""
    return people.ids() if isinstance(people, People) else (p.id for p in people)


def keep(people: Sequence[Recipient], test: Callable[[Recipient], bool]) -> Sequence[Recipient]:
    """The people `test` keeps, in order; a selection by positions stays one."""
    if isinstance(people, People):
        return people.where(test)
    return [p for p in people if test(p)]


def keep_ids(people: Sequence[Recipient], test: Callable[[str], bool]) -> Sequence[Recipient]:
    """The people whose id `test` keeps, in order: `keep` for a test that needs only the id (an index then
    makes no Recipient for it)."""
    if isinstance(people, People):
        return people.where_id(test)
    return [p for p in people if test(p.id)]


@dataclass(frozen=True)
class RejectedRow:
    line: int
    recipient_id: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    accepted: tuple[Recipient, ...]
    rejected: tuple[RejectedRow, ...]


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def parse_recipients_csv(text: str, known_areas: Iterable[str] = ()) -> ImportReport:
    """Parse an HSA-like CSV. Bad rows are reported with their line and reason, never half-kept."""
    reader = csv.DictReader(io.StringIO(text, newline=""))  # any line ending: \n, \r\n, or a lone \r
    try:
        header = reader.fieldnames or ()
        missing = [c for c in ("id", "name", "email") if c not in header]
        if missing:
            raise ValueError(f"CSV header lacks required columns {missing}; expected {', '.join(CSV_COLUMNS)}")
        unknown = [c for c in header if c not in CSV_COLUMNS]
        if unknown:
            raise ValueError(f"CSV header has unknown columns {unknown}; expected {', '.join(CSV_COLUMNS)}")
        return _read_rows(reader, set(known_areas))
    except csv.Error as exc:  # e.g. a NUL byte in the header, or a quote left open at the end
        raise ValueError(f"line {reader.line_num}: not readable as CSV ({exc})") from exc


def _read_rows(reader: "csv.DictReader[str]", areas: set[str]) -> ImportReport:
    accepted: list[Recipient] = []
    rejected: list[RejectedRow] = []
    seen: set[str] = set()
    lines: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        rid = (row.get("id") or "").strip()
        reason = _row_problem(row, rid, seen, areas)
        if reason:
            rejected.append(RejectedRow(line, rid, reason))
            continue
        seen.add(rid)
        lines[rid] = line
        accepted.append(
            Recipient(
                id=rid,
                name=row["name"].strip(),
                email=row["email"].strip(),
                organisation=(row.get("organisation") or "").strip(),
                role=ROLE_SEPARATOR.join(roles_of(row.get("role") or "")),
                profession=(row.get("profession") or "").strip(),
                area=(row.get("area") or "").strip(),
                municipality=(row.get("municipality") or "").strip(),
                options=_options(row.get("options") or ""),
                manager=(row.get("manager") or "").strip(),
            )
        )
    return _with_known_managers(accepted, rejected, lines)


def _with_known_managers(accepted: list[Recipient], rejected: list[RejectedRow],
                         lines: Mapping[str, int]) -> ImportReport:
    """A row whose manager is not a person of the file is refused (repeatedly: a refused manager's people too)."""
    while True:
        known = {r.id for r in accepted}
        orphans = [r for r in accepted if r.manager and (r.manager not in known or r.manager == r.id)]
        if not orphans:
            return ImportReport(tuple(accepted), tuple(sorted(rejected, key=lambda x: x.line)))
        for r in orphans:
            why = "a person cannot be their own manager" if r.manager == r.id else \
                f"manager {r.manager!r} is not a person of the file"
            rejected.append(RejectedRow(lines[r.id], r.id, why))
        accepted = [r for r in accepted if r not in orphans]


@dataclass(frozen=True)
class DirectoryChange:
    added: int
    changed: int
    removed: int
    unchanged: int


def directory_change(current: Iterable[Recipient], new: Iterable[Recipient]) -> DirectoryChange:
    """What replacing `current` by `new` does, person by person (by id)."""
    before = {r.id: r for r in current}
    after = {r.id: r for r in new}
    kept = before.keys() & after.keys()
    changed = sum(before[i] != after[i] for i in kept)
    return DirectoryChange(added=len(after.keys() - before.keys()), changed=changed,
                           removed=len(before.keys() - after.keys()), unchanged=len(kept) - changed)


#: The widths of the directory's columns (`store.recipients`): a longer value is refused with its row, not
#: cut, and never fails the whole import on a database that enforces widths.
_WIDTHS = {"email": 320, "organisation": 200, "profession": 100, "area": 64, "municipality": 100}


def _row_problem(row: Mapping[str, str | None], rid: str, seen: set[str], areas: set[str]) -> str | None:
    if None in row or any(v is None for k, v in row.items() if k in ("id", "name", "email")):
        return "wrong number of columns"
    if not _ID.match(rid):
        return "id missing or has characters other than letters, digits, . _ : -"
    if rid in seen:
        return "duplicate id"
    if not (row.get("name") or "").strip():
        return "name missing"
    if len((row.get("name") or "").strip()) > 200:
        return "name longer than 200 characters"
    if any(ord(c) < 32 for c in (row.get("name") or "").strip()):
        return "name has a control character"
    try:
        validate_email((row.get("email") or "").strip(), check_deliverability=False)
    except EmailNotValidError:
        return "bad email address"
    if len(ROLE_SEPARATOR.join(roles_of(row.get("role") or ""))) > ROLE_LIMIT:
        return f"role longer than {ROLE_LIMIT} characters (all roles together)"
    manager = (row.get("manager") or "").strip()
    if manager and not _ID.match(manager):
        return "manager is not a directory id (letters, digits, . _ : -)"
    for column, width in _WIDTHS.items():
        if len((row.get(column) or "").strip()) > width:
            return f"{column} longer than {width} characters"
    area = (row.get("area") or "").strip()
    if area and areas and area not in areas:
        return f"unknown area {area!r}"
    try:
        _options(row.get("options") or "")
    except ValueError:
        return "options must be a list of 1, 2, 3 separated by ;"
    return None


def _options(text: str) -> frozenset[int]:
    values = [v.strip() for v in text.replace(",", ";").split(";") if v.strip()]
    if any(v not in ("1", "2", "3") for v in values):
        raise ValueError(text)
    return frozenset(int(v) for v in values)


def recipients_to_csv(recipients: Iterable[Recipient]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in recipients:
        writer.writerow(
            [r.id, r.name, r.email, r.organisation, r.role, r.profession, r.area, r.municipality,
             ";".join(str(o) for o in sorted(r.options)), r.manager]
        )
    return out.getvalue()


# --- synthetic directory -------------------------------------------------------------------------

_FIRST = ("Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Sara", "Anders", "Eva", "Per", "Lena",
          "Mikael", "Emma", "Nils", "Ingrid", "Oskar", "Elin", "Ahmed", "Fatima", "Jonas", "Sofia", "Ali")
_LAST = ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
         "Svensson", "Gustafsson", "Lindberg", "Berg", "Hassan", "Lindqvist", "Holm", "Ek", "Sandberg")

#: Healthcare administrations (förvaltningar) by go-live area.
HOSPITALS = {
    "södra": "Södra Älvsborgs Sjukhus",
    "norra": "NU-sjukvården",
    "östra": "Skaraborgs Sjukhus",
    "västra": "Sahlgrenska Universitetssjukhuset",
}
#: Staff per area and the share of each profession, so that ~47 000 staff come out.
STAFF_PER_AREA = {"södra": 9000, "norra": 9500, "östra": 8000, "västra": 20500}
PROFESSIONS = (("sjuksköterska", 30), ("undersköterska", 25), ("läkare", 15), ("administratör", 10),
               ("fysioterapeut", 5), ("arbetsterapeut", 4), ("biomedicinsk analytiker", 5),
               ("kurator", 3), ("psykolog", 3))

#: Committee and network memberships: role → (organisation, how many).
MEMBERSHIPS = {
    "politisk-styrgrupp": ("Västra Götalandsregionen", 9),
    "strategisk-styrgrupp": ("Koncernledning hälso- och sjukvård", 12),
    "programstyrgrupp": ("Västra Götalandsregionen", 14),
    "facklig-referensgrupp": ("Fackliga organisationer", 10),
    "objektledning": ("Västra Götalandsregionen", 8),
    "sis-forum": ("Västra Götalandsregionen", 20),
    "isit-strategisk-ledning": ("Koncernkontoret", 6),
    "isit-ledning-hs": ("VGR IT", 8),
    "forvaltningsledning": ("Västra Götalandsregionen", 30),
    "koncernkontoret": ("Koncernkontoret", 25),
    "vastkom": ("VästKom", 6),
    "samverkansgrupp": ("Västra Götalandsregionen", 24),
    "programdeltagare": ("FVM programkontor", 300),
    "rekryteringskontakt": ("Västra Götalandsregionen", 18),
    "fortroendevald": ("Västra Götalandsregionen", 149),
    "vgr-it": ("VGR IT", 400),
    "ovrig-vgr": ("Koncernkontoret", 600),
    "myndighet": ("Myndigheter", 12),
    "annan-region": ("Andra regioner", 20),
    "privat-vardgivare": ("Privata vårdgivare", 40),
    "resursagare": ("Västra Götalandsregionen", 60),
    "invanare": ("Invånarpanel", 200),
    "media": ("Media", 15),
}


#: Region Västerbotten (FVIS): staff per healthcare area, and memberships role → (organisation, how many).
FVIS_STAFF_PER_AREA = {"Umeå": 6000, "Skellefteå": 2800, "Södra Lappland": 1200}
FVIS_MEMBERSHIPS = {
    "fvis-regionstyrelsen": ("Region Västerbotten", 15),
    "fvis-programstyrgrupp": ("Region Västerbotten", 10),
    "fvis-programdeltagare": ("Region Västerbotten", 120),
    "fvis-forandringsledare": ("Region Västerbotten", 60),
    "fvis-facklig": ("Region Västerbotten", 8),
    "fvis-forvaltning": ("Region Västerbotten", 200),
    "fvis-invanarpanel": ("Region Västerbotten", 100),
    "sussa-kontakt": ("Sussa samverkan", 16),
    "fvis-media": ("Media", 10),
}


def _ascii(text: str) -> str:
    """Ids and addresses stay ASCII, so that no mail server needs SMTPUTF8."""
    return text.translate(str.maketrans("åäöÅÄÖéü", "aaoAAOeu"))


def synthetic_directory(
    municipalities: Iterable[tuple[str, str, frozenset[int]]],
    staff_scale: float = 1.0,
    seed: int = 1658,
) -> Iterator[Recipient]:
    """A deterministic directory: ~47 000 VGR staff, committee members, 49 municipalities' contacts, and
    Region Västerbotten's staff and groups for FVIS.

    `municipalities` is (name, area, options). The same arguments always give the same people.
    """
    rng = random.Random(seed)

    def person(prefix: str, n: int) -> tuple[str, str, str]:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        rid = _ascii(f"{prefix}-{n:05d}").replace(" ", "-").lower()
        return rid, f"{first} {last}", _ascii(f"{first}.{last}.{rid}@example.se".lower())

    professions = [p for p, weight in PROFESSIONS for _ in range(weight)]

    def memberships(roles: Mapping[str, tuple[str, int]], prefix: str, areas: tuple[str, ...]) -> Iterator[Recipient]:
        for role, (organisation, count) in roles.items():
            for n in range(count):
                rid, name, email = person(f"{prefix}{role}", n)
                yield Recipient(rid, name, email, organisation=organisation, role=role, area=areas[n % len(areas)])

    def staff(per_area: Mapping[str, int], prefix: str, organisation: Callable[[str, int], str],
              roles: tuple[str, str]) -> Iterator[Recipient]:
        """Every 25th person a manager, the 24 after them their staff, each of a weighted profession."""
        for area, count in per_area.items():
            chef = ""
            for n in range(max(1, round(count * staff_scale))):
                rid, name, email = person(f"{prefix}{area}", n)
                manager = n % 25 == 0
                yield Recipient(rid, name, email, organisation=organisation(area, n),
                                role=roles[0] if manager else roles[1],
                                profession="chef" if manager else rng.choice(professions), area=area,
                                manager="" if manager else chef)
                if manager:  # the 24 after a manager are theirs
                    chef = rid

    yield from memberships(MEMBERSHIPS, "", tuple(STAFF_PER_AREA))
    yield from staff(STAFF_PER_AREA, "hsa-", lambda area, n: HOSPITALS[area] if n % 5 else "Närhälsan",
                     ("chef", "medarbetare"))
    yield from memberships(FVIS_MEMBERSHIPS, "rvb-", tuple(FVIS_STAFF_PER_AREA))
    yield from staff(FVIS_STAFF_PER_AREA, "rvb-", lambda _area, _n: "Region Västerbotten", ("fvis-chef", "fvis-medarbetare"))
    for index, (municipality, area, options) in enumerate(municipalities):
        slug = f"kommun{index:02d}"
        for role, count in (("kommun-kontakt", 2), ("kommunal-ledning", 2),
                            ("kommunal-medarbetare", max(1, round(50 * staff_scale)))):
            for n in range(count):
                rid, name, email = person(f"{slug}-{role}", n)
                yield Recipient(
                    rid, name, email, organisation=f"{municipality} kommun", role=role,
                    profession="sjuksköterska" if role == "kommunal-medarbetare" and n % 3 == 0 else "",
                    area=area, municipality=municipality, options=options,
                )
