"""Link records: what the linker compares, read from registry payloads and normalised once.

A :class:`LinkRecord` holds the fields of a ``Person`` or ``Organisation``
record that linkage uses, and derived forms computed when it is built, so that
comparing two records (done far more often than building one) does no
normalisation: NFKC-normalised names without spaces or separators, toneless
pinyin of each name (a homophone, i.e. a different character with the same
pronunciation, is the most common error of a pinyin input method), the birth
date as 8 digits, the phone as bare digits.

The identifier is never a clear identity number: for persons it is the blind
index ``resident_id_bidx`` (equal indexes mean equal normalised numbers; the
index says nothing about how two different numbers differ), for organisations
the public unified social credit code.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from itertools import pairwise
from typing import Any, Final

import jellyfish
from pypinyin import Style, lazy_pinyin

PERSON: Final = "person"
ORGANISATION: Final = "organisation"

# Two-character family names; a full name that starts with one is split after it.
_COMPOUND: Final = (
    "欧阳", "司马", "诸葛", "上官", "皇甫", "东方", "慕容", "令狐", "司徒", "夏侯",
    "尉迟", "公孙", "长孙", "宇文", "轩辕", "端木", "独孤", "南宫", "西门", "百里",
    "呼延", "万俟", "澹台", "公冶", "宗政", "濮阳", "太史", "申屠", "闻人", "赫连",
)  # fmt: skip
COMPOUND_SURNAMES: Final = frozenset(_COMPOUND)
# Characters read differently as a family name than in ordinary words.
_SURNAME_READINGS: Final = {
    "单": "shan", "曾": "zeng", "解": "xie", "区": "ou", "查": "zha", "仇": "qiu",
    "朴": "piao", "秘": "bi", "盖": "ge", "缪": "miao", "翟": "zhai", "乐": "yue",
    "覃": "qin", "种": "chong", "尉": "yu", "长": "zhang", "重": "chong", "万": "wan",
}  # fmt: skip
_SEPARATORS: Final = re.compile("[\\s·•・.\\-_'\u2019]+")  # \u2019: typographic apostrophe
# The legal-form suffixes of Chinese organisation names, longest first.
_LEGAL_FORMS: Final = (
    "股份有限公司", "有限责任公司", "有限公司", "普通合伙", "有限合伙", "合伙企业",
    "个人独资企业", "专业合作社", "合作社", "分公司", "股份公司", "集团", "公司", "个体工商户",
)  # fmt: skip
_BRACKETED: Final = re.compile(r"\([^)]*\)")
# Leading place names that registrations add or drop: 北京华信科技 / 华信科技(北京), brackets
# being half-width after NFKC.
_REGION_PREFIX: Final = re.compile(
    r"^(?:北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|"
    r"湖北|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|"
    r"澳门|广州|深圳|杭州|南京|武汉|成都|西安|苏州|厦门|青岛|大连|宁波)(?:省|市|自治区)?"
)


_PUNCTUATION: Final = re.compile(r"[^\w\s]+")
_CJK: Final = re.compile("[\u3400-\u9fff\uf900-\ufaff]")
PHONETIC_CHARS: Final = 8  # of a phonetic code, in blocking keys


def is_latin(name: str | None) -> bool:
    """Whether a normalised name is written in Latin letters only (``SMITH``, not ``张伟``)."""
    return bool(name) and name.isascii() and name.isalpha()  # type: ignore[union-attr]


@lru_cache(maxsize=65536)
def phonetic(name: str) -> str:
    """A phonetic code of a Latin-alphabet name (NYSIIS, jellyfish): ``SMYTH`` = ``SMITH``."""
    return jellyfish.nysiis(name) or name


@lru_cache(maxsize=65536)
def metaphone(name: str) -> str:
    """Metaphone of a Latin-alphabet name, a second phonetic code (``PHILIP`` = ``FILIP``)."""
    return jellyfish.metaphone(name) or name


def sound_key(name: str | None, *, family: bool = False) -> str | None:
    """How a name part sounds: a Latin name's NYSIIS code, else its toneless pinyin."""
    if not name:
        return None
    if is_latin(name):
        return phonetic(name)[:PHONETIC_CHARS]
    return pinyin(name, family=family)


