"""Masking: how a field a grant shows ``masked`` appears, by the kind of field it is.

A masked value keeps enough to recognise a record (a caseworker can check the
last digits an applicant reads out) and no more. The kind of a field comes from
its standard (see :func:`mask_kind`):

=============  ===========================================  ==========================
kind           rule                                         example
=============  ===========================================  ==========================
identifier     first 6 and last 4 characters                ``110105********0017``
               (10 characters or fewer: all asterisks)
name           first character, then one asterisk per       ``王**``
               further character
phone          last 4 digits                                ``*******5678``
date           the year only                                ``1980-**-**``
division       the first 4 digits (prefecture level)        ``3301**``
address        the first 6 characters                       ``浙江省杭州市***``
other          the value is hidden, its presence is shown   ``***``
=============  ===========================================  ==========================

``None`` stays ``None`` under every rule: that a value is missing is not
hidden. Lists are masked element by element.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from schemas.standards import FieldSpec

HIDDEN = "***"


class MaskKind(StrEnum):
    IDENTIFIER = "identifier"
    NAME = "name"
    PHONE = "phone"
    DATE = "date"
    DIVISION = "division"
    ADDRESS = "address"
    OTHER = "other"


def _is_date(avro_type: Any) -> bool:
    if isinstance(avro_type, list):
        return any(_is_date(t) for t in avro_type)
    return isinstance(avro_type, dict) and avro_type.get("logicalType") == "date"


def mask_kind(spec: FieldSpec) -> MaskKind:
    """The masking rule of a field of a standard."""
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


def mask_identifier(value: str) -> str:
    """First 6 and last 4 characters shown, the rest as asterisks."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask(value: Any, kind: MaskKind) -> Any:
    """``value`` as a grant that shows it ``masked`` lets it be seen."""
    if value is None:
        return None
    if isinstance(value, list):
        return [mask(v, kind) for v in value]
    if not isinstance(value, str):
        return HIDDEN
    if kind is MaskKind.IDENTIFIER:
        return mask_identifier(value)
    if kind is MaskKind.NAME:
        return value[:1] + "*" * (len(value) - 1)
    if kind is MaskKind.PHONE:
        return "*" * max(len(value) - 4, 0) + value[-4:] if len(value) > 4 else "*" * len(value)
    if kind is MaskKind.DATE:
        return value[:4] + "-**-**" if len(value) >= 4 else HIDDEN
    if kind is MaskKind.DIVISION:
        return value[:4] + "*" * (len(value) - 4) if len(value) > 4 else HIDDEN
    if kind is MaskKind.ADDRESS:
        return value[:6] + HIDDEN if len(value) > 6 else HIDDEN
    return HIDDEN
