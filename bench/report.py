"""What every scenario hands back, and how it is printed and written.

A scenario returns a :class:`Report`: its settings, its measurements, a table,
the targets it is judged against and a function that draws its plot. This
module prints the table and writes ``<scenario>-<time>.json`` and ``.png``
(``<scenario>-smoke-<time>.*`` for smoke runs, which are never representative).
"""

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import describe_machine

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where results go unless ``--out-dir`` says otherwise."""


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, with what this run measured.

    name: what is judged, e.g. "e2e latency p50".
    goal: the target in words with its unit, e.g. "<= 100 ms".
    measured: the value this run measured (the goal's unit), None if not measured.
    met: whether it meets the goal; None when not measured.
    """

    name: str
    goal: str
    measured: float | None
    met: bool | None


def at_most(name: str, limit: float, measured: float | None, unit: str = "ms") -> Target:
    """A target met when ``measured`` is at most ``limit`` (not judged when nothing was measured)."""
    return Target(name, f"<= {limit:g} {unit}", measured, None if measured is None else measured <= limit)


def at_least(name: str, limit: float, measured: float | None, unit: str) -> Target:
    """A target met when ``measured`` is at least ``limit`` (not judged when nothing was measured)."""
    return Target(name, f">= {limit:g} {unit}", measured, None if measured is None else measured >= limit)


@dataclass
class Report:
    """A scenario's outcome.

    config: the settings it ran with (durations, backend, width, ...).
    setup: what the machine description records about the models: backend(s),
        precision, generator width(s), threads.
    results: the measurements (JSON-ready).
    headers, rows: the table printed to the terminal.
    targets: the issue's targets, judged on this run.
    plot: draws the PNG at the path it is given.
    """

    scenario: str
    smoke: bool
    config: dict[str, Any]
    setup: dict[str, Any]
    results: dict[str, Any]
    headers: list[str]
    rows: list[list[Any]]
    targets: list[Target] = field(default_factory=list)
    plot: Callable[[Path], None] | None = None


PERCENTILE_HEADERS = ["measure", "p50 ms", "p95 ms", "p99 ms", "n"]
"""The table header of a scenario whose rows are :func:`percentile_cells` of latencies."""


def percentile_cells(stats: dict[str, Any]) -> list[Any]:
    """p50, p95, p99 and n of :func:`percentiles` output, as table cells."""
    return [stats["p50"], stats["p95"], stats["p99"], stats["n"]]


def percentiles(values: Sequence[float] | np.ndarray) -> dict[str, float | int | None]:
    """p50, p95, p99, mean and max of ``values`` (same unit), and n; None for each when empty."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None, "n": 0}
    p50, p95, p99 = np.percentile(data, (50, 95, 99))
    return {
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "mean": float(data.mean()),
        "max": float(data.max()),
        "n": int(data.size),
    }


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, first column left-aligned; floats with one decimal (three below 10), None as "-"."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        first, *rest = (v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))
        return "  ".join([first, *rest])

    return "\n".join([line(list(headers)), *(line(row) for row in cells)])


def format_targets(targets: Sequence[Target]) -> str:
    """The targets as a table: name, goal, measured, met."""
    rows = [[t.name, t.goal, t.measured, {None: "n/a", True: "yes", False: "NO"}[t.met]] for t in targets]
    return format_table(["target", "goal", "measured", "met"], rows)


def write_report(report: Report, *, out_dir: Path, command: str) -> tuple[Path, Path | None]:
    """Write the JSON (and the PNG, if the report draws one); return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{report.scenario}-{'smoke-' if report.smoke else ''}{time.strftime('%Y%m%d-%H%M%S')}"
    json_path = out_dir / f"{stem}.json"
    png_path = out_dir / f"{stem}.png" if report.plot is not None else None
    document = {
        "scenario": report.scenario,
        "command": command,
        "smoke": report.smoke,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": describe_machine(**report.setup),
        "config": report.config,
        "results": report.results,
        "targets": [asdict(t) for t in report.targets],
        "plot": png_path.name if png_path is not None else None,
    }
    json_path.write_text(json.dumps(_json_ready(document), indent=2))
    if png_path is not None and report.plot is not None:
        report.plot(png_path)
    return json_path, png_path


def _json_ready(value: Any) -> Any:
    """Numpy scalars to Python numbers, paths to strings, non-finite floats to None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