def address_tokens(value: str | None) -> frozenset[str] | None:
    """The tokens of an address detail line: NFKC, upper case, punctuation as spaces.

    Words of a Latin-alphabet line; character bigrams of a Chinese one (its
    words are not separated), digits runs as tokens either way. ``None`` if empty.
    """
    if value is None:
        return None
    text = _PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", value)).upper()
    tokens: set[str] = set()
    for word in text.split():
        if _CJK.search(word):
            tokens.update(a + b for a, b in pairwise(word))
            if len(word) == 1:
                tokens.add(word)
        else:
            tokens.add(word)
    return frozenset(tokens) or None


def normalise_postcode(value: str | None) -> str | None:
    """A postcode's letters and digits, upper case (``SW1A 1AA`` -> ``SW1A1AA``)."""
    if value is None:
        return None
    code = "".join(c for c in unicodedata.normalize("NFKC", value).upper() if c.isalnum())
    return code or None


def _division(value: str | None) -> str | None:
    code = (value or "").strip()
    return code if len(code) == 6 and code.isdigit() else None


@lru_cache(maxsize=16384)
def char_pinyin(char: str, *, family: bool = False) -> str:
    """Toneless pinyin of one character (a non-Chinese character, lower-cased, as itself)."""
    if family and char in _SURNAME_READINGS:
        return _SURNAME_READINGS[char]
    return lazy_pinyin(char, style=Style.NORMAL)[0].lower()


@lru_cache(maxsize=65536)
def pinyin(text: str, *, family: bool = False) -> str:
    """Toneless pinyin of a name, syllables joined without spaces (``张伟`` -> ``zhangwei``).

    Character by character, so a character always reads the same whatever its
    neighbours (pypinyin's phrase readings would make ``张乐`` and ``乐`` differ).
    With ``family``, the first character uses its family-name reading (单 shan).
    """
    return "".join(char_pinyin(c, family=family and i == 0) for i, c in enumerate(text))


def normalise_name(value: str | None) -> str | None:
    """NFKC, no spaces or separators, Latin letters upper case; ``None`` if nothing is left."""
    if value is None:
        return None
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()
    return text or None


def split_full_name(full: str, family_hint: str | None = None) -> tuple[str, str]:
    """(family, given) of a Chinese full name written family name first."""
    if family_hint and full.startswith(family_hint) and len(full) > len(family_hint):
        return family_hint, full[len(family_hint) :]
    cut = 2 if full[:2] in COMPOUND_SURNAMES and len(full) > 2 else 1
    return full[:cut], full[cut:]


def organisation_core(name: str) -> str:
    """The distinctive part of an organisation name: no region, brackets or legal form."""
    core = _BRACKETED.sub("", name)
    core = _REGION_PREFIX.sub("", core)
    for suffix in _LEGAL_FORMS:
        if core.endswith(suffix) and len(core) > len(suffix):
            core = core[: -len(suffix)]
            break
    return core or name


