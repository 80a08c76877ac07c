"""The Latin-alphabet mode of :mod:`bench.population`: people with addresses, FEBRL/GeCo errors.

``population.persons(n, mode="latin")`` (or :func:`latin_population`) gives
the same :class:`~bench.population.GeneratedRecord` objects as the Chinese
mode, so :mod:`bench.linkage_quality` switches with one argument;
:func:`latin_records` gives the link records and the truth directly.

**People.** Households of one to five people at one address (street number,
street, town, the town's postcode) with a household phone half the time.
Names follow the frequencies of :mod:`bench.latin_names` (counted from
FEBRL's original records): common surnames are common, so same-name
strangers occur. A partner keeps their own surname 40% of the time; children
carry the head's surname; 8% of households with two or more children have
twins (same surname, birth date, address and phone, another given name,
the same sex half the time).
Resident ids are valid GB 11643 numbers (the Person standard's identifier).

**Departments**, each holding a share of the people, with its own quality
(its corruption rates are the defaults times ``quality``), its own
letter case, and with or without identifiers: ``civil_registry`` 95%,
``health`` 70%, ``social_services`` 60% (no identifiers), ``electoral_roll``
40% (no identifiers), then ``tax`` and ``education`` (no identifiers).

**Errors** (:class:`LatinCorruption`, per record, each recorded in
:attr:`GeneratedRecord.errors` when it changed something): keyboard typos in a
name (substitution by a neighbouring key, insertion, deletion, transposition)
or the address; OCR confusions (rn/m, 0/o, 1/l, 5/s ...) in a name, the
address or the postcode; phonetic spellings (ph/f, c/k, mc/mac ...); family and
given name swapped; day and month swapped; a date digit changed; the year one
off; missing given name, birth date, address, postcode or phone; the street
type abbreviated; moved (another address); a valid but wrong identifier
(rare); and in departments that have identifiers, some records without one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from bench import latin_names as names
from bench import population_data as data
from bench.population import (
    RESIDENT_ID_DOMAIN,
    SEED,
    GeneratedRecord,
    _mistype_resident_id,
    _registry_payload,
    _resident_id,
    _updated_at,
)
from schemas.validators import get_validator

if TYPE_CHECKING:
    from exchange.registry.linkage import LinkRecord

LATEST_BIRTH = date(2024, 12, 31)


@dataclass(frozen=True)
class LatinCorruption:
    """Per-record error rates of a department's view (defaults: the benchmark's)."""

    name_typo: float = 0.05
    address_typo: float = 0.03
    ocr: float = 0.02
    phonetic: float = 0.03
    names_swapped: float = 0.02
    date_swap: float = 0.02  # day and month (where that is another real date)
    date_typo: float = 0.02
    year_off: float = 0.015
    given_missing: float = 0.02
    birth_missing: float = 0.015
    address_missing: float = 0.04
    postcode_missing: float = 0.03
    phone_missing: float = 0.30
    phone_changed: float = 0.10
    street_abbreviated: float = 0.10
    moved: float = 0.08
    id_missing: float = 0.08  # in departments that have identifiers
    id_wrong: float = 0.003  # another valid number
    duplicate: float = 0.02

    def scaled(self, factor: float) -> LatinCorruption:
        """Every rate times ``factor`` (capped at 1)."""
        return LatinCorruption(**{k: min(1.0, v * factor) for k, v in self.__dict__.items()})


@dataclass(frozen=True)
class LatinDepartment:
    name: str
    coverage: float  # share of the population it holds
    trust: int  # 1 = most trusted
    has_ids: bool
    quality: float  # corruption rates times this
    case: str  # "title", "upper" or "lower"


LATIN_DEPARTMENTS = (
    LatinDepartment("civil_registry", 0.95, 1, True, 0.5, "title"),
    LatinDepartment("health", 0.70, 2, True, 1.0, "upper"),
    LatinDepartment("social_services", 0.60, 3, False, 1.2, "title"),
    LatinDepartment("electoral_roll", 0.40, 4, False, 1.5, "lower"),
    LatinDepartment("tax", 0.50, 5, False, 1.0, "upper"),
    LatinDepartment("education", 0.25, 6, False, 1.2, "title"),
)


@dataclass(frozen=True)
class Address:
    number: int
    street: str
    town: str
    postcode: str
    division: str

    @property
    def line(self) -> str:
        return f"{self.number} {self.street}, {self.town}"


@dataclass(frozen=True)
class LatinPerson:
    """A true person of the Latin population."""

    key: str
    resident_id: str
    family: str
    given: str
    birth: date
    sex: str
    address: Address
    phone: str | None
    household: int
    twin_of: str | None = None


class _Places:
    """Towns with a postcode and a division code each, and random addresses in them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        towns = names.towns()
        codes = rng.sample(range(2000, 8000), len(towns))
        self.postcode = {t: f"{c:04d}" for t, c in zip(towns, codes, strict=True)}
        self.division = {t: rng.choice(data.DIVISIONS) for t in towns}
        # Big towns first: a Zipf-like weight, so some towns are crowded.
        self.towns = towns
        self.weights = tuple(1.0 / (rank + 1) ** 0.7 for rank in range(len(towns)))

    def address(self) -> Address:
        town = self.rng.choices(self.towns, self.weights)[0]
        return Address(
            number=self.rng.randrange(1, 200),
            street=self.rng.choice(names.streets()),
            town=town,
            postcode=self.postcode[town],
            division=self.division[town],
        )


