"""Checks on one variant, its score, and which variant is selected."""

from __future__ import annotations

import pytest

from posting._checks import Check, Limits, check_variant, score, select
from posting._stocks import Stock
from posting._text import Draft

pytestmark = pytest.mark.timeout(10)

TSMC = Stock(code="2330", name="台積電", market="TWSE", industry="半導體業")
LIMITS = Limits(max_words=100, tolerance=0.2, title_max_chars=10)


def _checks(title: str = "台積電衝高", body: str = "台積電" + "字" * 77,
            finish_reason: str | None = "stop", limits: Limits = LIMITS) -> dict[str, Check]:
    draft = Draft(title=title, body=body)
    checks = check_variant(draft, finish_reason=finish_reason, stock=TSMC, limits=limits)
    return {c.name: c for c in checks}


def _passing(*, except_: str = "") -> list[Check]:
    names = ("not_empty", "not_truncated", "stock_named", "length", "title_length")
    return [Check(n, n != except_, "") for n in names]


def test_check_variant_good_draft_passes_every_check() -> None:
    checks = _checks()

    assert list(checks) == ["not_empty", "not_truncated", "stock_named", "length",
                            "title_length"]
    assert all(c.passed for c in checks.values())


@pytest.mark.parametrize(("title", "body"), [("", "台積電內文"), ("台積電", ""), ("", "")])
def test_check_variant_missing_title_or_body_fails_not_empty(title: str, body: str) -> None:
    assert not _checks(title=title, body=body)["not_empty"].passed


@pytest.mark.parametrize("finish_reason", ["length", None, "content_filter"])
def test_check_variant_unfinished_fails_not_truncated(finish_reason: str | None) -> None:
    check = _checks(finish_reason=finish_reason)["not_truncated"]

    assert not check.passed
    assert check.detail == f"finish_reason={finish_reason or 'none'}"


def test_check_variant_stop_passes_not_truncated() -> None:
    assert _checks(finish_reason="stop")["not_truncated"].passed


def test_check_variant_stock_named_by_code() -> None:
    assert _checks(title="2330 衝高", body="晶圓代工龍頭走強")["stock_named"].passed


def test_check_variant_stock_named_by_name_in_body() -> None:
    assert _checks(title="晶圓代工走強", body="今天台積電量增")["stock_named"].passed


def test_check_variant_stock_missing_fails_stock_named() -> None:
    check = _checks(title="晶圓代工走強", body="龍頭股量增價漲")["stock_named"]

    assert not check.passed
    assert check.detail == "stock not named"


def test_check_variant_code_split_across_title_and_body_not_named() -> None:
    assert not _checks(title="晶圓代工 2", body="330 元關卡")["stock_named"].passed


def test_check_variant_length_within_tolerance_passes() -> None:
    assert _checks(body="字" * 120)["length"].passed  # 100 * (1 + 0.2)


def test_check_variant_length_over_tolerance_fails() -> None:
    check = _checks(body="字" * 121)["length"]

    assert not check.passed
    assert check.detail == "121 of 100 (allowed up to 120)"


def test_check_variant_empty_body_fails_length() -> None:
    assert not _checks(body="")["length"].passed


def test_check_variant_length_at_default_tolerance_limit_passes() -> None:
    limits = Limits(max_words=200, tolerance=0.15, title_max_chars=25)

    assert limits.hard_max == 230
    assert _checks(body="台積電" + "字" * 227, limits=limits)["length"].passed


def test_check_variant_title_at_max_chars_passes() -> None:
    assert _checks(title="台積電" + "字" * 7)["title_length"].passed


def test_check_variant_title_over_max_chars_fails() -> None:
    check = _checks(title="台積電" + "字" * 8)["title_length"]

    assert not check.passed
    assert check.detail == "11 of 10 characters"


def test_score_all_passed_within_target_length_is_100() -> None:
    assert score(_passing(), body_len=60, limits=LIMITS) == 100
    assert score(_passing(), body_len=100, limits=LIMITS) == 100


def test_score_failed_stock_named_scores_lower() -> None:
    good = score(_passing(), body_len=80, limits=LIMITS)

    assert score(_passing(except_="stock_named"), body_len=80, limits=LIMITS) < good


def test_score_failed_not_empty_costs_most() -> None:
    costs = {name: score(_passing(except_=name), body_len=80, limits=LIMITS)
             for name in ("not_empty", "not_truncated", "stock_named", "length", "title_length")}

    assert min(costs, key=costs.__getitem__) == "not_empty"


def test_score_too_short_is_penalised_more_when_shorter() -> None:
    thin = score(_passing(), body_len=40, limits=LIMITS)
    thinner = score(_passing(), body_len=10, limits=LIMITS)

    assert 100 > thin > thinner


def test_score_too_long_is_penalised_more_when_longer() -> None:
    long = score(_passing(), body_len=110, limits=LIMITS)
    longer = score(_passing(), body_len=150, limits=LIMITS)

    assert 100 > long > longer


def test_select_picks_highest_score() -> None:
    assert select([70.0, 95.5, 80.0]) == 1


def test_select_earliest_wins_tie() -> None:
    assert select([80.0, 95.0, 95.0]) == 1


def test_select_skips_none() -> None:
    assert select([None, 60.0, None, 75.0]) == 3


@pytest.mark.parametrize("scores", [[], [None], [None, None, None]])
def test_select_nothing_scored_returns_none(scores: list[float | None]) -> None:
    assert select(scores) is None


def test_select_picks_zero_or_negative_score_over_none() -> None:
    assert select([None, -20.0, 0.0]) == 2
