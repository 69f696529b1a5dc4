"""An index over the directory: a member selector is answered by looking up its values, so that planning
costs what the audience costs, not what the directory does (an alert to a committee of twelve examines
twelve people, not 62 000).

The directory is kept in columns, not as one object per person: each person is a position, each attribute a
column of small integers into the few distinct values a directory repeats (organisations, roles, areas,
option sets). A `Recipient` is made only while it is looked at, and a selection is the positions it selects
(`People`), so that planning a fan-out to 100 000 people holds 4 bytes per person, not an object.
"""

from array import array
from collections.abc import Iterable, Iterator, Mapping

from services.tailor.directory import ROLE_SEPARATOR, People, Positional, Recipient, member_filter, roles_of

#: Directory attributes indexed by value; `options` is indexed by each option a person has.
SCALAR_ATTRIBUTES = ("organisation", "role", "profession", "area", "municipality", "manager")


class DirectoryIndex(Positional):
    """The directory (a sequence, in its own order) in columns, with a posting list per attribute value."""

    def __init__(self, people: Iterable[Recipient] = ()) -> None:
        # Every id in one buffer (UTF-8, each ending where `_id_ends` says): an id costs its length and 4
        # bytes, not a str object of 50 bytes and more and a list's reference (5 MiB less at 100 000).
        self._id_bytes = bytearray()
        self._id_ends = array("I")
        self._values: dict[str, list[str]] = {attr: [] for attr in SCALAR_ATTRIBUTES}
        self._codes: dict[str, dict[str, int]] = {attr: {} for attr in SCALAR_ATTRIBUTES}
        # Each person's value of an attribute as its number among the attribute's distinct values: two bytes
        # while there are fewer than 65 536 of them, four after.
        self._columns: dict[str, array[int]] = {attr: array("H") for attr in SCALAR_ATTRIBUTES}
        self._option_sets: list[frozenset[int]] = []
        self._option_codes: dict[frozenset[int], int] = {}
        self._options = array("H")
        # Positions as machine integers (4 bytes each), not lists of int objects (36): 6 MiB less at 100 000.
        self._postings: dict[str, dict[str, array[int]]] = {attr: {} for attr in SCALAR_ATTRIBUTES}
        self._postings["options"] = {}
        self.examined = 0  # people looked at by the last `members` call (for tests and the bench)
        for person in people:
            self.add(person.id, person.organisation, person.role, person.profession, person.area,
                     person.municipality, person.options, person.manager)

    def add(self, person_id: str, organisation: str, role: str, profession: str, area: str, municipality: str,
            options: frozenset[int], manager: str = "") -> None:
        """One more person, after the others (the store reads rows straight into the columns)."""
        n = len(self._id_ends)
        self._id_bytes += person_id.encode()
        self._id_ends.append(len(self._id_bytes))
        values = (organisation, role, profession, area, municipality, manager)
        for attr, value in zip(SCALAR_ATTRIBUTES, values, strict=True):
            codes = self._codes[attr]
            code = codes.get(value)
            if code is None:
                code = codes[value] = len(self._values[attr])
                self._values[attr].append(value)
                if code == 1 << 16:  # more distinct values than two bytes tell apart
                    self._columns[attr] = array("I", self._columns[attr])
            self._columns[attr].append(code)
            for each in (roles_of(value) if attr == "role" and ROLE_SEPARATOR in value else (value,)):
                self._postings[attr].setdefault(each, array("I")).append(n)
        code = self._option_codes.get(options)
        if code is None:
            code = self._option_codes[options] = len(self._option_sets)
            self._option_sets.append(options)
            if code == 1 << 16:
                self._options = array("I", self._options)
        self._options.append(code)
        for option in options:
            self._postings["options"].setdefault(str(option), array("I")).append(n)

    def __len__(self) -> int:
        return len(self._id_ends)

    def id_at(self, n: int) -> str:
        return self._id_bytes[self._id_ends[n - 1] if n else 0:self._id_ends[n]].decode()

    def ids(self, positions: Iterable[int] | None = None) -> Iterator[str]:
        """The ids at these positions (everyone's by default), one at a time."""
        return (self.id_at(n) for n in (range(len(self)) if positions is None else positions))

    def _person(self, n: int) -> Recipient:
        values, columns = self._values, self._columns
        return Recipient(id=self.id_at(n), name="", email="",
                         organisation=values["organisation"][columns["organisation"][n]],
                         role=values["role"][columns["role"][n]],
                         profession=values["profession"][columns["profession"][n]],
                         area=values["area"][columns["area"][n]],
                         municipality=values["municipality"][columns["municipality"][n]],
                         options=self._option_sets[self._options[n]],
                         manager=values["manager"][columns["manager"][n]])

    def everyone(self) -> People:
        return People(self, array("I", range(len(self))))

    def members(self, selector: Mapping[str, Iterable[str]]) -> People:
        """The people the selector selects, in directory order: the candidates of its most selective
        attribute, checked against the rest."""
        values = {attr: [str(v) for v in allowed] for attr, allowed in selector.items()}
        postings = {attr: [self._postings.get(attr, {}).get(v, array("I")) for v in allowed]
                    for attr, allowed in values.items()}
        if not postings:
            self.examined = len(self)
            return self.everyone()
        narrowest = min(postings.values(), key=lambda lists: sum(len(p) for p in lists))
        if len(narrowest) == 1:  # one value: its posting list is in directory order already
            candidates = narrowest[0]
        else:
            candidates = array("I", sorted({n for posting in narrowest for n in posting}))
        self.examined = len(candidates)
        if len(postings) == 1:  # the candidates are exactly the selected (an attribute's values, or options)
            return People(self, array("I", candidates))
        test = member_filter(selector)
        return People(self, array("I", (n for n in candidates if test(self._person(n)))))

    def positions_of(self, ids: Iterable[str]) -> dict[str, int]:
        """Each of these ids that is in the directory, with its position (a lookup made for the occasion:
        the index keeps no map from id to person)."""
        wanted = set(ids)
        return {person_id: n for n, person_id in enumerate(self.ids()) if person_id in wanted}

    def recipients(self, ids: Iterable[str]) -> dict[str, Recipient]:
        """id → person, for each of these ids that is in the directory."""
        return {person_id: self._person(n) for person_id, n in self.positions_of(ids).items()}

    def people(self, ids: Iterable[str], found: Mapping[str, int]) -> People:
        """These ids' people, in the order given, as a selection; `found` is `positions_of` their ids (an id
        not in it has left the directory and is left out)."""
        return People(self, array("I", (found[i] for i in ids if i in found)))
