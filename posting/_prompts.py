"""Prompt building: the persona is the system part; the task is the user part."""

from __future__ import annotations

import msgspec

from config import Persona, PostingType, prompt_templates
from inference import Message
from posting._stocks import Stock


class Facts(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Figures and news the operator supplies. The prompt forbids any others."""

    price: float | None = None
    change_pct: float | None = None
    volume: int | None = None
    headlines: list[str] = []
    notes: list[str] = []

    def is_empty(self) -> bool:
        return not (self.price is not None or self.change_pct is not None
                    or self.volume is not None or self.headlines or self.notes)

    def lines(self) -> list[str]:
        lines = []
        if self.price is not None:
            lines.append(f"- 股價：{self.price:g}")
        if self.change_pct is not None:
            lines.append(f"- 漲跌幅：{self.change_pct:+g}%")
        if self.volume is not None:
            lines.append(f"- 成交量：{self.volume:,} 張")
        lines += [f"- 新聞：{h}" for h in self.headlines]
        lines += [f"- {n}" for n in self.notes]
        return lines


def build_messages(
    *,
    persona: Persona,
    stock: Stock,
    posting_type: PostingType,
    max_words: int,
    facts: Facts,
    title_max_chars: int,
) -> tuple[Message, Message]:
    templates = prompt_templates()
    system = templates.system.format(
        nickname=persona.nickname,
        persona=persona.persona.strip(),
        style=persona.style.strip(),
        guardrails="\n".join(f"- {rule}" for rule in persona.guardrails),
    )
    instructions = templates.types[posting_type].instructions.format(
        skeleton=persona.skeleton.strip()
    )
    if facts.is_empty():
        facts_text = templates.facts_none
    else:
        facts_text = templates.facts_given.format(facts="\n".join(facts.lines()))
    signature_rule = (
        templates.signature_rule.format(signature=persona.signature) if persona.signature else ""
    )
    language = templates.languages.get(persona.language, templates.languages["zh-TW"])
    user = templates.user.format(
        nickname=persona.nickname,
        stock_name=stock.name,
        stock_code=stock.code,
        market=stock.market,
        industry=stock.industry,
        type_instructions=instructions,
        facts=facts_text,
        title_max_chars=title_max_chars,
        max_words=max_words,
        language=language,
        signature_rule=signature_rule,
    )
    return Message("system", system), Message("user", user)
