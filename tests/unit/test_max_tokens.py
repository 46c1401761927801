"""How a posting request's max_words becomes the completion budget for real model cards."""

from __future__ import annotations

import math

import pytest

from config import ModelCard, load_settings, model_catalog
from inference import max_tokens_for
from posting._checks import Limits

pytestmark = pytest.mark.timeout(10)

MODELS = ["gpt-4o-mini", "smollm2-135m-instruct", "default"]


def _card(model: str) -> ModelCard:
    catalog = model_catalog()
    return catalog.default if model == "default" else catalog.models[model]


def _budget(max_words: int, model: str, *, title_allowance: int | None = None) -> int:
    generation = load_settings({}).generation
    allowance = generation.title_allowance_tokens if title_allowance is None else title_allowance
    return max_tokens_for(max_words, _card(model), tolerance=generation.length_tolerance,
                          title_allowance=allowance)


@pytest.mark.parametrize(("model", "expected"), [
    ("gpt-4o-mini", 207 + 48), ("smollm2-135m-instruct", 506 + 48), ("default", 345 + 48),
])
def test_max_tokens_for_200_words_with_default_settings(model: str, expected: int) -> None:
    assert _budget(200, model) == expected


@pytest.mark.parametrize("model", MODELS)
def test_max_tokens_for_is_never_a_fixed_2000(model: str) -> None:
    budgets = {_budget(words, model) for words in (50, 150, 300, 600)}

    assert len(budgets) == 4
    assert 2000 not in budgets


@pytest.mark.parametrize("model", MODELS)
def test_max_tokens_for_grows_with_max_words(model: str) -> None:
    budgets = [_budget(words, model) for words in (50, 100, 200, 400, 800)]

    assert budgets == sorted(budgets)
    assert len(set(budgets)) == len(budgets)


@pytest.mark.parametrize("model", MODELS)
def test_max_tokens_for_adds_title_allowance(model: str) -> None:
    with_title = _budget(200, model, title_allowance=48)

    assert with_title - _budget(200, model, title_allowance=0) == 48


@pytest.mark.parametrize("model", MODELS)
def test_max_tokens_for_covers_tolerated_body_and_title(model: str) -> None:
    generation = load_settings({}).generation
    limits = Limits(max_words=300, tolerance=generation.length_tolerance,
                    title_max_chars=generation.title_max_chars)
    body_tokens = math.ceil(limits.hard_max * _card(model).tokens_per_char)

    assert _budget(300, model) >= body_tokens + generation.title_allowance_tokens


def test_max_tokens_for_costlier_tokenizer_gets_bigger_budget() -> None:
    assert _budget(200, "smollm2-135m-instruct") > _budget(200, "default")
    assert _budget(200, "default") > _budget(200, "gpt-4o-mini")


def test_max_tokens_for_unknown_model_uses_default_card() -> None:
    card = model_catalog().card("some-unpriced-model")
    generation = load_settings({}).generation

    budget = max_tokens_for(200, card, tolerance=generation.length_tolerance,
                            title_allowance=generation.title_allowance_tokens)

    assert budget == _budget(200, "default")
