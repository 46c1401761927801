"""The small pieces: labels kept bounded, pool statistics by difference, the gap timer."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from config import model_catalog
from inference._metrics import error_codes, model_label
from inference._usage import UsageTally
from posting import metrics
from posting._metrics import _PoolSampler, failure_code


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(("reason", "code"), [
    (None, "none"),
    ("timeout: deadline of 120s exceeded", "timeout"),
    ("cancelled: cancelled before the post was finished", "cancelled"),
    ("upstream_error: HTTP 500: boom", "upstream_error"),
    ("no variant had both a title and a body", "no_usable_variant"),
    ("something_new: whatever", "other"),
])
def test_failure_reasons_become_a_closed_set_of_codes(reason: str | None, code: str) -> None:
    assert failure_code(reason) == code


def test_error_codes_cover_the_error_tree() -> None:
    assert {"timeout", "rate_limited", "upstream_error", "stream_broken"} <= set(error_codes())


def test_unknown_models_are_labelled_other() -> None:
    priced = next(iter(model_catalog().models))
    assert model_label(priced, configured="x") == priced
    assert model_label("mine", configured="mine") == "mine"
    assert model_label("typed-by-a-user", configured="mine") == "other"


def test_an_unknown_batch_state_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="queued"):
        metrics.record_batch_item("exploded")


def test_batch_items_count_by_state() -> None:
    before = _value("autoposter_batch_items_total", status="done")
    metrics.record_batch_item("done")
    assert _value("autoposter_batch_items_total", status="done") == before + 1


class _FakePool:
    def __init__(self) -> None:
        self.stats = {"pool_size": 2, "pool_available": 1, "pool_max": 5,
                      "requests_waiting": 0, "requests_num": 10, "requests_wait_ms": 500}

    def get_stats(self) -> dict[str, int]:
        return dict(self.stats)


def test_pool_statistics_add_up_by_difference_and_leave_on_withdraw() -> None:
    size, waited = _value("autoposter_db_pool_connections"), _value(
        "autoposter_db_pool_wait_seconds_total")
    first, second = _FakePool(), _FakePool()
    samplers = [_PoolSampler(first), _PoolSampler(second)]  # type: ignore[arg-type]
    for sampler in samplers:
        sampler.sample()
    first.stats.update(pool_size=4, requests_wait_ms=1500)
    samplers[0].sample()
    assert _value("autoposter_db_pool_connections") == size + 6
    assert _value("autoposter_db_pool_wait_seconds_total") == pytest.approx(waited + 2.0)
    for sampler in samplers:
        sampler.withdraw()
    assert _value("autoposter_db_pool_connections") == size


class _Delta:
    def __init__(self, index: int, content: str) -> None:
        self.index = index
        self.delta = type("D", (), {"content": content})()
        self.finish_reason = None


class _Chunk:
    def __init__(self, *choices: _Delta) -> None:
        self.choices = list(choices)
        self.usage = None


def test_gaps_are_timed_per_variant_not_per_chunk() -> None:
    gaps: list[float] = []
    tally = UsageTally(range(2), model_catalog().default, prompt=(), on_gap=gaps.append)
    for chunk in (_Chunk(_Delta(0, "a")), _Chunk(_Delta(1, "b")), _Chunk(_Delta(0, "c")),
                  _Chunk(_Delta(0, "d"), _Delta(1, "e"))):
        list(tally.feed(chunk, 0))
    assert len(gaps) == 3  # variant 0: two gaps; variant 1: one
    assert all(gap >= 0 for gap in gaps)
