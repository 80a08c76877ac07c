"""A synthetic population seen by several departments, each with its own errors.

For the linkage quality benchmark (:mod:`bench.linkage_quality`): every record
says which true person (or organisation) it describes, so the links the
linker makes can be scored. Seeded: the same arguments give the same records.

**People.** Households of one to four people share a residence division and
sometimes a household phone; children carry the head's family name, and 4%
of households with two children have twins (about 2% of children are twins:
same family name, birth date and address, and often a shared character in
the given name; the hardest pairs to keep apart). Family names follow the
real frequency curve (王, 李 and 张 are each about 7%), so same-name
strangers are common. Resident ids are valid
GB 11643 numbers built from the division, birth date and a serial.

**Departments.** ``household_registry`` holds 95% of the people, ``health``
70%, ``social_security`` 60%, ``civil_affairs`` 30% (then ``tax`` and
``education`` if more than four are asked for). Each holds its own view of a
person, taken at its own time, and corrupted independently. The default
:class:`Corruption`, per record:

* name typo 4%: one character replaced by a homophone (a different hanzi
  with the same pinyin, the usual input-method slip; half of typos), by the
  character of a pinyin one adjacent key away (a quarter), or by another name
  character (a quarter); one typo in five hits the family name;
* name variant 2%: family and given name swapped (with ``full_name`` written
  given name first), a given-name character dropped or added, or the name in
  traditional characters;
* birth date: day and month swapped 2% (where the swapped date exists), one
  digit changed or two adjacent digits transposed 1.5%;
* identifier missing 10% (no blind index), mistyped 1% (another valid number:
  a digit changed and the check character recomputed, as only a valid number
  passes the connector; its blind index is simply different);
* moved 15% (another division, in the same city three times in five),
  phone missing 25%, changed 15% and mistyped (a digit) 1%, sex ``UNKNOWN``
  2% and wrong 0.5%;
* duplicate 2%: the department holds a second, independently corrupted
  record of the person under another local id.

**Organisations** (for the organisation model) are simpler: market
regulation, tax, social security and statistics; name variants (region
moved into brackets, legal form spelled differently, region left out) 10%,
name typos 3%, USCC missing 5% and mistyped 1%, moved 10%, representative
changed 8% or mistyped 3%, date errors 3% (half day/month swaps),
duplicates 1%.

Records come as registry payloads (what the registry builder stores: dates
as ISO strings, ``resident_id_bidx`` under :data:`LINKAGE_KEY`; the encrypted
``resident_id`` itself is left out, since linkage never reads it) and with
the clear source record a connector would read, for feeding Kafka later.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench import population_data as data
from exchange.security.blindindex import blind_index
from schemas.validators import resident_id_check_character, uscc_check_character

LINKAGE_KEY = b"bench-linkage-key-not-a-secret-0"
RESIDENT_ID_DOMAIN = "cn.resident_id"  # the validator name, as the connectors use
SEED = 20260701
LATEST_BIRTH = date(2024, 12, 31)


@dataclass(frozen=True)
class Corruption:
    """Per-record error rates of a department's view (defaults: the benchmark's)."""

    name_typo: float = 0.04
    name_variant: float = 0.02
    date_swap: float = 0.02
    date_typo: float = 0.015
    id_missing: float = 0.10
    id_mistyped: float = 0.01
    moved: float = 0.15
    phone_missing: float = 0.25
    phone_changed: float = 0.15
    phone_typo: float = 0.01
    sex_unknown: float = 0.02
    sex_wrong: float = 0.005
    duplicate: float = 0.02

    def scaled(self, factor: float) -> Corruption:
        """Every rate times ``factor`` (capped at 1), for sweeps."""
        values = {k: min(1.0, v * factor) for k, v in self.__dict__.items()}
        return Corruption(**values)


@dataclass(frozen=True)
class Department:
    name: str
    coverage: float  # share of the population it holds
    trust: int  # 1 = most trusted


PERSON_DEPARTMENTS = (
    Department("household_registry", 0.95, 1),
    Department("health", 0.70, 2),
    Department("social_security", 0.60, 3),
    Department("civil_affairs", 0.30, 4),
    Department("tax", 0.50, 5),
    Department("education", 0.25, 6),
)
ORGANISATION_DEPARTMENTS = (
    Department("market_regulation", 0.98, 1),
    Department("tax", 0.80, 2),
    Department("social_security", 0.50, 3),
    Department("statistics", 0.40, 4),
)


@dataclass(frozen=True)
class GeneratedRecord:
    """One department's record of one true person or organisation."""

    ref: str
    kind: str
    department: str
    truth: str  # the true entity
    payload: dict[str, Any]  # as the registry stores it
    source: dict[str, Any] = field(repr=False)  # as a connector would read it
    updated_at: datetime = field(repr=False)
    errors: tuple[str, ...] = field(default=(), repr=False)  # corruptions applied (Latin mode)


