"""Splitting a full name into family name and given name (the ``split_name`` transform).

Departments often export one column, 姓名, where the standard wants ``family_name``
and ``given_name``. :func:`split_name` splits it:

* **Chinese names** (Han characters, no space): the family name is the first two
  characters if they are a compound surname (:data:`COMPOUND_SURNAMES`: 欧阳, 司马,
  诸葛, ... in simplified and traditional writing) and the name has at least one
  character more, else the first character. A compound surname therefore wins over
  a single one (``东方红`` is 东方 + 红): a department whose people include such
  rare cases should export the family name as a column of its own.
* **Names with a middle dot** (``阿依古丽·买买提``, transliterated names of minority
  and foreign persons): the given name is the first part, the family name the rest.
* **Latin-alphabet names**: ``"FAMILY, Given"`` (a comma: what precedes it is the
  family name); ``"SMITH John"`` (a leading all-capital word followed by words that
  are not: the passport convention); otherwise ``"Given Family"``, the family name
  being the last word with the lower-case particles before it (``van``, ``de``,
  ``von``, ...: ``Ludwig van Beethoven`` is family ``van Beethoven``).

A name that cannot be split (one character or one word, an empty part) is a
problem ``name.unsplittable``, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["COMPOUND_SURNAMES", "SplitName", "split_name"]

# The compound surnames of the 百家姓 and those common today, simplified, then the
# traditional writings that differ.
_SIMPLIFIED: Final = (
    "欧阳 太史 端木 上官 司马 东方 独孤 南宫 万俟 闻人 夏侯 诸葛 尉迟 公羊 赫连 澹台 "
    "皇甫 宗政 濮阳 公冶 太叔 申屠 公孙 慕容 仲孙 钟离 长孙 宇文 司徒 鲜于 司空 闾丘 "
    "子车 亓官 司寇 巫马 公西 颛孙 壤驷 公良 漆雕 乐正 宰父 谷梁 拓跋 夹谷 轩辕 令狐 "
    "段干 百里 呼延 东郭 南门 羊舌 微生 公户 公玉 公仪 梁丘 公仲 公上 公门 公山 公坚 "
    "左丘 公伯 西门 公祖 第五 公乘 贯丘 公皙 南荣 东里 东宫 仲长 子书 子桑 即墨 达奚 "
    "褚师 单于 完颜 耶律 尉迟 纳兰 爱新觉罗 叶赫那拉"
)
_TRADITIONAL: Final = (
    "歐陽 司馬 東方 獨孤 南宮 萬俟 聞人 諸葛 尉遲 赫連 澹臺 皇甫 濮陽 申屠 公孫 "
    "鍾離 長孫 鮮于 閭丘 亓官 巫馬 顓孫 壤駟 樂正 穀梁 軒轅 東郭 南門 西門 東里 "
    "東宮 仲長 子書 即墨 達奚 褚師 單于 完顏 納蘭 愛新覺羅 葉赫那拉"
)
COMPOUND_SURNAMES: Final = frozenset((_SIMPLIFIED + " " + _TRADITIONAL).split())
"""Chinese compound surnames (two characters, and the Manchu clan names of four)."""

_LONGEST: Final = max(len(s) for s in COMPOUND_SURNAMES)
_HAN: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
_MIDDLE_DOTS: Final = re.compile(r"\s*[·•・‧.]\s*")
_PARTICLES: Final = frozenset(
    {"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "das", "du"}
    | {"la", "le", "ten", "ter", "bin", "binti", "al", "el"}
)

Part = Literal["family", "given"]


@dataclass(frozen=True)
class SplitName:
    family: str
    given: str

    def part(self, which: Part) -> str:
        return self.family if which == "family" else self.given


def _split_han(name: str) -> SplitName | None:
    for size in range(min(_LONGEST, len(name) - 1), 1, -1):
        if name[:size] in COMPOUND_SURNAMES:
            return SplitName(name[:size], name[size:])
    if len(name) < 2:
        return None
    return SplitName(name[0], name[1:])


def _split_dotted(name: str) -> SplitName | None:
    parts = [p for p in _MIDDLE_DOTS.split(name) if p]
    if len(parts) < 2:
        return None
    return SplitName("·".join(parts[1:]), parts[0])


def _split_latin(name: str) -> SplitName | None:
    if "," in name:
        family, _, given = name.partition(",")
        family, given = " ".join(family.split()), " ".join(given.split())
        return SplitName(family, given) if family and given else None
    words = name.split()
    if len(words) < 2:
        return None
    if words[0].isupper() and len(words[0]) > 1 and not any(w.isupper() for w in words[1:]):
        return SplitName(words[0], " ".join(words[1:]))
    start = len(words) - 1
    while start > 1 and words[start - 1] in _PARTICLES:
        start -= 1
    return SplitName(" ".join(words[start:]), " ".join(words[:start]))


def split_name(full_name: str) -> SplitName | tuple[str, str]:
    """The family and given name of ``full_name``, or ``(reason_code, message)``."""
    name = full_name.strip()
    compact = "".join(name.split())
    if compact and _HAN.fullmatch(compact):
        found = _split_han(compact)
    elif _MIDDLE_DOTS.search(name) and _HAN.search(name):
        found = _split_dotted(name)
    else:
        found = _split_latin(name)
    if found is None or not found.family or not found.given:
        return (
            "name.unsplittable",
            "the full name cannot be split into a family and a given name (it has one "
            "part only); export the family and given names as columns of their own",
        )
    return found
