"""The period the sharing indicators cover: ``[start, end)``, in UTC, and its scope.

Every figure counts what happened at or after ``start`` and before ``end`` (a run by
when it started, a record version by when the builder applied it, a request by its
audit entry's time, a sharing request by when it was decided). A date alone means
its midnight, UTC; a time without a zone is refused (nothing is guessed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from exchange.core.errors import ValidationError

DEFAULT_DAYS = 30
MAX_PERIOD = timedelta(days=3653)  # ten years


@dataclass(frozen=True, slots=True)
class Period:
    """``[start, end)``, both timezone-aware UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a period's bounds must be timezone-aware")
        if self.start >= self.end:
            raise ValidationError(
                [("from", "period.empty", f"from ({self.start}) must be before to ({self.end})")]
            )
        if self.end - self.start > MAX_PERIOD:
            # Figures are per day and per interval of each update frequency: a period of
            # millennia (from=0001-01-01) would hold millions of rows.
            raise ValidationError(
                [
                    (
                        "from",
                        "period.too_long",
                        f"a period lasts at most {MAX_PERIOD.days} days (ten years)",
                    )
                ]
            )

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, slots=True)
class Scope:
    """Which departments and datasets a report covers (None: all)."""

    department: str | None = None
    dataset: str | None = None


def parse_bound(text: str, name: str) -> datetime:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO 8601 time with its zone, as UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        found = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            [(name, "period.malformed", f"{text!r} is not a date (YYYY-MM-DD) or ISO 8601 time")]
        ) from None
    if found.tzinfo is None:
        raise ValidationError(
            [(name, "period.no_zone", f"{text!r} names no time zone (add Z or +08:00)")]
        )
    try:
        return found.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-08:00 is after the last moment Python holds
        raise _out_of_range(name) from None


def _out_of_range(name: str) -> ValidationError:
    return ValidationError(
        [(name, "period.malformed", f"{name} is too far in the past or the future")]
    )


def period_of(start: str | None, end: str | None, *, now: datetime) -> Period:
    """The period ``[start, end)``; ``end`` defaults to ``now`` and ``start`` to
    :data:`DEFAULT_DAYS` days before ``end``."""
    until = parse_bound(end, "to") if end else now.astimezone(UTC)
    try:
        since = parse_bound(start, "from") if start else until - timedelta(days=DEFAULT_DAYS)
    except OverflowError:  # to=0001-01-05: 30 days earlier is before the first moment
        raise _out_of_range("to") from None
    return Period(since, until)


def month(text: str) -> Period:
    """The calendar month ``YYYY-MM``, UTC."""
    try:
        year, number = (int(part) for part in text.strip().split("-"))
        first = datetime(year, number, 1, tzinfo=UTC)
    except ValueError:
        raise ValidationError(
            [("month", "period.malformed", f"{text!r} is not a month (YYYY-MM)")]
        ) from None
    following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return Period(first, following)
