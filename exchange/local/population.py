"""The demo's population: five departments' exports describing the same people.

One seed makes a few households (the applicant's, for journey 1 of the design: a
minimum-living-allowance review, and some neighbours) and each department's export of
them, each in the department's own shape and with a real export's faults:

* the household registry (``household_registry``): residents (Person) and household
  memberships (HouseholdMembership), CSV;
* civil affairs (``civil_affairs``): benefit payments (BenefitPayment), CSV in fen;
* human resources and social security (``human_resources``): its roster of insured people
  of working age (Person: one full-name column, dates as YYYYMMDD, two legacy rows without
  an identity number, which link to the household registry's record only by probability)
  and their
  social insurance (SocialInsurance: Chinese headers, insurance branches as a list of
  codes, money in yuan);
* health insurance (``health_insurance``): enrolments (HealthInsuranceEnrolment), JSONL
  (two residents are not enrolled here);
* market regulation (``market_regulation``): businesses (Organisation), a GB18030 CSV
  with dates written the Chinese way; the applicant's wife runs one.

A few rows in each export must be rejected (a wrong check character, an impossible date,
an unknown code). :func:`write_exports` writes the data files and copies each
department's connector definition from ``examples/``; with the default seed the files
it writes are exactly those committed under ``examples/`` (``tests/unit/test_examples.py``).
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from exchange.local import examples
from schemas.validators import resident_id_check_character, uscc_check_character

SEED = 7

HOUSEHOLD_REGISTRY = "household_registry"
CIVIL_AFFAIRS = "civil_affairs"
HUMAN_RESOURCES = "human_resources"
HEALTH_INSURANCE = "health_insurance"
MARKET_REGULATION = "market_regulation"
DEPARTMENTS = {
    HOUSEHOLD_REGISTRY: "Household registration (public security bureau)",
    CIVIL_AFFAIRS: "Civil affairs bureau",
    HUMAN_RESOURCES: "Human resources and social security bureau",
    HEALTH_INSURANCE: "Medical insurance bureau",
    MARKET_REGULATION: "Market regulation bureau",
}

# Each department's connector definitions, in the order the demo runs them.
DEFINITIONS: dict[str, tuple[str, ...]] = {
    HOUSEHOLD_REGISTRY: ("household_registry.toml", "household_membership.toml"),
    CIVIL_AFFAIRS: ("benefit_payments.toml",),
    HUMAN_RESOURCES: ("insured_persons.toml", "social_insurance.toml"),
    HEALTH_INSURANCE: ("enrolments.toml",),
    MARKET_REGULATION: ("businesses.toml",),
}

_SURNAMES = ["王", "李", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马"]
_MEN = ["伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "刚"]
_WOMEN = ["秀英", "芳", "娜", "敏", "静", "丽", "艳", "玲", "霞", "燕"]
_DIVISIONS = ["310115", "310104", "330106", "110105"]

# Relationship to the head: the household registry's codes (after GB/T 4761).
_RELATION_CODES = {"HEAD": "01", "SPOUSE": "10", "CHILD": "20", "PARENT": "50"}


@dataclass(frozen=True)
class Resident:
    """One person as the household registry knows them."""

    local_id: str
    resident_id: str
    surname: str
    given: str
    born: date
    sex: str  # "1" male, "2" female (GB/T 2261.1)
    division: str
    phone: str
    household: str
    relation: str  # RelationshipToHead symbol
    since: date

    @property
    def name(self) -> str:
        return self.surname + self.given


def resident_number(division: str, born: date, serial: int, sex: str) -> str:
    """A valid 18-character number: division, birth date, serial (odd for men), check."""
    serial = serial * 2 + (1 if sex == "1" else 0)
    body = f"{division}{born:%Y%m%d}{serial % 1000:03d}"
    return body + resident_id_check_character(body)


def credit_code(kind: str, division: str, serial: int) -> str:
    """A valid unified social credit code: ``kind`` ("91" a company, "92" an individual
    business), the division, a 9-character organisation code, the check character."""
    body = f"{kind}{division}{'MA'}{serial:07d}"
    return body + uscc_check_character(body)


# The applicant's household (journey 1): the head applies for the allowance; his wife runs
# a small shop; their son works; their daughter is at school; his mother is retired.
APPLICANT_HOUSEHOLD = "3101150042"
_APPLICANTS = [
    ("张", "建国", date(1972, 3, 14), "1", "HEAD", date(1998, 6, 1)),
    ("李", "秀兰", date(1975, 8, 2), "2", "SPOUSE", date(1999, 10, 1)),
    ("张", "磊", date(2001, 11, 20), "1", "CHILD", date(2001, 11, 20)),
    ("张", "静", date(2012, 6, 5), "2", "CHILD", date(2012, 6, 5)),
    ("王", "桂英", date(1946, 1, 23), "2", "PARENT", date(1998, 6, 1)),
]


@dataclass(frozen=True)
class Population:
    residents: list[Resident]

    @property
    def applicant(self) -> Resident:
        return self.residents[0]

    def household(self, number: str) -> list[Resident]:
        return [r for r in self.residents if r.household == number]


def population(seed: int = SEED) -> Population:
    """The applicant's household and three neighbouring ones, from ``seed``."""
    rng = random.Random(seed)
    residents: list[Resident] = []

    def add(
        surname: str, given: str, born: date, sex: str, division: str, household: str,
        relation: str, since: date,
    ) -> None:  # fmt: skip
        n = len(residents)
        residents.append(
            Resident(
                local_id=f"HR-{1000 + n}",
                resident_id=resident_number(division, born, 10 + n, sex),
                surname=surname,
                given=given,
                born=born,
                sex=sex,
                division=division,
                phone=f"13{rng.randrange(0, 10**9):09d}",
                household=household,
                relation=relation,
                since=since,
            )
        )

    for surname, given, born, sex, relation, since in _APPLICANTS:
        add(surname, given, born, sex, "310115", APPLICANT_HOUSEHOLD, relation, since)
    for h in range(3):
        division = _DIVISIONS[h % len(_DIVISIONS)]
        household = f"{division[:6]}{rng.randrange(1000, 9999)}"
        surname = rng.choice(_SURNAMES)
        head_born = date(1955, 1, 1) + timedelta(days=rng.randrange(0, 365 * 30))
        married = head_born + timedelta(days=365 * 25 + rng.randrange(0, 2000))
        add(surname, rng.choice(_MEN), head_born, "1", division, household, "HEAD", married)
        wife_born = head_born + timedelta(days=rng.randrange(-900, 900))
        add(rng.choice(_SURNAMES), rng.choice(_WOMEN), wife_born, "2", division, household,
            "SPOUSE", married)  # fmt: skip
        for _ in range(rng.randrange(0, 3)):
            child_born = married + timedelta(days=rng.randrange(365, 365 * 10))
            sex = rng.choice("12")
            given = rng.choice(_MEN if sex == "1" else _WOMEN)
            add(surname, given, child_born, sex, division, household, "CHILD", child_born)
    return Population(residents)


