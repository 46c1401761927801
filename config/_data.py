"""The data files shipped in config/data: personas, prompt templates, model cards."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import msgspec

PersonaType = Literal["technical", "fundamental", "news_driven", "mixed"]
PostingType = Literal["interaction", "analysis", "personalized"]
POSTING_TYPES: tuple[str, ...] = ("interaction", "analysis", "personalized")


class Persona(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A KOL persona: the voice a post is written in."""

    serial: Annotated[int, msgspec.Meta(gt=0, le=2_147_483_647)]  # a PostgreSQL integer
    nickname: str
    persona_type: PersonaType
    persona: str
    style: str
    guardrails: list[str]
    skeleton: str
    signature: str | None = None
    language: str = "zh-TW"
    backend: str | None = None
    model: str | None = None


class TypeTemplate(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    instructions: str


class PromptTemplates(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    system: str
    user: str
    facts_none: str
    facts_given: str
    signature_rule: str
    languages: dict[str, str]
    types: dict[PostingType, TypeTemplate]


class ModelCard(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Price per million tokens (USD) and how many tokens a character costs."""

    input_usd_per_mtok: Annotated[float, msgspec.Meta(ge=0)]
    cached_input_usd_per_mtok: Annotated[float, msgspec.Meta(ge=0)]
    output_usd_per_mtok: Annotated[float, msgspec.Meta(ge=0)]
    tokens_per_char: Annotated[float, msgspec.Meta(gt=0)]

    def cost_usd(self, *, prompt: int, cached: int, completion: int) -> float:
        uncached = max(prompt - cached, 0)
        return (
            uncached * self.input_usd_per_mtok
            + cached * self.cached_input_usd_per_mtok
            + completion * self.output_usd_per_mtok
        ) / 1_000_000


class ModelCatalog(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    default: ModelCard
    models: dict[str, ModelCard]

    def card(self, model: str) -> ModelCard:
        return self.models.get(model, self.default)


class _KolFile(msgspec.Struct, forbid_unknown_fields=True):
    kols: list[Persona]


def _load(name: str, into: type[Any]) -> Any:
    text = resources.files("config").joinpath("data", name).read_bytes()
    try:
        return msgspec.convert(tomllib.loads(text.decode("utf-8")), into)
    except msgspec.ValidationError as exc:
        raise ValueError(f"config/data/{name}: {exc}") from None


@cache
def personas() -> tuple[Persona, ...]:
    return tuple(_load("kols.toml", _KolFile).kols)


@cache
def prompt_templates() -> PromptTemplates:
    return _load("prompts.toml", PromptTemplates)


@cache
def model_catalog() -> ModelCatalog:
    return _load("models.toml", ModelCatalog)
