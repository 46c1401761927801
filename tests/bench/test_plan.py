"""The bench's plans, its ideal and extrapolation arithmetic, and its command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import SCENARIOS, plan_for
from bench._batches import extrapolated_old_s, ideal_s, items
from bench._single import Cell

pytestmark = pytest.mark.timeout(30)

AUTOPOSTER = str(Path(sys.executable).with_name("autoposter"))


def test_quick_plan_keeps_every_scenario_with_fewer_repetitions() -> None:
    quick, full = plan_for(quick=True), plan_for(quick=False)

    assert quick.scenarios == full.scenarios == SCENARIOS
    assert quick.reps < full.reps and quick.old_reps < full.old_reps
    assert 100 in quick.batch_sizes


def test_plan_for_refuses_an_unknown_scenario() -> None:
    with pytest.raises(ValueError, match="unknown scenario nope"):
        plan_for(quick=True, scenarios=["single", "nope"])


def test_batch_profiles_narrow_the_batch_scenario_and_its_measured_old_flow() -> None:
    plan = plan_for(quick=False, scenarios=["batches"], batch_profiles=["gpt-4o-mini"])

    assert plan.batch_profiles == ("gpt-4o-mini",)
    assert plan.old_batches_measured == ()  # only vllm-h200's old flow is run for real
    with pytest.raises(ValueError, match="unknown batch profile gpt-5"):
        plan_for(quick=False, batch_profiles=["gpt-5"])


def test_ideal_is_the_binding_limit() -> None:
    floors: list[float | None] = [1.0] * 32

    # 32 s of work over 16 requests at once, or 12,000 tokens at 6,000 tokens/s.
    assert ideal_s(floors, max_concurrency=16, tokens=0, tokens_per_s_cap=0) == 2.0
    assert ideal_s(floors, max_concurrency=16, tokens=18_000, tokens_per_s_cap=6000) == 3.0
    assert ideal_s([4.0, 1.0], max_concurrency=16, tokens=0, tokens_per_s_cap=0) == 4.0
    assert ideal_s([1.0, None], max_concurrency=16, tokens=0, tokens_per_s_cap=0) is None


def test_old_flow_for_a_batch_is_extrapolated_per_item_type() -> None:
    cells = {("p", kind): Cell(profile="p", posting_type=kind, max_words=words,
                               old_s=[seconds, seconds + 2])
             for (kind, words), seconds in zip(
                 [("interaction", 100), ("analysis", 200), ("personalized", 250)],
                 [10.0, 20.0, 30.0])}
    requests = items(4, "sim")  # interaction, analysis, personalized, interaction

    assert extrapolated_old_s(requests, cells, "p") == 11.0 + 21.0 + 31.0 + 11.0


def test_bench_with_a_bad_scenario_prints_one_line_and_exits_2() -> None:
    result = subprocess.run([AUTOPOSTER, "bench", "--scenario", "nope"], capture_output=True,
                            text=True, timeout=30)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "nope" in result.stderr and "Traceback" not in result.stderr