def _csv(path: Path, header: str, rows: list[str], encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))


def _wrong_check(number: str) -> str:
    return number[:-1] + ("0" if number[-1] != "0" else "1")


def _household_registry(folder: Path, people: Population) -> None:
    rows = []
    for i, r in enumerate(people.residents):
        dob = r.born.strftime(["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"][i % 3])
        rows.append(
            f"{r.local_id},{r.resident_id},{r.surname},{r.given},{dob},{r.sex},{r.division},"
            f"{r.phone}"
        )
    good = resident_number("110105", date(1980, 5, 17), 900, "1")
    rows += [  # three rows a clerk must fix
        f"HR-9001,{_wrong_check(good)},孙,丽,1980-05-17,2,110105,13800000001",
        f"HR-9002,{resident_number('310104', date(1975, 3, 1), 901, '1')},钱,刚,1975-02-30,1,"
        "310104,",
        f"HR-9003,{resident_number('330106', date(1990, 7, 9), 902, '2')},周,梅,1990-07-09,X,"
        "330106,",
    ]
    _csv(folder / "residents.csv", "local_id,id_number,surname,given,dob,sex,division,phone", rows)
    members = [
        f"HM-{r.local_id[3:]},{r.household},{r.resident_id},{_RELATION_CODES[r.relation]},"
        f"{r.since:%Y-%m-%d},"
        for r in people.residents
    ]
    lodger = people.residents[-1]
    members.append(  # an unknown relationship code: the clerk must look it up
        f"HM-9001,{lodger.household},{resident_number('330106', date(1990, 7, 9), 902, '2')},"
        f"88,2020-01-01,"
    )
    _csv(folder / "households.csv", "member_no,household_no,id_number,relation,since,until",
         members)  # fmt: skip


