"""Serde benchmark: the exchange's Confluent framing over bare fastavro.

Run from the project root::

    .venv/bin/python -m bench.serde [--records N] [--rounds R]

Encodes and decodes N synthetic ``Person`` records (fixed seed) with

* the baseline: bare fastavro, ``schemaless_writer`` into a fresh ``BytesIO``
  per record and ``schemaless_reader`` from a ``BytesIO`` per record, with the
  parsed schema passed in (what a careful user of fastavro would write), and
* the exchange: :meth:`exchange.kafka.wire.AvroSerde.encode` and
  :meth:`~exchange.kafka.wire.AvroSerde.decode` per record (framing, schema cache).

Correctness is checked once, on every record, before anything is timed: the
exchange's bytes must be the 5-byte header followed by exactly the baseline's
bytes, and both decoders must give back the original record.

The timings are interleaved: each of R rounds times baseline and exchange back
to back for encode and for decode, alternating which goes first (ABBA) so that
a slow drift of the machine does not favour one side. Each side's figure is
the median records/s over the rounds; the ratio is exchange / baseline. On a
shared, noisy machine the ratio is the figure to trust, not the absolute rates.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import fastavro
from fastavro import schemaless_reader, schemaless_writer

from bench.population_data import DIVISIONS
from exchange.core.errors import SchemaNotFoundError
from exchange.kafka.wire import HEADER_SIZE, AvroSerde
from schemas import load_standard
from schemas.validators import resident_id_check_character

SEED = 20240601
SCHEMA_ID = 1
TARGET_RATIO = 0.9

Record = dict[str, Any]

# --------------------------------------------------------------------------
# Synthetic Person records
# --------------------------------------------------------------------------

_FAMILY_NAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_COMPOUND_FAMILY_NAMES = ("欧阳", "司马", "诸葛", "上官", "皇甫", "东方", "慕容", "令狐")
_GIVEN_NAME_CHARS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬燕飞鹏辉建国文"
    "斌宇浩然子轩梓涵欣怡思雨嘉诗晨一博睿泽俊佳琪宏志德海林春梅雪婷倩慧颖晓东"
)
_NATIONALITIES = ("CHN",) * 97 + ("HKG", "MAC", "TWN")
_EARLIEST_BIRTH = date(1930, 1, 1)
_LATEST_BIRTH = date(2024, 12, 31)
_MOBILE_PREFIXES = ("130", "131", "135", "136", "138", "139", "150", "152", "158", "177", "186")
_AREA_CODES = ("010", "020", "021", "022", "023", "024", "025", "027", "028", "029", "0755")


def _division_codes() -> list[str]:
    """Prefecture- and county-level codes of the synthetic population's divisions."""
    return list(DIVISIONS)


