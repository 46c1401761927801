"""Ratios, targets and the markdown the bench prints."""

from __future__ import annotations

import pytest

from bench import Report, Table, Target, ratio, render
from bench._report import percentile, render_table

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(("numerator", "denominator"), [(1.0, 0.0), (None, 2.0), (2.0, None)])
def test_ratio_without_a_usable_denominator_is_none(numerator: float | None,
                                                    denominator: float | None) -> None:
    assert ratio(numerator, denominator) is None


def test_ratio_divides() -> None:
    assert ratio(12.0, 2.0) == 6.0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([], 0.5) is None


@pytest.mark.parametrize(("measured", "comparison", "limit", "verdict"), [
    (1.15, "<=", 1.15, "pass"),
    (1.16, "<=", 1.15, "FAIL"),
    (5.0, ">=", 5.0, "pass"),
    (4.99, ">=", 5.0, "FAIL"),
    (5.0, "<", 5.0, "FAIL"),
    (4.9, "<", 5.0, "pass"),
    (None, "<", 5.0, "not run"),
])
def test_target_verdict_follows_its_comparison(measured: float | None, comparison: str,
                                               limit: float, verdict: str) -> None:
    target = Target(name="t", measured=measured, comparison=comparison,  # type: ignore[arg-type]
                    limit=limit)

    assert target.verdict == verdict


def test_render_table_writes_heading_rows_and_notes() -> None:
    table = Table(title="Demo", columns=["a", "b"], rows=[["1", "x|y"]], notes=["why"])

    assert render_table(table).splitlines() == [
        "### Demo", "", "| a | b |", "| --- | --- |", "| 1 | x\\|y |", "", "- why"]


def test_render_table_refuses_a_row_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="2 columns"):
        render_table(Table(title="Demo", columns=["a", "b"], rows=[["1"]]))


def test_render_puts_command_machine_and_every_verdict_in_the_document() -> None:
    report = Report(command="autoposter bench --quick", machine=["CPU: test"], targets=[
        Target(name="fast", measured=6.0, comparison=">=", limit=5.0),
        Target(name="small", measured=320.0, comparison="<", limit=300.0, unit="MB"),
    ], tables=[Table(title="1. Demo", columns=["x"], rows=[["1"]])])

    text = render(report)

    assert "```sh\nautoposter bench --quick\n```" in text
    assert "- CPU: test" in text
    assert "Targets met: 1 of 2." in text
    assert "| fast | 6.00× | >= 5× | pass |" in text
    assert "| small | 320.0 MB | < 300 MB | FAIL |" in text
    assert "### 1. Demo" in text
