"""The shapes of the sharing indicators: what the command line prints, the API serves
and the monthly report draws (``docs/indicators.md`` defines each figure).

Durations are in seconds, latencies in milliseconds, shares between 0 and 1; a
percentile or a share that has nothing to be computed from is null, never 0.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class PeriodView(BaseModel):
    start: datetime = Field(description="Included.")
    end: datetime = Field(description="Excluded.")


class ScopeView(BaseModel):
    department: str | None = None
    dataset: str | None = None


class Publishing(BaseModel):
    """Rows a department's connector runs read, published and rejected, and what the
    registry builder rejected and applied, for one dataset."""

    department: str
    dataset: str
    runs: int = Field(description="Connector runs started in the period.")
    read: int
    published: int
    rejected: int = Field(description="Rows the connector rejected (dead-lettered).")
    rejected_by_reason: dict[str, int] = Field(
        description="Problems of the rejected rows by code (a row with two problems counts "
        "under both)."
    )
    registry_rejected: int = Field(
        description="Records the registry builder dead-lettered (to dlq.registry)."
    )
    registry_rejected_by_reason: dict[str, int]
    applied: int = Field(description="Record versions the registry builder applied.")


class Freshness(BaseModel):
    """From the source's own change time to the registry (the version's applied time)."""

    department: str
    dataset: str
    versions: int = Field(description="Record versions (not withdrawals) applied.")
    with_change_time: int
    without_change_time: int = Field(
        description="Versions whose source sent no change time: not in the percentiles."
    )
    change_time_ahead: int = Field(
        default=0,
        description="Versions whose change time is later than their applied time (the "
        "source's clock ahead, or dated in the future): counted in with_change_time, not in "
        "the percentiles.",
    )
    p50_s: float | None
    p95_s: float | None


class Timeliness(BaseModel):
    """The dataset's owner department against the update frequency it declared."""

    department: str = Field(description="The dataset's owner department (catalogue).")
    dataset: str
    frequency: str
    expected_intervals: int = Field(
        description="Calendar intervals of the frequency wholly inside the period."
    )
    intervals_with_data: int = Field(
        description="Of those, the intervals in which at least one version was applied."
    )
    share: float | None = Field(description="intervals_with_data / expected_intervals.")
    newest_applied_at: datetime | None = Field(
        description="The newest version applied before the period's end."
    )
    age_s: float | None = Field(description="Age of that version at the period's end.")
    within_frequency: bool | None = Field(
        description="Whether age_s is at most the frequency's nominal interval."
    )


class DepartmentLinkage(BaseModel):
    department: str
    people: int = Field(description="People with a live record of this department.")
    known_elsewhere: int = Field(description="Of those, people known to another department.")
    rate: float | None


class Linkage(BaseModel):
    """People (person entities) and the departments that know them: the registry's
    state when computed (linkage keeps no history to replay)."""

    people: int = Field(description="Person entities with at least one live record.")
    known_to_two_or_more: int
    rate: float | None
    by_department: list[DepartmentLinkage]


class Requests(BaseModel):
    """Data requests (audit entries stating a purpose) served and refused."""

    department: str | None = Field(description="The consuming department (the caller's).")
    purpose: str
    dataset: str | None = Field(description="As audited: one dataset, or several joined by ','.")
    served: int = Field(description="Entries with decision allow.")
    refused: int = Field(description="Entries with decision deny.")
    latency_p50_ms: int | None
    latency_p95_ms: int | None


class Latency(BaseModel):
    """Query latency: from a request's arrival at the gateway to its answer starting."""

    action: str | None = Field(description="null: every data request.")
    requests: int
    without_latency: int = Field(description="Entries written before latency was recorded.")
    p50_ms: int | None
    p95_ms: int | None


class Turnaround(BaseModel):
    """Sharing requests to an owner department's dataset: submitted to decided."""

    department: str = Field(description="The owner department that decides.")
    dataset: str
    decided: int = Field(description="Requests decided in the period.")
    approved: int
    narrowed: int
    refused: int
    open: int = Field(description="Requests submitted and not decided at the period's end.")
    p50_s: float | None
    p95_s: float | None


class Day(BaseModel):
    """One UTC day of the period (the report's timelines)."""

    day: date
    applied: int = Field(description="Record versions applied.")
    rejected: int = Field(description="Rows rejected by connector runs started that day.")
    registry_rejected: int = Field(description="Records the registry builder dead-lettered.")
    served: int = Field(description="Data requests served.")
    refused: int = Field(description="Data requests refused.")


class Indicators(BaseModel):
    """Every sharing indicator over one period and scope."""

    period: PeriodView
    scope: ScopeView
    computed_at: datetime
    publishing: list[Publishing]
    freshness: list[Freshness]
    timeliness: list[Timeliness]
    linkage: Linkage
    requests: list[Requests]
    latency: list[Latency]
    turnaround: list[Turnaround]
    daily: list[Day] = Field(description="Every UTC day the period touches, in order.")