def normalise_phone(value: str | None) -> str | None:
    """Digits only, without a +86 / 0086 country prefix; ``None`` if fewer than 7 digits."""
    if value is None:
        return None
    digits = "".join(c for c in unicodedata.normalize("NFKC", value) if c.isdigit())
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 11:
            digits = digits[len(prefix) :]
            break
    return digits if len(digits) >= 7 else None


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """One registry record as the linker sees it.

    ``ref`` is unique across the registry (e.g. ``person/household_registry/HR-001``).
    For organisations ``full_name`` is the legal name, ``birth_date`` the
    registration date and ``representative`` the legal representative's name.
    The fields after ``representative`` are derived in ``__post_init__``:
    ``family`` / ``given`` (normalised; split from ``full_name`` when the
    record has no separate parts), their pinyin, ``full`` (the normalised
    full name), ``core`` (for organisations the name without region, brackets
    and legal form; for persons ``full``) and ``core_py`` (organisations only).
    """

    ref: str
    kind: str
    department: str
    identifier: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    full_name: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    phone: str | None = None
    division_code: str | None = None
    updated_at: datetime | None = None
    representative: str | None = None
    # Persons' addresses: registered (household registration) and current, detail lines.
    address_line: str | None = None
    postcode: str | None = None
    current_division_code: str | None = None
    current_address_line: str | None = None
    # Derived features (not arguments).
    family: str | None = field(init=False, compare=False, repr=False)
    given: str | None = field(init=False, compare=False, repr=False)
    family_py: str | None = field(init=False, compare=False, repr=False)
    given_py: str | None = field(init=False, compare=False, repr=False)
    full: str | None = field(init=False, compare=False, repr=False)
    core: str | None = field(init=False, compare=False, repr=False)
    core_py: str | None = field(init=False, compare=False, repr=False)
    birth: str | None = field(init=False, compare=False, repr=False)
    phone_digits: str | None = field(init=False, compare=False, repr=False)
    division: str | None = field(init=False, compare=False, repr=False)
    sex_code: str | None = field(init=False, compare=False, repr=False)
    representative_py: str | None = field(init=False, compare=False, repr=False)
    family_sound: str | None = field(init=False, compare=False, repr=False)
    given_sound: str | None = field(init=False, compare=False, repr=False)
    # Token sets of the registered and current address lines (either may be absent).
    addresses: tuple[frozenset[str], ...] = field(init=False, compare=False, repr=False)
    postcode_code: str | None = field(init=False, compare=False, repr=False)
    # The registered and current division codes, registered first, without repeats.
    divisions: tuple[str, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        family, given = normalise_name(self.family_name), normalise_name(self.given_name)
        full = normalise_name(self.full_name)
        if self.kind == ORGANISATION:
            core = organisation_core(full) if full else None
        else:
            if full and not (family and given):
                family, given = split_full_name(full, family)
            full = family + given if family and given else full
            core = full
        put(self, "family", family)
        put(self, "given", given)
        put(self, "family_py", pinyin(family, family=True) if family else None)
        put(self, "given_py", pinyin(given) if given else None)
        put(self, "full", full)
        put(self, "core", core)
        put(self, "core_py", pinyin(core) if core and self.kind == ORGANISATION else None)
        put(self, "birth", self.birth_date.strftime("%Y%m%d") if self.birth_date else None)
        put(self, "phone_digits", normalise_phone(self.phone))
        division = _division(self.division_code)
        put(self, "division", division)
        current = _division(self.current_division_code)
        put(self, "divisions", tuple(dict.fromkeys(c for c in (division, current) if c)))
        put(self, "family_sound", sound_key(family, family=True))
        put(self, "given_sound", sound_key(given))
        # The postcode is a token of each line (a line with another postcode is not exact).
        code = normalise_postcode(self.postcode)
        lines = [address_tokens(self.address_line), address_tokens(self.current_address_line)]
        if code and lines[0]:
            lines[0] = lines[0] | {code}
        put(self, "addresses", tuple(dict.fromkeys(t for t in lines if t)))
        put(self, "postcode_code", code)
        put(self, "sex_code", self.sex if self.sex in ("MALE", "FEMALE") else None)
        rep = normalise_name(self.representative)
        put(self, "representative_py", pinyin(rep, family=True) if rep else None)


def _text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def person_record(
    ref: str, department: str, payload: Mapping[str, Any], updated_at: datetime | None = None
) -> LinkRecord:
    """A person's link record from a registry payload (``resident_id_bidx`` is the identifier).

    Dates may be ISO strings (as stored) or ``date`` objects; a malformed date
    is treated as missing rather than raising, because linkage must not stop on
    one department's bad value.
    """
    return LinkRecord(
        ref=ref,
        kind=PERSON,
        department=department,
        identifier=_text(payload, "resident_id_bidx"),
        family_name=_text(payload, "family_name"),
        given_name=_text(payload, "given_name"),
        full_name=_text(payload, "full_name"),
        birth_date=_date(payload.get("birth_date")),
        sex=_text(payload, "sex"),
        phone=_text(payload, "phone"),
        division_code=_text(payload, "residence_division_code"),
        updated_at=updated_at,
        address_line=_text(payload, "address_line"),
        postcode=_text(payload, "postcode"),
        current_division_code=_text(payload, "current_division_code"),
        current_address_line=_text(payload, "current_address_line"),
    )


def organisation_record(
    ref: str, department: str, payload: Mapping[str, Any], updated_at: datetime | None = None
) -> LinkRecord:
    """An organisation's link record: ``uscc`` is the identifier, ``legal_name`` the name,
    ``registration_date`` the date, ``registered_division_code`` the division."""
    uscc = _text(payload, "uscc")
    return LinkRecord(
        ref=ref,
        kind=ORGANISATION,
        department=department,
        identifier=uscc.upper() if uscc else None,
        full_name=_text(payload, "legal_name"),
        birth_date=_date(payload.get("registration_date")),
        division_code=_text(payload, "registered_division_code"),
        representative=_text(payload, "legal_representative_name"),
        updated_at=updated_at,
    )