@dataclass
class _Person:
    key: str
    resident_id: str
    family: str
    given: str
    birth: date
    sex: str
    division: str
    phone: str | None


class _Names:
    """Random names and their corruptions, from the character tables."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.by_pinyin: dict[str, list[str]] = defaultdict(list)
        for char in data.COMMON_CHARS:
            self.by_pinyin[data.pinyin_of(char)].append(char)

    def family(self) -> str:
        return self.rng.choices(data.SURNAMES, data.SURNAME_WEIGHTS)[0]

    def given(self, sex: str) -> str:
        pool, weights = data.GIVEN[sex]
        count = 1 if self.rng.random() < 0.3 else 2
        return "".join(self.rng.choices(pool, weights, k=count))

    def homophone(self, char: str) -> str | None:
        others = [c for c in self.by_pinyin.get(data.pinyin_of(char), []) if c != char]
        return self.rng.choice(others) if others else None

    def adjacent_key(self, char: str) -> str | None:
        sound = data.pinyin_of(char)
        spots = list(range(len(sound)))
        self.rng.shuffle(spots)
        for spot in spots:
            for key in data.KEYBOARD_NEIGHBOURS.get(sound[spot], ""):
                found = self.by_pinyin.get(sound[:spot] + key + sound[spot + 1 :])
                if found:
                    return self.rng.choice(found)
        return None

    def typo(self, family: str, given: str) -> tuple[str, str]:
        in_family = self.rng.random() < 0.2
        text = family if in_family else given
        spot = self.rng.randrange(len(text))
        roll = self.rng.random()
        new: str | None = None
        if roll < 0.5:
            new = self.homophone(text[spot])
        elif roll < 0.75:
            new = self.adjacent_key(text[spot])
        new = new or self.rng.choice(data.GIVEN_ALL)
        text = text[:spot] + new + text[spot + 1 :]
        return (text, given) if in_family else (family, text)


def _resident_id(division: str, born: date, serial: int, male: bool) -> str:
    body = f"{division}{born:%Y%m%d}{(serial * 2 + (1 if male else 0)) % 1000:03d}"
    return body + resident_id_check_character(body)


def _mistype_resident_id(number: str, rng: random.Random) -> str:
    while True:
        spot = rng.randrange(17)
        body = number[:spot] + str(rng.randrange(10)) + number[spot + 1 : 17]
        if body != number[:17]:
            return body + resident_id_check_character(body)


def _phone(rng: random.Random) -> str:
    return rng.choice(data.MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _corrupt_date(born: date, rng: random.Random) -> date:
    digits = born.strftime("%Y%m%d")
    for _ in range(50):
        spot = rng.randrange(7)
        if rng.random() < 0.3:  # adjacent transposition
            text = digits[:spot] + digits[spot + 1] + digits[spot] + digits[spot + 2 :]
        else:
            spot = rng.randrange(8)
            text = digits[:spot] + str(rng.randrange(10)) + digits[spot + 1 :]
        try:
            moved = datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            continue
        if moved != born and 1900 <= moved.year <= 2025:
            return moved
    return born


def _swapped(day: date) -> date | None:
    """The date with day and month swapped, if that is another real date."""
    if day.day > 12 or day.day == day.month:
        return None
    return date(day.year, day.day, day.month)


def _moved(division: str, rng: random.Random) -> str:
    same_city = [d for d in data.DIVISIONS if d[:4] == division[:4] and d != division]
    if same_city and rng.random() < 0.6:
        return rng.choice(same_city)
    return rng.choice([d for d in data.DIVISIONS if d != division])


def _people(count: int, rng: random.Random, twin_rate: float) -> list[_Person]:
    names = _Names(rng)
    people: list[_Person] = []
    serial = 0
    while len(people) < count:
        size = rng.choices((1, 2, 3, 4), (0.25, 0.3, 0.3, 0.15))[0]
        division = rng.choice(data.DIVISIONS)
        shared_phone = _phone(rng) if rng.random() < 0.5 else None
        head_birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 56))
        head_sex = rng.choice(("MALE", "FEMALE"))
        family = names.family()
        members: list[tuple[str, str, date, str]] = [
            (family, names.given(head_sex), head_birth, head_sex)
        ]
        if size >= 2:
            sex = "FEMALE" if head_sex == "MALE" else "MALE"
            born = head_birth + timedelta(days=rng.randrange(-1800, 1800))
            members.append((names.family(), names.given(sex), born, sex))
        twins = size == 4 and rng.random() < twin_rate
        first_child = head_birth + timedelta(days=365 * 20)
        last_child = min(head_birth + timedelta(days=365 * 38), LATEST_BIRTH)
        for child in range(size - 2 if first_child <= last_child else 0):
            sex = rng.choice(("MALE", "FEMALE"))
            if twins and child == 1:
                born = members[-1][2]
                first = members[-1][1]
                given = first
                while given == first:  # twins share a character half the time, never the name
                    given = names.given(sex)
                    if len(first) == 2 and rng.random() < 0.5:
                        given = first[0] + given[-1]
            else:
                born = first_child + timedelta(
                    days=rng.randrange((last_child - first_child).days + 1)
                )
                given = names.given(sex)
            members.append((family, given, born, sex))
        for fam, given, born, sex in members:
            serial += 1
            adult = born.year <= 2008
            own_phone = rng.random() < (0.85 if adult else 0.3)
            people.append(
                _Person(
                    key=f"P{len(people) + 1:07d}",
                    resident_id=_resident_id(division, born, serial, sex == "MALE"),
                    family=fam,
                    given=given,
                    birth=born,
                    sex=sex,
                    division=division,
                    phone=_phone(rng) if own_phone else shared_phone,
                )
            )
    return people[:count]


def _person_view(
    person: _Person, rng: random.Random, names: _Names, c: Corruption
) -> dict[str, Any]:
    family, given, swapped = person.family, person.given, False
    if rng.random() < c.name_typo:
        family, given = names.typo(family, given)
    if rng.random() < c.name_variant:
        roll = rng.random()
        if roll < 0.4:
            swapped = True
        elif roll < 0.75:
            if len(given) == 2:
                given = given[rng.randrange(2)]
            else:
                given += rng.choice(data.GIVEN_ALL)
        else:
            family, given = data.traditional(family), data.traditional(given)
    born = person.birth
    if rng.random() < c.date_swap:
        born = _swapped(born) or born
    if rng.random() < c.date_typo:
        born = _corrupt_date(born, rng)
    resident_id: str | None = person.resident_id
    if rng.random() < c.id_missing:
        resident_id = None
    elif rng.random() < c.id_mistyped:
        resident_id = _mistype_resident_id(person.resident_id, rng)
    sex = person.sex
    roll = rng.random()
    if roll < c.sex_unknown:
        sex = "UNKNOWN"
    elif roll < c.sex_unknown + c.sex_wrong:
        sex = "FEMALE" if sex == "MALE" else "MALE"
    phone = person.phone
    if phone is not None and rng.random() < c.phone_missing:
        phone = None
    elif rng.random() < c.phone_changed:
        phone = _phone(rng)
    elif phone is not None and rng.random() < c.phone_typo:
        spot = rng.randrange(3, len(phone))
        phone = (
            phone[:spot] + str((int(phone[spot]) + rng.randrange(1, 10)) % 10) + phone[spot + 1 :]
        )
    division = _moved(person.division, rng) if rng.random() < c.moved else person.division
    return {
        "resident_id": resident_id,
        "family_name": given if swapped else family,
        "given_name": family if swapped else given,
        "full_name": given + family if swapped else family + given,
        "birth_date": born,
        "sex": sex,
        "nationality": "CHN",
        "residence_division_code": division,
        "phone": phone,
    }


def _registry_payload(source: dict[str, Any], identifier: str, domain: str) -> dict[str, Any]:
    payload = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in source.items()}
    plain = payload.pop(identifier)
    if domain:
        if plain is not None:
            payload[identifier + "_bidx"] = blind_index(LINKAGE_KEY, domain, plain)
    else:
        payload[identifier] = plain
    return payload


def _updated_at(rng: random.Random) -> datetime:
    start = datetime(2022, 1, 1, tzinfo=UTC)
    return start + timedelta(seconds=rng.randrange(4 * 365 * 86400))


def _views(
    kind: str,
    truths: list[Any],
    departments: tuple[Department, ...],
    rng: random.Random,
    make: Any,
    corruption: Corruption,
) -> list[GeneratedRecord]:
    records: list[GeneratedRecord] = []
    for dept in departments:
        local = 0
        for truth in truths:
            if rng.random() >= dept.coverage:
                continue
            copies = 2 if rng.random() < corruption.duplicate else 1
            for _ in range(copies):
                local += 1
                source, payload = make(truth)
                records.append(
                    GeneratedRecord(
                        ref=f"{kind}/{dept.name}/{dept.name[:2].upper()}-{local:07d}",
                        kind=kind,
                        department=dept.name,
                        truth=truth.key,
                        payload=payload,
                        source=source,
                        updated_at=_updated_at(rng),
                    )
                )
    rng.shuffle(records)  # departments publish concurrently: arrival order is mixed
    return records


def persons(
    count: int,
    *,
    seed: int = SEED,
    departments: int = 4,
    corruption: Corruption | None = None,
    twin_rate: float = 0.04,
    mode: str = "chinese",
) -> list[GeneratedRecord]:
    """Person records of ``count`` true people as ``departments`` (3-6) departments hold them.

    ``mode="latin"`` gives the Latin-alphabet population of :mod:`bench.population_latin`
    (its own corruption, :class:`~bench.population_latin.LatinCorruption`, and
    twin rate; ``corruption`` and ``twin_rate`` apply to the Chinese mode only).
    """
    if mode == "latin":
        from bench.population_latin import latin_persons

        return latin_persons(count, seed=seed, departments=departments)
    if mode != "chinese":
        raise ValueError(f"mode must be 'chinese' or 'latin', not {mode!r}")
    if not 3 <= departments <= len(PERSON_DEPARTMENTS):
        raise ValueError(f"departments must be between 3 and {len(PERSON_DEPARTMENTS)}")
    rng = random.Random(seed)
    c = corruption or Corruption()
    people = _people(count, rng, twin_rate)
    names = _Names(rng)

    def make(person: _Person) -> tuple[dict[str, Any], dict[str, Any]]:
        source = _person_view(person, rng, names, c)
        return source, _registry_payload(source, "resident_id", RESIDENT_ID_DOMAIN)

    return _views("person", people, PERSON_DEPARTMENTS[:departments], rng, make, c)


def trust_order(kind: str = "person", mode: str = "chinese") -> list[str]:
    """Department names, most trusted first (``mode="latin"``: the Latin population's)."""
    if mode == "latin":
        from bench.population_latin import trust_order as latin_trust_order

        return latin_trust_order()
    table = PERSON_DEPARTMENTS if kind == "person" else ORGANISATION_DEPARTMENTS
    return [d.name for d in sorted(table, key=lambda d: d.trust)]


@dataclass
class _Organisation:
    key: str
    uscc: str
    region: str
    trade: str
    industry: str
    form: str
    registered: date
    division: str
    representative: str


def _organisation_view(org: _Organisation, rng: random.Random, names: _Names) -> dict[str, Any]:
    region, trade, form, bracketed = org.region, org.trade, org.form, False
    if rng.random() < 0.10:
        roll = rng.random()
        if roll < 0.5:
            bracketed = True
        elif roll < 0.8:
            form = data.FORM_VARIANTS.get(form, form)
        else:
            region = ""
    if rng.random() < 0.03:
        spot = rng.randrange(len(trade))
        new = names.homophone(trade[spot]) or rng.choice(data.TRADE_CHARS)
        trade = trade[:spot] + new + trade[spot + 1 :]
    name = (
        f"{trade}{org.industry}\uff08{region}\uff09{form}" if bracketed and region  # full-width
        else f"{region}{trade}{org.industry}{form}"
    )  # fmt: skip
    uscc: str | None = org.uscc
    if rng.random() < 0.05:
        uscc = None
    elif rng.random() < 0.01:
        body = org.uscc[:8] + f"{rng.randrange(10**9):09d}"
        uscc = body + uscc_check_character(body)
    registered = org.registered
    if rng.random() < 0.03:
        swapped = _swapped(registered) if rng.random() < 0.5 else None
        registered = swapped or _corrupt_date(registered, rng)
    representative = org.representative
    if rng.random() < 0.08:
        representative = names.family() + names.given(rng.choice(("MALE", "FEMALE")))
    elif rng.random() < 0.03:
        family, given = names.typo(representative[0], representative[1:] or representative)
        representative = family + given
    division = _moved(org.division, rng) if rng.random() < 0.10 else org.division
    return {
        "uscc": uscc,
        "legal_name": name,
        "registration_date": registered,
        "registered_division_code": division,
        "legal_representative_name": representative,
    }


def organisations(count: int, *, seed: int = SEED) -> list[GeneratedRecord]:
    """Organisation records of ``count`` true organisations, as four departments hold them."""
    rng = random.Random(seed)
    names = _Names(rng)
    orgs: list[_Organisation] = []
    for i in range(count):
        division = rng.choice(data.DIVISIONS)
        body = f"91{division}{rng.randrange(10**9):09d}"
        orgs.append(
            _Organisation(
                key=f"O{i + 1:07d}",
                uscc=body + uscc_check_character(body),
                region=data.REGION_OF.get(division[:2], ""),
                trade="".join(rng.choices(data.TRADE_CHARS, k=2)),
                industry=rng.choice(data.INDUSTRIES),
                form=rng.choice(data.LEGAL_FORMS),
                registered=date(1990, 1, 1) + timedelta(days=rng.randrange(365 * 35)),
                division=division,
                representative=names.family() + names.given(rng.choice(("MALE", "FEMALE"))),
            )
        )

    def make(org: _Organisation) -> tuple[dict[str, Any], dict[str, Any]]:
        source = _organisation_view(org, rng, names)
        return source, _registry_payload(source, "uscc", "")

    dup = Corruption(duplicate=0.01)
    return _views("organisation", orgs, ORGANISATION_DEPARTMENTS, rng, make, dup)


def main() -> None:
    """``python -m bench.population [--mode latin] [--persons N] [--out FILE]``: generate,
    summarise (records per department, errors per kind) and optionally write JSON Lines."""
    import argparse
    import json
    import sys
    from collections import Counter
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Generate the synthetic person population.")
    parser.add_argument("--mode", choices=("chinese", "latin"), default="chinese")
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--departments", type=int, default=4)
    parser.add_argument("--out", type=Path, help="write the records here as JSON Lines")
    args = parser.parse_args()
    records = persons(args.persons, seed=args.seed, departments=args.departments, mode=args.mode)
    print(f"{len(records):,} records of {args.persons:,} persons ({args.mode})")
    for name, count in sorted(Counter(g.department for g in records).items()):
        print(f"  {name}: {count:,} records")
    errors = Counter(e for g in records for e in g.errors)
    for name, count in errors.most_common():
        print(f"  error {name}: {count:,} ({count / len(records):.2%})")
    if args.out:
        with args.out.open("w", encoding="utf-8") as out:
            for g in records:
                row = {"ref": g.ref, "department": g.department, "truth": g.truth,
                       "payload": g.payload, "errors": list(g.errors),
                       "updated_at": g.updated_at.isoformat()}  # fmt: skip
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
