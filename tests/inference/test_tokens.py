"""Token estimates and completion budgets, counted from characters and the model card."""

from __future__ import annotations

import pytest

from config import ModelCard, model_catalog
from inference import estimate_tokens, max_tokens_for

pytestmark = pytest.mark.timeout(10)


def _card(tokens_per_char: float) -> ModelCard:
    return ModelCard(input_usd_per_mtok=0.0, cached_input_usd_per_mtok=0.0,
                     output_usd_per_mtok=0.0, tokens_per_char=tokens_per_char)


def test_estimate_tokens_prices_cjk_by_card():
    assert estimate_tokens("台積電今天開高走高", _card(2.0)) == 18
    assert estimate_tokens("台積電今天開高走高", _card(1.0)) == 9


def test_estimate_tokens_counts_latin_at_four_chars_a_token():
    text = "TSMC rallied after earnings."  # 28 characters

    assert estimate_tokens(text, _card(2.0)) == 7
    assert estimate_tokens(text, _card(0.5)) == 7


def test_estimate_tokens_counts_full_width_punctuation_as_cjk():
    assert estimate_tokens("（２３３０）", _card(2.0)) == 12


def test_estimate_tokens_mixes_cjk_and_latin():
    assert estimate_tokens("台積電 TSMC", _card(2.0)) == 6 + 2  # 3 CJK; 5 Latin round up


def test_estimate_tokens_cjk_costs_more_than_latin_of_same_length():
    card = model_catalog().card("gpt-4o-mini")

    assert estimate_tokens("聯發科" * 20, card) > estimate_tokens("abc" * 20, card)


def test_estimate_tokens_empty_is_zero():
    assert estimate_tokens("", _card(1.5)) == 0


def test_max_tokens_for_scales_words_by_tolerance_and_tokens_per_char():
    budget = max_tokens_for(200, _card(2.0), tolerance=0.25, title_allowance=48)

    assert budget == 200 * 1.25 * 2 + 48


@pytest.mark.parametrize("model", ["gpt-4o-mini", "Qwen/Qwen2.5-7B-Instruct",
                                   "smollm2-135m-instruct", "unknown-model"])
@pytest.mark.parametrize("max_words", [80, 150, 300, 600])
def test_max_tokens_for_stays_near_post_length_not_2000(model, max_words):
    card = model_catalog().card(model)

    budget = max_tokens_for(max_words, card, tolerance=0.15, title_allowance=48)

    assert budget != 2000
    assert max_words * card.tokens_per_char < budget < 2000


def test_max_tokens_for_grows_with_max_words():
    card = model_catalog().card("gpt-4o-mini")

    budgets = [max_tokens_for(w, card, tolerance=0.15, title_allowance=48)
               for w in (100, 200, 400, 800)]

    assert budgets == sorted(budgets) and len(set(budgets)) == 4
