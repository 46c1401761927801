"""What a benchmark run measured, the targets it checks, and the markdown it prints.

Every figure here comes from the run itself; this module only divides, compares and
formats. A ratio whose denominator is missing or zero is `None` and renders as `n/a`,
and a target with no figure to check is neither passed nor failed but `not run`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Literal

import msgspec

Comparison = Literal["<=", "<", ">="]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """`numerator / denominator`, or None when either is missing or the divisor is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile (`share` in 0..1) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return ordered[rank - 1]


class Target(msgspec.Struct, kw_only=True, frozen=True):
    """One pass/fail line: `measured` compared against `limit`."""

    name: str
    measured: float | None
    comparison: Comparison
    limit: float
    unit: str = "×"

    @property
    def passed(self) -> bool | None:
        if self.measured is None:
            return None
        if self.comparison == "<=":
            return self.measured <= self.limit
        if self.comparison == "<":
            return self.measured < self.limit
        return self.measured >= self.limit

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "FAIL", None: "not run"}[self.passed]


class Table(msgspec.Struct, kw_only=True):
    """One scenario's table: a heading, columns, rows of cells, and notes under it."""

    title: str
    columns: list[str]
    rows: list[list[str]] = []
    notes: list[str] = []


class Report(msgspec.Struct, kw_only=True):
    command: str
    machine: list[str]
    setup: list[str] = []
    tables: list[Table] = []
    targets: list[Target] = []
    wall_s: float = 0.0


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    """A number for a cell; `n/a` when it was not measured."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def fmt_ratio(value: float | None) -> str:
    return fmt(value, 2, "×")


def render_table(table: Table) -> str:
    """A GitHub-flavoured markdown table with its heading and notes."""
    lines = [f"### {table.title}", "", _row(table.columns),
             _row(["---"] * len(table.columns))]
    for cells in table.rows:
        if len(cells) != len(table.columns):
            raise ValueError(f"{table.title!r}: a row has {len(cells)} cells for"
                             f" {len(table.columns)} columns")
        lines.append(_row(cells))
    if table.notes:
        lines.append("")
        lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines)


def targets_table(targets: Sequence[Target]) -> Table:
    rows = [[t.name, _measured(t), f"{t.comparison} {_limit(t)}", t.verdict] for t in targets]
    return Table(title="Targets", columns=["target", "measured", "limit", "result"], rows=rows)


def render(report: Report) -> str:
    """The whole document: command, machine, targets, then every scenario's table."""
    passed = sum(t.passed is True for t in report.targets)
    parts = [
        "# Benchmarks",
        "",
        "Written by `autoposter bench`; every figure below was measured in the one run"
        " described here, so ratios compare like with like.",
        "",
        "Command:",
        "",
        "```sh",
        report.command,
        "```",
        "",
        "Machine:",
        "",
        *[f"- {line}" for line in report.machine],
    ]
    if report.setup:
        parts += ["", "Setup:", "", *[f"- {line}" for line in report.setup]]
    parts += ["", f"Targets met: {passed} of {len(report.targets)}."
              f" The run took {report.wall_s:.0f} s.", "",
              render_table(targets_table(report.targets))]
    for table in report.tables:
        parts += ["", render_table(table)]
    return "\n".join(parts) + "\n"


def _measured(target: Target) -> str:
    if target.unit == "×":
        return fmt_ratio(target.measured)
    return fmt(target.measured, 1, f" {target.unit}")


def _limit(target: Target) -> str:
    if target.unit == "×":
        return f"{target.limit:g}×"
    return f"{target.limit:g} {target.unit}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
