"""Masking: how a field a grant shows ``masked`` appears, by the style its standard declares.

Each field of a standard declares its masking style (``"mask"`` in the ``.avsc``); a
field that declares none gets the default of its kind (see :func:`style_of`). The styles:

================  ==============================================  ======================
style             rule                                            example
================  ==============================================  ======================
``redact``        the value is hidden, its presence shown         ``***``
``keep_last:N``   the last N characters, the rest as asterisks    ``*******5678``
                  (N characters or fewer: all asterisks)
``keep_first:N``  the first N characters, the rest as asterisks   ``3301**``
``year_only``     a date's year                                   ``1980-**-**``
``initial_only``  of each part of a name (split at spaces and     ``*`` for 伟,
                  middle dots) of 3 or more characters its first  ``M*****`` for Mikhail
                  character; a shorter part is hidden whole
``token``         a keyed pseudonym, the same for one value and   ``tk_4vq...``
                  one purpose, unlinkable across purposes
================  ==============================================  ======================

A masked name never shows a part whole, and at most the first character of a part of
three or more characters; a masked identifier, with what else the caller sees, must leave
at least 1,000,000 candidates for the original. The catalogue checks the styles a grant
would use against that rule (:mod:`exchange.access.disclosure`).

``None`` stays ``None`` under every style: that a value is missing is not hidden. Lists
are masked element by element.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from schemas.standards import FieldSpec

HIDDEN = "***"
TOKEN_PREFIX = "tk_"
# What a masked value may be turned into a token with: (domain, value) -> token.
Tokenizer = Callable[[str, str], str]


class MaskKind(StrEnum):
    """What a field is, for its default style and for the disclosure rule."""

    IDENTIFIER = "identifier"
    NAME = "name"
    PHONE = "phone"
    DATE = "date"
    DIVISION = "division"
    ADDRESS = "address"
    OTHER = "other"


class Style(StrEnum):
    REDACT = "redact"
    KEEP_LAST = "keep_last"
    KEEP_FIRST = "keep_first"
    YEAR_ONLY = "year_only"
    INITIAL_ONLY = "initial_only"
    TOKEN = "token"


@dataclass(frozen=True, slots=True)
class MaskStyle:
    style: Style
    n: int = 0

    def __str__(self) -> str:
        if self.style in (Style.KEEP_LAST, Style.KEEP_FIRST):
            return f"{self.style.value}:{self.n}"
        return self.style.value

    @property
    def reveals_nothing(self) -> bool:
        """Redacted or a token: no character of the value is shown."""
        return self.style in (Style.REDACT, Style.TOKEN)


REDACT = MaskStyle(Style.REDACT)
_STYLE = re.compile(r"^(redact|year_only|initial_only|token|(keep_last|keep_first):([1-9][0-9]?))$")


def parse_style(text: str) -> MaskStyle:
    """``keep_last:4`` and the like; ValueError if it is not a style."""
    m = _STYLE.match(text.strip())
    if m is None:
        raise ValueError(
            f"{text!r} is not a masking style: redact, keep_last:N, keep_first:N, year_only, "
            "initial_only or token"
        )
    if m[2]:
        return MaskStyle(Style(m[2]), int(m[3]))
    return MaskStyle(Style(m[1]))


def _is_date(avro_type: Any) -> bool:
    if isinstance(avro_type, list):
        return any(_is_date(t) for t in avro_type)
    return isinstance(avro_type, dict) and avro_type.get("logicalType") == "date"


def mask_kind(spec: FieldSpec) -> MaskKind:
    """What kind of field a field of a standard is."""
    if spec.identifier:
        return MaskKind.IDENTIFIER
    if spec.validator == "cn.phone" or spec.name == "phone":
        return MaskKind.PHONE
    if spec.validator == "cn.division_code":
        return MaskKind.DIVISION
    if _is_date(spec.avro_type):
        return MaskKind.DATE
    if spec.name == "full_name" or spec.name.endswith("_name"):
        return MaskKind.NAME
    if "address" in spec.name:
        return MaskKind.ADDRESS
    return MaskKind.OTHER


_DEFAULTS = {
    MaskKind.IDENTIFIER: REDACT,
    MaskKind.NAME: MaskStyle(Style.INITIAL_ONLY),
    MaskKind.PHONE: MaskStyle(Style.KEEP_LAST, 4),
    MaskKind.DATE: MaskStyle(Style.YEAR_ONLY),
    MaskKind.DIVISION: MaskStyle(Style.KEEP_FIRST, 4),
    MaskKind.ADDRESS: MaskStyle(Style.KEEP_FIRST, 6),
    MaskKind.OTHER: REDACT,
}


def style_of(spec: FieldSpec) -> MaskStyle:
    """The style the standard declares for the field, else its kind's default; a
    declaration that is not a style redacts (fail closed)."""
    if spec.mask is None:
        return _DEFAULTS[mask_kind(spec)]
    try:
        return parse_style(spec.mask)
    except ValueError:
        return REDACT


_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _is_iso_date(value: str) -> bool:
    return bool(_ISO_DATE.match(value))


_PARTS = re.compile(r"([\s·•・.\-]+)")


def name_parts(value: str) -> list[str]:
    """The parts of a name: split at spaces, middle dots, full stops and hyphens."""
    return [p for p in _PARTS.split(value) if p and not _PARTS.fullmatch(p)]


def _initials(value: str) -> str:
    out = []
    for piece in _PARTS.split(value):
        if not piece or _PARTS.fullmatch(piece):
            out.append(piece)
        elif len(piece) >= 3:
            out.append(piece[0] + "*" * (len(piece) - 1))
        else:
            out.append("*" * len(piece))
    return "".join(out)


def mask(
    value: Any, style: MaskStyle, *, domain: str = "", tokenizer: Tokenizer | None = None
) -> Any:
    """``value`` as a grant that shows it ``masked`` lets it be seen.

    ``token`` needs a ``tokenizer`` (the gateway's, keyed per purpose); without one the
    value is redacted."""
    if value is None:
        return None
    if isinstance(value, list):
        return [mask(v, style, domain=domain, tokenizer=tokenizer) for v in value]
    if not isinstance(value, str):
        return HIDDEN
    kind = style.style
    if kind is Style.KEEP_LAST:
        return (
            "*" * (len(value) - style.n) + value[-style.n :]
            if len(value) > style.n
            else "*" * len(value)
        )
    if kind is Style.KEEP_FIRST:
        return (
            value[: style.n] + "*" * (len(value) - style.n)
            if len(value) > style.n
            else "*" * len(value)
        )
    if kind is Style.YEAR_ONLY:
        return value[:4] + "-**-**" if _is_iso_date(value) else HIDDEN
    if kind is Style.INITIAL_ONLY:
        return _initials(value)
    if kind is Style.TOKEN and tokenizer is not None:
        return tokenizer(domain, value)
    return HIDDEN


def shown_positions(style: MaskStyle, value: str) -> set[int]:
    """The positions of ``value`` whose character a masked value shows."""
    n = len(value)
    kind = style.style
    if kind is Style.KEEP_LAST:
        return set(range(n - style.n, n)) if n > style.n else set()
    if kind is Style.KEEP_FIRST:
        return set(range(style.n)) if n > style.n else set()
    if kind is Style.YEAR_ONLY:
        return set(range(4)) if _is_iso_date(value) else set()
    if kind is Style.INITIAL_ONLY:
        shown, at = set(), 0
        for piece in _PARTS.split(value):
            if piece and not _PARTS.fullmatch(piece) and len(piece) >= 3:
                shown.add(at)
            at += len(piece)
        return shown
    return set()