def _phone(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    area = rng.choice(_AREA_CODES)
    digits = 8 if len(area) == 3 else 7  # 010 + 8 digits, 0755 + 7 digits: 11 in all
    return area + str(rng.randrange(2 * 10 ** (digits - 1), 10**digits))


def make_people(count: int, seed: int = SEED) -> list[Record]:
    """``count`` varied, plausible Person records, the same for the same seed.

    Identity numbers are built from a listed division, the birth date and a
    computed check character, so they happen to validate; the serde does not
    depend on that.
    """
    rng = random.Random(seed)
    divisions = _division_codes()
    span_days = (_LATEST_BIRTH - _EARLIEST_BIRTH).days
    people: list[Record] = []
    for _ in range(count):
        if rng.random() < 0.02:
            family = rng.choice(_COMPOUND_FAMILY_NAMES)
        else:
            family = rng.choice(_FAMILY_NAMES)
        given = "".join(rng.choices(_GIVEN_NAME_CHARS, k=rng.choice((1, 2, 2, 2))))
        birth = _EARLIEST_BIRTH + timedelta(days=rng.randrange(span_days + 1))
        roll = rng.random()
        sex = "MALE" if roll < 0.495 else "FEMALE" if roll < 0.99 else "UNKNOWN"
        region = rng.choice(divisions)
        first17 = f"{region}{birth:%Y%m%d}{rng.randrange(1000):03d}"
        people.append(
            {
                "resident_id": first17 + resident_id_check_character(first17),
                "family_name": family,
                "given_name": given,
                "full_name": family + given,
                "birth_date": birth,
                "sex": sex,
                "nationality": rng.choice(_NATIONALITIES),
                "residence_division_code": region if rng.random() < 0.85 else None,
                "phone": _phone(rng) if rng.random() < 0.7 else None,
            }
        )
    return people


# --------------------------------------------------------------------------
# The contenders
# --------------------------------------------------------------------------


def baseline_encode_all(parsed: Any, records: Sequence[Record]) -> list[bytes]:
    out: list[bytes] = []
    append, new_buffer, write = out.append, io.BytesIO, schemaless_writer
    for record in records:
        buffer = new_buffer()
        write(buffer, parsed, record)
        append(buffer.getvalue())
    return out


def exchange_encode_all(serde: AvroSerde, records: Sequence[Record]) -> list[bytes]:
    out: list[bytes] = []
    append, encode = out.append, serde.encode
    for record in records:
        append(encode(SCHEMA_ID, record))
    return out


def baseline_decode_all(parsed: Any, bodies: Sequence[bytes]) -> list[Record]:
    out: list[Any] = []  # not cast() per record: that would be a call the baseline pays
    append, new_buffer, read = out.append, io.BytesIO, schemaless_reader
    for body in bodies:
        append(read(new_buffer(body), parsed, None))
    return out


def exchange_decode_all(serde: AvroSerde, messages: Sequence[bytes]) -> list[Record]:
    out: list[Record] = []
    append, decode = out.append, serde.decode
    for message in messages:
        append(decode(message)[1])
    return out


class BenchmarkError(RuntimeError):
    """The exchange and the baseline disagree; the timings would mean nothing."""


def verify(
    serde: AvroSerde, parsed: Any, records: Sequence[Record]
) -> tuple[list[bytes], list[bytes]]:
    """Check every record once; return (baseline bodies, exchange messages)."""
    bodies = baseline_encode_all(parsed, records)
    messages = exchange_encode_all(serde, records)
    header = bytes([0]) + SCHEMA_ID.to_bytes(4, "big")
    for index, (body, message) in enumerate(zip(bodies, messages, strict=True)):
        if message[:HEADER_SIZE] != header:
            raise BenchmarkError(f"record {index}: header {message[:HEADER_SIZE]!r} != {header!r}")
        if message[HEADER_SIZE:] != body:
            raise BenchmarkError(f"record {index}: exchange body differs from fastavro's")
    for name, decoded in (
        ("baseline", baseline_decode_all(parsed, bodies)),
        ("exchange", exchange_decode_all(serde, messages)),
    ):
        for index, (original, back) in enumerate(zip(records, decoded, strict=True)):
            if back != original:
                raise BenchmarkError(
                    f"record {index}: {name} decode gave {back!r}, expected {original!r}"
                )
    for message in messages[:100]:
        schema_id, _ = serde.decode(message)
        if schema_id != SCHEMA_ID:
            raise BenchmarkError(f"decode gave schema id {schema_id}, expected {SCHEMA_ID}")
    return bodies, messages


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


def _rate(run: Callable[[], object], count: int) -> float:
    """Records per second of one run; collects garbage first, keeps the result out of it."""
    gc.collect()
    start = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - start
    del result
    return count / elapsed


@dataclass(frozen=True)
class Result:
    operation: str
    baseline: list[float]
    exchange: list[float]

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline)

    @property
    def exchange_median(self) -> float:
        return statistics.median(self.exchange)

    @property
    def ratio(self) -> float:
        return self.exchange_median / self.baseline_median

    @property
    def round_ratios(self) -> list[float]:
        return [e / b for b, e in zip(self.baseline, self.exchange, strict=True)]


