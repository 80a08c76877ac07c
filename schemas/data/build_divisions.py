"""Rebuild the shipped division lists from yescallop/areacodes' ``result.csv`` (README.md).

Usage, from the repository root::

    python schemas/data/build_divisions.py result.csv schemas/data

writes ``cn_divisions.csv`` (every code in use today: ``code,name,level``) and
``cn_divisions_retired.csv`` (every code used since 1980 and no longer in use, with
its last name, the years it was in use, and the codes its area went to). Standard
library only, so it runs without the project installed.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

LEVELS = {"省级": "province", "地级": "prefecture", "县级": "county"}
IN_USE = "在用"
# GB/T 2260 prints a prefecture-level 市辖区 for each of the four municipalities; the
# source leaves them out, and records use them, so they stay (as in the list shipped before).
MUNICIPAL_DISTRICTS = ("110100", "120100", "310100", "500100")


def build(rows: list[dict[str, str]]) -> tuple[list[list[str]], list[list[str]]]:
    """(current rows, retired rows), each sorted by code."""
    by_code: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_code.setdefault(row["代码"], []).append(row)
    current: list[list[str]] = [[code, "市辖区", "prefecture"] for code in MUNICIPAL_DISTRICTS]
    retired: list[list[str]] = []
    for code in sorted(by_code):
        history = by_code[code]
        in_use = [r for r in history if r["状态"] == IN_USE]
        if in_use:
            current.append([code, in_use[-1]["名称"], LEVELS[in_use[-1]["级别"]]])
            continue
        last = max(history, key=lambda r: int(r["变更/弃用时间"] or 0))
        # "330102[1996];330102;330114": bracketed codes are earlier partial transfers.
        successors = [p for p in last["新代码"].split(";") if p and "[" not in p]
        retired.append(
            [code, last["名称"], LEVELS[last["级别"]], min(r["启用时间"] for r in history),
             last["变更/弃用时间"], ";".join(successors)]
        )  # fmt: skip
    return sorted(current), retired


def main() -> None:
    source, folder = Path(sys.argv[1]), Path(sys.argv[2])
    with source.open(encoding="utf-8-sig", newline="") as handle:
        current, retired = build(list(csv.DictReader(handle)))
    with (folder / "cn_divisions.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["code", "name", "level"])
        writer.writerows(current)
    with (folder / "cn_divisions_retired.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["code", "name", "level", "since", "until", "successors"])
        writer.writerows(retired)


if __name__ == "__main__":
    main()