def _civil_affairs(folder: Path, people: Population) -> None:
    head = people.applicant
    rows = []
    for n, month in enumerate((9, 10, 11), start=1):
        end = (date(2026, month + 1, 1) - timedelta(days=1)).isoformat()
        rows.append(
            f"MZ-P-{n:04d},{head.resident_id},1,238000,2026-{month:02d}-01,{end},"
            f"2026-{month:02d}-05,MZ-2026-0417,{head.division}"
        )
    rows.append(  # September's payment reversed: paid twice by mistake
        f"MZ-P-0004,{head.resident_id},1,-238000,2026-09-01,2026-09-30,2026-09-12,"
        f"MZ-2026-0417,{head.division}"
    )
    other = people.residents[5]
    rows.append(
        f"MZ-P-0005,{other.resident_id},2,50000,2026-10-12,2026-10-12,2026-10-14,MZ-2026-0503,"
        f"{other.division}"
    )
    rows.append(  # an impossible period end: rejected
        f"MZ-P-0006,{other.resident_id},2,50000,2026-11-01,2026-11-31,2026-11-03,MZ-2026-0503,"
        f"{other.division}"
    )
    _csv(
        folder / "benefit_payments.csv",
        "payment_no,id_number,benefit,amount,start,end,paid,case_ref,division",
        rows,
    )


# Employers (market regulation publishes them; social insurance names them).
def _employers() -> list[tuple[str, str, str, date, str, str]]:
    """(credit code, name, legal form code, founded, division, address) of the employers."""
    return [
        (credit_code("91", "310115", 1), "上海浦江物流有限公司", "有限责任公司", date(2008, 4, 18),
         "310115", "上海市浦东新区张江路88号"),
        (credit_code("91", "310104", 2), "上海徐汇精密机械股份有限公司", "股份有限公司",
         date(1999, 9, 9), "310104", "上海市徐汇区漕溪北路25号"),
        (credit_code("91", "330106", 3), "杭州西湖云数科技有限公司", "有限责任公司",
         date(2016, 3, 8), "330106", "杭州市西湖区文一西路96号"),
    ]  # fmt: skip


_ID_LESS = (1, 6)  # residents the HR roster holds without an identity number (legacy rows)
_ADULT_BY = date(2008, 12, 31)  # the HR roster holds people of working age only
_NOT_ENROLLED = (11, 14)  # a child not yet enrolled; a son insured where he works elsewhere


def _human_resources(folder: Path, people: Population, rng: random.Random) -> None:
    roster = []
    for i, r in enumerate(people.residents):
        if r.born > _ADULT_BY:
            continue
        number = "" if i in _ID_LESS else r.resident_id
        roster.append(
            f"RS{20000 + i},{r.name},{number},{'男' if r.sex == '1' else '女'},{r.born:%Y%m%d},"
            f"{r.division},{r.phone}"
        )
    header = "人员编号,姓名,公民身份号码,性别,出生日期,户籍区划,联系电话"
    _csv(folder / "insured_persons.csv", header, roster)
    employers = _employers()
    rows = []
    head, wife, son, _, grandmother = people.residents[:5]
    # The applicant: employed until the logistics company let him go, unemployed since.
    rows.append(
        f"SI-0001,{head.resident_id},{employers[0][0]},110|210|310|410|510,1,4200.00,4800.00,"
        f"310115,20150301,20250630"
    )
    rows.append(f"SI-0002,{head.resident_id},,310,3,0,,310115,20250701,")
    rows.append(f"SI-0003,{wife.resident_id},,110|310,2,3800.00,,310115,20190101,")
    rows.append(
        f"SI-0004,{son.resident_id},{employers[1][0]},110|210|310|410|510,1,6500.00,7200.00,"
        f"310104,20230715,"
    )
    rows.append(f"SI-0005,{grandmother.resident_id},,110|310,4,0,,310115,20010201,")
    serial = 6
    for r in people.residents[5:]:
        if date(2026, 1, 1).year - r.born.year < 18:
            continue
        employer = rng.choice(employers)
        wage = rng.randrange(4000, 12000)
        rows.append(
            f"SI-{serial:04d},{r.resident_id},{employer[0]},110|210|310|410|510,1,"
            f"{wage}.00,{wage + rng.randrange(0, 800)}.00,{r.division},20200101,"
        )
        serial += 1
    rows.append(  # an employer code with a wrong check character: rejected
        f"SI-{serial:04d},{people.residents[6].resident_id},{_wrong_check(employers[2][0])},"
        f"110|310,1,5000.00,5200.00,330106,20240101,"
    )
    _csv(
        folder / "social_insurance.csv",
        "记录编号,公民身份号码,单位统一社会信用代码,险种,人员状态,缴费基数,申报工资,参保地,"
        "开始日期,终止日期",
        rows,
    )