def _wrong_resident_id(number: str, rng: random.Random) -> str:
    """Another number that passes the connector's validator (check character, real date)."""
    valid = get_validator("cn.resident_id")
    while True:
        wrong = _mistype_resident_id(number, rng)
        if valid(wrong) is None:
            return wrong


def _phone(rng: random.Random) -> str:
    return rng.choice(data.MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _people(count: int, rng: random.Random, places: _Places, twin_rate: float) -> list[LatinPerson]:
    family_pool, family_weights = names.surnames()
    given_pool, given_weights = names.given_names()

    def family() -> str:
        return rng.choices(family_pool, family_weights)[0]

    def given(avoid: str = "") -> str:
        while True:
            name = rng.choices(given_pool, given_weights)[0]
            if name != avoid:
                return name

    people: list[LatinPerson] = []
    serial = 0
    household = 0
    while len(people) < count:
        household += 1
        size = rng.choices((1, 2, 3, 4, 5), (0.25, 0.3, 0.2, 0.17, 0.08))[0]
        address = places.address()
        shared_phone = _phone(rng) if rng.random() < 0.5 else None
        head_birth = date(1935, 1, 1) + timedelta(days=rng.randrange(365 * 60))
        surname = family()
        members: list[tuple[str, str, date, str, int | None]] = [
            (surname, given(), head_birth, rng.choice(("MALE", "FEMALE")), None)
        ]
        if size >= 2:
            born = head_birth + timedelta(days=rng.randrange(-2500, 2500))
            own = family() if rng.random() < 0.4 else surname
            members.append(
                (own, given(), min(born, LATEST_BIRTH), rng.choice(("MALE", "FEMALE")), None)
            )
        first_child = head_birth + timedelta(days=365 * 19)
        last_child = min(head_birth + timedelta(days=365 * 42), LATEST_BIRTH)
        children = size - 2 if first_child <= last_child else 0
        twins = children >= 2 and rng.random() < twin_rate
        for child in range(children):
            if twins and child == 1:
                previous = members[-1]
                sex = previous[3] if rng.random() < 0.5 else rng.choice(("MALE", "FEMALE"))
                members.append((surname, given(previous[1]), previous[2], sex, len(members) - 1))
                continue
            span = (last_child - first_child).days + 1
            born = first_child + timedelta(days=rng.randrange(span))
            members.append((surname, given(), born, rng.choice(("MALE", "FEMALE")), None))
        keys: list[str] = []
        for fam, first, born, sex, twin in members:
            serial += 1
            key = f"L{len(people) + 1:07d}"
            keys.append(key)
            adult = born.year <= 2006
            own_phone = rng.random() < (0.85 if adult else 0.3)
            phone = _phone(rng) if own_phone else shared_phone
            if twin is not None:  # twins share the phone their parents gave them
                phone = people[-1].phone
            people.append(
                LatinPerson(
                    key=key,
                    resident_id=_resident_id(address.division, born, serial, sex == "MALE"),
                    family=fam,
                    given=first,
                    birth=born,
                    sex=sex,
                    address=address,
                    phone=phone,
                    household=household,
                    twin_of=keys[twin] if twin is not None else None,
                )
            )
    return people[:count]


# --- errors ---------------------------------------------------------------------------------


def keyboard_typo(text: str, rng: random.Random) -> str:
    """One keyboard slip: a neighbouring key instead, inserted, a letter dropped or two swapped."""
    if not text:
        return text
    spot = rng.randrange(len(text))
    char = text[spot]
    near = names.KEYBOARD_NEIGHBOURS.get(char, "")
    roll = rng.random()
    if roll < 0.5 and near:
        return text[:spot] + rng.choice(near) + text[spot + 1 :]
    if roll < 0.65 and near:
        return text[:spot] + rng.choice(near) + text[spot:]
    if roll < 0.85 and len(text) > 2:
        return text[:spot] + text[spot + 1 :]
    if len(text) > 1:
        spot = min(spot, len(text) - 2)
        swapped = text[:spot] + text[spot + 1] + text[spot] + text[spot + 2 :]
        if swapped != text:
            return swapped
    return text[:spot] + (near[0] if near else "x") + text[spot + 1 :]


def _replace_one(text: str, table: tuple[tuple[str, str], ...], rng: random.Random) -> str | None:
    """``text`` with one occurrence of one applicable (old, new) pair replaced, if any applies."""
    found = [(old, new, i) for old, new in table for i in _occurrences(text, old)]
    if not found:
        return None
    old, new, spot = rng.choice(found)
    return text[:spot] + new + text[spot + len(old) :]


def _occurrences(text: str, part: str) -> list[int]:
    spots, start = [], text.find(part)
    while start >= 0:
        spots.append(start)
        start = text.find(part, start + 1)
    return spots


def ocr_error(text: str, rng: random.Random) -> str | None:
    return _replace_one(text, names.OCR_CONFUSIONS, rng)


def phonetic_error(text: str, rng: random.Random) -> str | None:
    return _replace_one(text, names.PHONETIC_VARIANTS, rng)


def swapped_day_month(day: date) -> date | None:
    """The date with day and month swapped, if that is another real date."""
    if day.day > 12 or day.day == day.month:
        return None
    return date(day.year, day.day, day.month)


def digit_error(day: date, rng: random.Random) -> date | None:
    """The date with one digit of YYYYMMDD changed, if that gives another plausible date."""
    digits = day.strftime("%Y%m%d")
    for _ in range(50):
        spot = rng.randrange(2, 8)  # not the millennium and century
        text = digits[:spot] + str(rng.randrange(10)) + digits[spot + 1 :]
        try:
            moved = date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            continue
        if moved != day and 1900 <= moved.year <= 2025:
            return moved
    return None


def year_off(day: date, rng: random.Random) -> date:
    year = day.year + rng.choice((-1, 1))
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February
        return day.replace(year=year, day=28)


def _cased(text: str | None, case: str) -> str | None:
    if text is None:
        return None
    if case == "upper":
        return text.upper()
    if case == "lower":
        return text.lower()
    return text.title()


def _abbreviated(street: str) -> str:
    head, _, kind = street.rpartition(" ")
    short = names.STREET_ABBREVIATIONS.get(kind)
    return f"{head} {short}" if head and short else street


def _view(
    person: LatinPerson,
    dept: LatinDepartment,
    rng: random.Random,
    places: _Places,
    c: LatinCorruption,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    errors: list[str] = []
    family, given = person.family, person.given
    address = person.address
    if rng.random() < c.moved:
        address = places.address()
        errors.append("moved")
    street = address.street
    if rng.random() < c.street_abbreviated:
        short = _abbreviated(street)
        if short != street:
            street = short
            errors.append("street_abbreviated")
    line: str | None = f"{address.number} {street}, {address.town}"
    postcode: str | None = address.postcode
    if rng.random() < c.name_typo:
        if rng.random() < 0.4:
            family = keyboard_typo(family, rng)
        else:
            given = keyboard_typo(given, rng)
        errors.append("name_typo")
    if rng.random() < c.address_typo:
        line = keyboard_typo(line or "", rng)
        errors.append("address_typo")
    if rng.random() < c.ocr:
        target = rng.choice(("family", "given", "address", "postcode"))
        before = {"family": family, "given": given, "address": line, "postcode": postcode}
        changed = ocr_error(before[target] or "", rng)
        if changed is not None:
            errors.append("ocr")
            if target == "family":
                family = changed
            elif target == "given":
                given = changed
            elif target == "address":
                line = changed
            else:
                postcode = changed
    if rng.random() < c.phonetic:
        in_family = rng.random() < 0.5
        changed = phonetic_error(family if in_family else given, rng)
        if changed is not None:
            errors.append("phonetic")
            family, given = (changed, given) if in_family else (family, changed)
    if rng.random() < c.names_swapped:
        family, given = given, family
        errors.append("names_swapped")
    born: date | None = person.birth
    if rng.random() < c.date_swap:
        swapped = swapped_day_month(person.birth)
        if swapped is not None:
            born = swapped
            errors.append("date_swap")
    if rng.random() < c.date_typo and born is not None:
        typo = digit_error(born, rng)
        if typo is not None:
            born = typo
            errors.append("date_typo")
    if rng.random() < c.year_off and born is not None:
        born = year_off(born, rng)
        errors.append("year_off")
    given_out: str | None = given
    if rng.random() < c.given_missing:
        given_out = None
        errors.append("given_missing")
    if rng.random() < c.birth_missing:
        born = None
        errors.append("birth_missing")
    if rng.random() < c.address_missing:
        line = None
        errors.append("address_missing")
    if rng.random() < c.postcode_missing:
        postcode = None
        errors.append("postcode_missing")
    phone = person.phone
    if phone is not None and rng.random() < c.phone_missing:
        phone = None
    elif rng.random() < c.phone_changed:
        phone = _phone(rng)
    resident_id: str | None = None
    if dept.has_ids:
        resident_id = person.resident_id
        if rng.random() < c.id_missing:
            resident_id = None
            errors.append("id_missing")
        elif rng.random() < c.id_wrong:
            resident_id = _wrong_resident_id(person.resident_id, rng)
            errors.append("id_wrong")
    family_out = _cased(family, dept.case)
    given_cased = _cased(given_out, dept.case)
    full = " ".join(part for part in (given_cased, family_out) if part)
    source = {
        "resident_id": resident_id,
        "family_name": family_out,
        "given_name": given_cased,
        "full_name": full,
        "birth_date": born,
        "sex": person.sex,
        "nationality": "AUS",
        "residence_division_code": address.division,
        "phone": phone,
        "address_line": _cased(line, dept.case),
        "postcode": postcode,
    }
    return source, tuple(errors)


def latin_population(
    count: int,
    *,
    seed: int = SEED,
    departments: int = 4,
    corruption: LatinCorruption | None = None,
    twin_rate: float = 0.08,
) -> tuple[list[LatinPerson], list[GeneratedRecord]]:
    """The true people and their records as ``departments`` (3-6) departments hold them."""
    if not 3 <= departments <= len(LATIN_DEPARTMENTS):
        raise ValueError(f"departments must be between 3 and {len(LATIN_DEPARTMENTS)}")
    rng = random.Random(seed)
    base = corruption or LatinCorruption()
    places = _Places(rng)
    people = _people(count, rng, places, twin_rate)
    records: list[GeneratedRecord] = []
    for dept in LATIN_DEPARTMENTS[:departments]:
        rates = base.scaled(dept.quality)
        local = 0
        for person in people:
            if rng.random() >= dept.coverage:
                continue
            copies = 2 if rng.random() < rates.duplicate else 1
            for _ in range(copies):
                local += 1
                source, errors = _view(person, dept, rng, places, rates)
                payload = _registry_payload(source, "resident_id", RESIDENT_ID_DOMAIN)
                records.append(
                    GeneratedRecord(
                        ref=f"person/{dept.name}/{dept.name[:2].upper()}-{local:07d}",
                        kind="person",
                        department=dept.name,
                        truth=person.key,
                        payload=payload,
                        source=source,
                        updated_at=_updated_at(rng),
                        errors=errors,
                    )
                )
    rng.shuffle(records)  # departments publish concurrently: arrival order is mixed
    return people, records


def latin_persons(count: int, *, seed: int = SEED, **options: Any) -> list[GeneratedRecord]:
    """Only the records of :func:`latin_population` (the shape of ``population.persons``)."""
    return latin_population(count, seed=seed, **options)[1]


def latin_records(size: int, seed: int = SEED) -> tuple[list[LinkRecord], dict[str, str]]:
    """Link records of a Latin population of ``size`` people, and each record's true person."""
    from exchange.registry.linkage import person_record

    generated = latin_persons(size, seed=seed)
    records = [person_record(g.ref, g.department, g.payload, g.updated_at) for g in generated]
    return records, {g.ref: g.truth for g in generated}


def trust_order() -> list[str]:
    """Latin department names, most trusted first."""
    return [d.name for d in sorted(LATIN_DEPARTMENTS, key=lambda d: d.trust)]


__all__ = [
    "LATIN_DEPARTMENTS",
    "Address",
    "LatinCorruption",
    "LatinDepartment",
    "LatinPerson",
    "latin_persons",
    "latin_population",
    "latin_records",
    "trust_order",
]
