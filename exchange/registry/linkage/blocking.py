"""Blocking keys: which records are worth comparing with a new one.

Comparing a new record with every record already held would cost time in
proportion to the registry; instead each record gets a few short keys, and
only records sharing a key are compared. The rules are joined by OR: a true
pair is missed only if the errors on its two sides break every key at once,
so the keys are chosen to fail independently:

* ``i`` the identifier;
* ``d`` / ``g`` the birth date (the same key for a date and its
  day/month-swapped form) with how the family / given name sounds (so a
  typo in one of the names keeps a key); a name's *sound* is its toneless pinyin, or for a name in
  Latin letters its NYSIIS code (:func:`~exchange.registry.linkage.features.sound_key`);
* ``n`` both names' sounds (order-free) with the birth year;
* ``f`` both names' sounds with the birth month and day (for year typos;
  only for a record without a postcode, which ``w`` and ``b`` cover);
* ``b`` the birth date (day and month unordered) with the postcode's first
  two characters (both names misspelt or replaced; FEBRL3's bound on recall
  0.985 -> 0.997 for 0.03 more candidate pairs a record);
* ``w`` both names' sounds (order-free) with the postcode's first two
  characters (a wrong or missing date, a postcode typo);
* ``z`` the postcode with the family name's sound's first letter, and again
  with the given name's (a wrong date with a misspelt name; names in the
  other order keep both);
* ``a`` the longest word of a Latin-alphabet address line with the family
  name's sound's first letter (a wrong date and postcode; the second-longest
  word with the given name's found almost no more pairs, FEBRL3 recall bound
  0.9619 against 0.9620, for 1.3 more candidate pairs a record);
* ``p`` the phone number;
* ``s`` the birth date (day and month unordered) with the street number (the
  smallest number of the first address line but the postcode): both names
  misspelt and the postcode mistyped (FEBRL3's bound on recall 0.9831 ->
  0.9890 for 0.01 more candidate pairs a record). The last resort: a record
  that already holds ten keys goes without it.

Blocks grow with the registry, so each key holds a value rare enough that the
pairs it makes stay few: a birth date alone is shared by about one record in
31,000, some 30 records in a registry of a million, and its pairs would grow
with the square of the registry; with a name's sound beside it a block holds
a few percent of that. The registry builder ignores a key held by more than
1,000 records (a placeholder value); the in-memory linker may cap a block's
size (``max_block`` of :class:`~exchange.registry.linkage.incremental.IncrementalLinker`).

At most ten keys a record, each at most 32 characters, prefixed by a letter
that says which rule made it (:data:`RULE_FIELDS` says which fields each rule
reads, for the estimator); person and organisation keys never collide.
"""

from __future__ import annotations

from typing import Final

from exchange.registry.linkage.features import ORGANISATION, PERSON, LinkRecord

IDENTIFIER_CHARS: Final = 16  # of a 64-hex blind index: 64 bits, collisions are harmless
NAME_CHARS: Final = 12  # of a name's pinyin (long Latin-script names are cut)
ADDRESS_CHARS: Final = 8  # of an address word
MAX_KEYS: Final = 10

_NAMES: Final = ("family_name", "given_name")
# The compared fields each blocking rule (key letter) reads: the pairs a rule finds agree on
# them more than other pairs do, so an estimator learns nothing about those fields' m from
# them (fit_unsupervised estimates them from the other rules' pairs).
RULE_FIELDS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    PERSON: {
        "i": ("identifier",),
        "d": ("birth_date", "family_name"),
        "g": ("birth_date", "given_name"),
        "n": ("birth_date", *_NAMES),
        "f": ("birth_date", *_NAMES),
        "w": ("postcode", *_NAMES),
        "b": ("birth_date", "postcode"),
        "z": ("postcode", *_NAMES),
        "a": ("address", "family_name"),
        "p": ("phone",),
        "s": ("birth_date", "address"),
    },
    ORGANISATION: {
        "u": ("identifier",),
        "o": ("legal_name",),
        "r": ("registration_date", "division_code"),
        "l": ("legal_representative_name", "division_code"),
    },
}


def _month_day(birth: str) -> str:
    """Month and day in order-free form: the same for a date and its swapped form."""
    month, day = birth[4:6], birth[6:8]
    return month + day if month <= day else day + month


def _initial(name: str | None) -> str:
    return name[0] if name else ""


def _address_words(tokens: frozenset[str]) -> list[str]:
    """The longest word of a Latin-alphabet address line (ties: alphabetical), or none."""
    words = [t for t in tokens if t.isascii() and t.isalpha() and len(t) >= 4]
    return [w[:ADDRESS_CHARS] for w in sorted(words, key=lambda w: (-len(w), w))[:1]]


def _street_number(rec: LinkRecord) -> str | None:
    """The smallest number of the first address line other than its postcode, or none."""
    if not rec.addresses:
        return None
    numbers = [t for t in rec.addresses[0] if t.isdigit() and t != rec.postcode_code]
    return min(numbers, key=lambda t: (len(t), t))[:ADDRESS_CHARS] if numbers else None


def _person_keys(rec: LinkRecord) -> set[str]:
    keys: set[str] = set()
    if rec.identifier:
        keys.add("i:" + rec.identifier[:IDENTIFIER_CHARS].lower())
    family, given = rec.family_sound, rec.given_sound
    names = [p[:NAME_CHARS] for p in (family, given) if p]
    if rec.birth:
        date = rec.birth[:4] + _month_day(rec.birth)
        if not names:
            keys.add(f"d:{date}")
        for letter, name in (("d", family), ("g", given)):
            if name:
                keys.add(f"{letter}:{date}{name[:NAME_CHARS]}")
        if len(names) == 2:
            first, second = sorted(names)
            keys.add(f"n:{first}.{second}:{rec.birth[:4]}")
            if not rec.postcode_code:  # with a postcode, w: and b: find year typos
                keys.add(f"f:{names[0]}.{names[1]}:{_month_day(rec.birth)}")
        if rec.postcode_code:
            keys.add(f"b:{date}:{rec.postcode_code[:2]}")
    if rec.postcode_code:
        if len(names) == 2:
            first, second = sorted(names)
            keys.add(f"w:{first}.{second}:{rec.postcode_code[:2]}")
        # One key a name part, under one letter: names in the other order keep both.
        keys.update(f"z:{rec.postcode_code[:10]}:{_initial(n)}" for n in (family, given) if n)
    if rec.addresses and family:
        words = _address_words(rec.addresses[0])
        if words:
            keys.add(f"a:{words[0]}:{family[0]}")
    if rec.phone_digits:
        keys.add("p:" + rec.phone_digits[-11:])
    number = _street_number(rec)
    if rec.birth and number and len(keys) < MAX_KEYS:  # the last resort: dropped at the limit
        keys.add(f"s:{rec.birth[:4]}{_month_day(rec.birth)}:{number}")
    return keys


def _organisation_keys(rec: LinkRecord) -> set[str]:
    keys: set[str] = set()
    if rec.identifier:
        keys.add("u:" + rec.identifier)
    if rec.core_py:
        keys.add("o:" + rec.core_py[:24])
    if rec.birth and rec.division:
        keys.add(f"r:{rec.birth}:{rec.division[:4]}")
    if rec.representative_py and rec.division:
        keys.add(f"l:{rec.representative_py[:20]}:{rec.division[:4]}")
    return keys


def block_keys(rec: LinkRecord) -> set[str]:
    """The blocking keys of a record: short strings, at most ten."""
    if rec.kind == ORGANISATION:
        return _organisation_keys(rec)
    return _person_keys(rec)
