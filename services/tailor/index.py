"""An index over the directory: a member selector is answered by looking up its values, so that planning
costs what the audience costs, not what the directory does (an alert to a committee of twelve examines
twelve people, not 62 000)."""

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import overload

from services.tailor.directory import Recipient, member_filter

#: Directory attributes indexed by value; `options` is indexed by each option a person has.
SCALAR_ATTRIBUTES = ("organisation", "role", "profession", "area", "municipality")


class DirectoryIndex(Sequence[Recipient]):
    """The directory (a sequence, in its own order) with a posting list per attribute value."""

    def __init__(self, people: Iterable[Recipient]) -> None:
        self.people = list(people)
        # Positions as machine integers (4 bytes each), not lists of int objects (36): 6 MiB less at 100 000.
        self._postings: dict[str, dict[str, array[int]]] = {attr: {} for attr in SCALAR_ATTRIBUTES}
        self._postings["options"] = {}
        for n, person in enumerate(self.people):
            for attr in SCALAR_ATTRIBUTES:
                self._postings[attr].setdefault(getattr(person, attr), array("I")).append(n)
            for option in person.options:
                self._postings["options"].setdefault(str(option), array("I")).append(n)
        self.examined = 0  # people looked at by the last `members` call (for tests and the bench)

    def __len__(self) -> int:
        return len(self.people)

    @overload
    def __getitem__(self, index: int) -> Recipient: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Recipient]: ...

    def __getitem__(self, index: int | slice) -> Recipient | Sequence[Recipient]:
        return self.people[index]

    def __iter__(self) -> Iterator[Recipient]:
        return iter(self.people)

    def members(self, selector: Mapping[str, Iterable[str]]) -> list[Recipient]:
        """The people the selector selects, in directory order: the candidates of its most selective
        attribute, checked against the rest."""
        values = {attr: [str(v) for v in allowed] for attr, allowed in selector.items()}
        postings = {attr: [self._postings.get(attr, {}).get(v, array("I")) for v in allowed]
                    for attr, allowed in values.items()}
        if not postings:
            self.examined = len(self.people)
            return list(self.people)
        narrowest = min(postings.values(), key=lambda lists: sum(len(p) for p in lists))
        candidates = sorted({n for posting in narrowest for n in posting})
        self.examined = len(candidates)
        test = member_filter(selector)
        return [person for person in (self.people[n] for n in candidates) if test(person)]