def _health_insurance(folder: Path, people: Population) -> None:
    employers = {2: _employers()[1][0]}  # the son works for the machinery company
    lines = []
    for i, r in enumerate(people.residents):
        if i in _NOT_ENROLLED:
            continue
        employer = employers.get(i)
        number = r.resident_id.lower() if i % 4 == 3 else r.resident_id  # a lower-case x
        lines.append(
            {
                "enrol_no": f"YB{r.division}{i:05d}",
                "id_no": number,
                "scheme": "职工医保" if employer else "城乡居民医保",
                "employer": employer,
                "start": f"{max(r.born, date(2012, 1, 1)):%Y.%m.%d}",
                "end": None,
                "status": "暂停缴费" if i == 0 else "参保缴费",
                "area": r.division,
            }
        )
    lines.append(  # an identity number with a wrong check character: rejected
        {
            "enrol_no": "YB33010699001",
            "id_no": _wrong_check(people.residents[-1].resident_id),
            "scheme": "城乡居民医保",
            "employer": None,
            "start": "2020.01.01",
            "end": None,
            "status": "参保缴费",
            "area": "330106",
        }
    )
    lines.append(  # a scheme the bureau's code table lacks: rejected
        {
            "enrol_no": "YB33010699002",
            "id_no": people.residents[-2].resident_id,
            "scheme": "商业补充",
            "employer": None,
            "start": "2021.06.01",
            "end": None,
            "status": "参保缴费",
            "area": "330106",
        }
    )
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "enrolments.jsonl").write_text(text, encoding="utf-8")


def _market_regulation(folder: Path, people: Population) -> None:
    wife = people.residents[1]
    rows = []
    for (code, name, form, founded, division, address), boss in zip(
        _employers(), ("赵志远", "钱明华", "孙悦"), strict=True
    ):
        rows.append(
            f"{code},{name},{form},{founded.year}年{founded.month}月{founded.day}日,{boss},,"
            f"{address},{division},C3484,存续"
        )
    rows.append(  # the applicant's wife's shop
        f"{credit_code('92', '310115', 4)},浦东新区秀兰便利店,个体工商户,2019年3月8日,{wife.name},"
        f"{wife.resident_id},上海市浦东新区川沙路1288弄3号,310115,F5212,存续"
    )
    rows.append(  # a code one character short: rejected
        f"{credit_code('91', '330106', 5)[:-1]},杭州西湖茶香餐饮有限公司,有限责任公司,2021年5月6日,"
        "周梅,,杭州市西湖区文三路8号,330106,H6210,存续"
    )
    _csv(
        folder / "businesses.csv",
        "统一社会信用代码,企业名称,企业类型,成立日期,法定代表人,法定代表人身份证号,住所,所在区划,"
        "行业代码,登记状态",
        rows,
        encoding="gb18030",
    )


def write_exports(root: Path, seed: int = SEED) -> dict[str, list[Path]]:
    """Write every department's export and connector definitions under ``root/<department>``;
    return each department's definitions, in the order they are to be run."""
    people = population(seed)
    rng = random.Random(seed + 1)
    _household_registry(root / HOUSEHOLD_REGISTRY, people)
    _civil_affairs(root / CIVIL_AFFAIRS, people)
    _human_resources(root / HUMAN_RESOURCES, people, rng)
    _health_insurance(root / HEALTH_INSURANCE, people)
    _market_regulation(root / MARKET_REGULATION, people)
    written: dict[str, list[Path]] = {}
    for department, names in DEFINITIONS.items():
        for name in names:
            target = root / department / name
            source = examples.EXAMPLES / department / name
            if target.resolve() != source.resolve():
                shutil.copyfile(source, target)
            written.setdefault(department, []).append(target)
    return written
