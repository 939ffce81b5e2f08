"""Results of a benchmark run: per contender and in-flight level, then per suite."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContenderResult", "Level", "SuiteResult", "level_from_latencies", "median_level"]

LEVELS = (1, 16, 64)


@dataclass(frozen=True)
class Level:
    """One measurement at one number of calls in flight."""

    p50_us: float
    p99_us: float
    calls_per_s: float


def level_from_latencies(latencies: Sequence[float], elapsed: float) -> Level:
    """A :class:`Level` from per-call latencies (seconds) and the wall time of the batch."""
    if not latencies or elapsed <= 0:
        raise ValueError("no calls were measured")
    ordered = sorted(latencies)
    return Level(
        p50_us=statistics.median(ordered) * 1e6,
        p99_us=ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)] * 1e6,
        calls_per_s=len(ordered) / elapsed,
    )


def median_level(samples: Sequence[Level]) -> Level:
    """The median of repeated measurements, figure by figure."""
    return Level(
        p50_us=statistics.median(s.p50_us for s in samples),
        p99_us=statistics.median(s.p99_us for s in samples),
        calls_per_s=statistics.median(s.calls_per_s for s in samples),
    )


@dataclass
class ContenderResult:
    """The medians of one contender over the rounds of a run, and its cold-start
    rounds one by one (in the order they ran, interleaved with the other contenders'
    rounds of the same number)."""

    name: str
    levels: dict[int, Level] = field(default_factory=dict)
    cold_start_ms: float | None = None
    rss_mb: float | None = None
    cold_start_rounds_ms: list[float] = field(default_factory=list)

    @property
    def p50_us(self) -> float | None:
        first = self.levels.get(1) or next(iter(self.levels.values()), None)
        return None if first is None else first.p50_us

    @property
    def p99_us(self) -> float | None:
        first = self.levels.get(1) or next(iter(self.levels.values()), None)
        return None if first is None else first.p99_us

    def to_json(self) -> dict[str, Any]:
        return {
            "p50_us": _round(self.p50_us),
            "p99_us": _round(self.p99_us),
            "calls_per_s": {
                str(n): _round(self.levels[n].calls_per_s) if n in self.levels else None
                for n in LEVELS
            },
            "cold_start_ms": _round(self.cold_start_ms),
            "cold_start_rounds_ms": [_round(ms) for ms in self.cold_start_rounds_ms],
        }


@dataclass
class SuiteResult:
    """One suite's run: its contenders, the baseline and the ratios against it."""

    suite: str
    title: str
    baseline: str
    contenders: dict[str, ContenderResult]
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    quick: bool = False
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def pair_ratios(self, name: str, ref: str) -> dict[str, float | None]:
        """``name`` over ``ref``: p50 at each in-flight level, calls/s at 1, cold start."""
        a, b = self.contenders.get(name), self.contenders.get(ref)
        out: dict[str, float | None] = {}
        if a is None or b is None:
            return out
        for n in LEVELS:
            if n in a.levels and n in b.levels:
                out[f"p50@{n}"] = a.levels[n].p50_us / b.levels[n].p50_us
        if 1 in a.levels and 1 in b.levels:
            out["calls/s@1"] = a.levels[1].calls_per_s / b.levels[1].calls_per_s
        if a.cold_start_ms and b.cold_start_ms:
            out["cold"] = a.cold_start_ms / b.cold_start_ms
        return out

    @property
    def ratios(self) -> dict[str, float]:
        """p50 latency (at 1 in flight) of each contender over the baseline's."""
        return self.ratios_at(1)

    def ratios_at(self, inflight: int, figure: str = "p50_us") -> dict[str, float]:
        base = self.contenders.get(self.baseline)
        if base is None or inflight not in base.levels:
            return {}
        ref = getattr(base.levels[inflight], figure)
        out: dict[str, float] = {}
        for name, result in self.contenders.items():
            level = result.levels.get(inflight)
            if level is not None and ref:
                out[name] = round(getattr(level, figure) / ref, 3)
        return out

    def cold_start_ratios(self) -> dict[str, float]:
        base = self.contenders.get(self.baseline)
        if base is None or not base.cold_start_ms:
            return {}
        return {
            name: round(r.cold_start_ms / base.cold_start_ms, 3)
            for name, r in self.contenders.items()
            if r.cold_start_ms is not None
        }

    def to_json(self) -> dict[str, Any]:
        """The documented shape: suite, contenders (p50/p99/calls/s/cold start), ratios,
        and the suite's extra pairs (``"A / B": {"p50@1": x, ..., "cold": x}``)."""
        ratios: Mapping[str, float] = self.ratios
        if not ratios:  # a cold-start-only suite: ratios of the cold start
            ratios = self.cold_start_ratios()
        data: dict[str, Any] = {
            "suite": self.suite,
            "contenders": {name: r.to_json() for name, r in self.contenders.items()},
            "ratios": dict(ratios),
        }
        pairs = {
            f"{name} / {ref}": {k: round(v, 3) for k, v in ratios_.items() if v is not None}
            for name, ref in self.pairs
            if (ratios_ := self.pair_ratios(name, ref))
        }
        if pairs:
            data["pairs"] = pairs
        return data


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