def measure(
    serde: AvroSerde,
    parsed: Any,
    records: Sequence[Record],
    bodies: Sequence[bytes],
    messages: Sequence[bytes],
    rounds: int,
) -> list[Result]:
    count = len(records)
    contenders: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "encode": (
            lambda: baseline_encode_all(parsed, records),
            lambda: exchange_encode_all(serde, records),
        ),
        "decode": (
            lambda: baseline_decode_all(parsed, bodies),
            lambda: exchange_decode_all(serde, messages),
        ),
    }
    rates: dict[str, tuple[list[float], list[float]]] = {op: ([], []) for op in contenders}
    for round_no in range(rounds):
        for operation, (baseline, exchange) in contenders.items():
            base_rates, exch_rates = rates[operation]
            if round_no % 2 == 0:
                base_rates.append(_rate(baseline, count))
                exch_rates.append(_rate(exchange, count))
            else:
                exch_rates.append(_rate(exchange, count))
                base_rates.append(_rate(baseline, count))
        print(
            f"  round {round_no + 1}/{rounds}: "
            + ", ".join(f"{op} {rates[op][1][-1] / rates[op][0][-1]:.3f}" for op in contenders),
            file=sys.stderr,
            flush=True,
        )
    return [Result(op, base, exch) for op, (base, exch) in rates.items()]


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = f"{os.cpu_count()} logical" + (f", {usable} usable" if usable is not None else "")
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": cores,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "fastavro": f"{fastavro.__version__}",
    }


def _fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


def print_report(
    results: Sequence[Result], info: dict[str, str], records: int, rounds: int
) -> None:
    print()
    print(f"Serde benchmark: {records:,} Person records, {rounds} interleaved rounds, median")
    for key, value in info.items():
        print(f"  {key:<9} {value}")
    print()
    header = f"{'operation':<10}{'baseline rec/s':>16}{'exchange rec/s':>16}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.operation:<10}{_fmt_rate(r.baseline_median):>16}"
            f"{_fmt_rate(r.exchange_median):>16}{r.ratio:>8.3f}"
        )
    print()
    for r in results:
        ratios = r.round_ratios
        print(
            f"{r.operation} per-round ratios: "
            + " ".join(f"{x:.3f}" for x in ratios)
            + f"  (min {min(ratios):.3f}, max {max(ratios):.3f},"
            f" median {statistics.median(ratios):.3f})"
        )
    print()
    print("Markdown for docs/benchmarks.md:")
    print()
    print(
        f"Run {info['date']}, `--records {records} --rounds {rounds}`; "
        f"{info['cpu']} ({info['cores']} cores), {info['platform']}, "
        f"{info['python']}, fastavro {info['fastavro']}."
    )
    print()
    print("| Operation | Baseline (records/s) | Exchange (records/s) | Ratio |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.operation} | {_fmt_rate(r.baseline_median)} "
            f"| {_fmt_rate(r.exchange_median)} | {r.ratio:.3f} |"
        )
    print()
    below = [f"{r.operation} ({r.ratio:.4f})" for r in results if r.ratio < TARGET_RATIO]
    if below:
        print(f"Below the {TARGET_RATIO} aim: {', '.join(below)}.")
    else:
        print(f"All ratios at or above the {TARGET_RATIO} aim.")


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serde",
        description="AvroSerde (Confluent framing) against bare fastavro, same run, same records.",
    )
    parser.add_argument("--records", type=_positive, default=100_000, help="default 100000")
    parser.add_argument("--rounds", type=_positive, default=5, help="default 5")
    args = parser.parse_args(argv)

    standard = load_standard("person")
    schema_text = json.dumps(standard.schema)

    def lookup(schema_id: int) -> str:
        if schema_id != SCHEMA_ID:
            raise SchemaNotFoundError(f"no schema with id {schema_id}")
        return schema_text

    serde = AvroSerde(lookup)
    parsed = standard.parsed

    print(f"generating {args.records:,} Person records (seed {SEED})...", file=sys.stderr)
    records = make_people(args.records)
    print("verifying exchange against fastavro on every record...", file=sys.stderr)
    try:
        bodies, messages = verify(serde, parsed, records)
    except BenchmarkError as exc:
        print(f"CORRECTNESS CHECK FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"timing {args.rounds} interleaved rounds...", file=sys.stderr)
    results = measure(serde, parsed, records, bodies, messages, args.rounds)
    print_report(results, machine_info(), args.records, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
