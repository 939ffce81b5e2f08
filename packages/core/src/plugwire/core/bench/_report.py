"""The end-of-run table and the latency-vs-in-flight plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ._model import LEVELS, SuiteResult

__all__ = ["plot", "table"]


def _f(value: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def table(result: SuiteResult) -> str:
    """A plain-text table of one suite (p50/p99 at 1 in flight, calls/s, ratios)."""
    r1, r64 = result.ratios_at(1), result.ratios_at(64)
    cold = result.cold_start_ratios()
    header = [
        "contender",
        "p50 us",
        "p99 us",
        "calls/s @1",
        "@16",
        "@64",
        "cold ms",
        "RSS MiB",
        "p50 x",
        "p50@64 x",
        "cold x",
    ]
    rows = []
    for name, c in result.contenders.items():
        mark = " (baseline)" if name == result.baseline else ""
        rows.append(
            [
                name + mark,
                _f(c.p50_us),
                _f(c.p99_us),
                *[_f(c.levels[n].calls_per_s) if n in c.levels else "-" for n in LEVELS],
                _f(c.cold_start_ms),
                _f(c.rss_mb, "{:.1f}"),
                _f(r1.get(name), "{:.2f}"),
                _f(r64.get(name), "{:.2f}"),
                _f(cold.get(name), "{:.2f}"),
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"{result.suite}: {result.title}" + (" (quick)" if result.quick else "")]
    for i, row in enumerate([header, *rows]):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    for name, ref in result.pairs:
        ratios = result.pair_ratios(name, ref)
        if ratios:
            shown = ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items() if v is not None)
            lines.append(f"ratio {name} / {ref}: {shown}")
    for name, why in result.skipped.items():
        lines.append(f"skipped {name}: {why}")
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)


def plot(results: Sequence[SuiteResult], path: Path) -> None:
    """One panel per suite: p50 latency against calls in flight, one line per contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in results if any(c.levels for c in r.contenders.values())]
    if not shown:
        shown = list(results)
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 4 * len(shown)), squeeze=False)
    for ax, result in zip(axes[:, 0], shown, strict=True):
        for name, c in result.contenders.items():
            xs = [n for n in LEVELS if n in c.levels]
            if not xs:
                continue
            ys = [c.levels[n].p50_us for n in xs]
            style = "--" if name == result.baseline else "-"
            ax.plot(xs, ys, style, marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(list(LEVELS), [str(n) for n in LEVELS])
        ax.set_xlabel("calls in flight")
        ax.set_ylabel("p50 latency (µs)")
        ax.set_title(f"{result.suite}: {result.title}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg")
    plt.close(fig)
