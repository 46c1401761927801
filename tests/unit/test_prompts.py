"""Prompt building: persona in the system message, the task in the user message."""

from __future__ import annotations

import pytest

from config import Persona, personas, prompt_templates
from posting._prompts import Facts, build_messages
from posting._stocks import Stock

pytestmark = pytest.mark.timeout(10)

TSMC = Stock(code="2330", name="台積電", market="TWSE", industry="半導體業")


def _persona(serial: int) -> Persona:
    return next(p for p in personas() if p.serial == serial)


def _user(persona: Persona, *, posting_type: str = "analysis", max_words: int = 200,
          facts: Facts | None = None, title_max_chars: int = 25) -> str:
    _, user = build_messages(
        persona=persona, stock=TSMC, posting_type=posting_type,  # type: ignore[arg-type]
        max_words=max_words, facts=facts or Facts(), title_max_chars=title_max_chars,
    )
    return user.content


def test_build_messages_returns_system_then_user() -> None:
    system, user = build_messages(persona=_persona(201), stock=TSMC, posting_type="analysis",
                                  max_words=200, facts=Facts(), title_max_chars=25)

    assert system.role == "system"
    assert user.role == "user"


def test_build_messages_system_carries_persona_voice() -> None:
    persona = _persona(201)

    system, _ = build_messages(persona=persona, stock=TSMC, posting_type="analysis",
                               max_words=200, facts=Facts(), title_max_chars=25)

    assert persona.nickname in system.content
    assert persona.persona.strip() in system.content
    assert persona.style.strip() in system.content


@pytest.mark.parametrize("serial", [201, 202, 210])
def test_build_messages_system_lists_every_guardrail(serial: int) -> None:
    persona = _persona(serial)

    system, _ = build_messages(persona=persona, stock=TSMC, posting_type="interaction",
                               max_words=120, facts=Facts(), title_max_chars=25)

    assert persona.guardrails
    for rule in persona.guardrails:
        assert f"- {rule}" in system.content


def test_build_messages_user_names_the_stock() -> None:
    user = _user(_persona(204))

    for value in ("2330", "台積電", "TWSE", "半導體業"):
        assert value in user


def test_build_messages_user_names_the_persona() -> None:
    assert "晶圓老鳥" in _user(_persona(204))


@pytest.mark.parametrize("posting_type", ["interaction", "analysis", "personalized"])
def test_build_messages_user_carries_type_instructions(posting_type: str) -> None:
    persona = _persona(204)
    template = prompt_templates().types[posting_type].instructions  # type: ignore[index]
    expected = template.format(skeleton=persona.skeleton.strip())

    assert expected in _user(persona, posting_type=posting_type)


def test_build_messages_type_instructions_differ_by_type() -> None:
    persona = _persona(204)

    users = {_user(persona, posting_type=t) for t in ("interaction", "analysis", "personalized")}

    assert len(users) == 3


def test_build_messages_personalized_includes_skeleton() -> None:
    persona = _persona(202)

    assert persona.skeleton.strip() in _user(persona, posting_type="personalized")
    assert persona.skeleton.strip() not in _user(persona, posting_type="analysis")


def test_build_messages_user_carries_max_words() -> None:
    assert "內文不超過 350 個字" in _user(_persona(201), max_words=350)


def test_build_messages_title_rule_uses_title_max_chars() -> None:
    user = _user(_persona(201), title_max_chars=18)

    assert "不超過 18 個字" in user
    assert "標題要提到「台積電」" in user


def test_build_messages_zh_tw_persona_gets_traditional_chinese_line() -> None:
    languages = prompt_templates().languages

    user = _user(_persona(201))

    assert languages["zh-TW"] in user
    assert languages["en"] not in user


def test_build_messages_english_persona_gets_english_line() -> None:
    persona = _persona(210)
    languages = prompt_templates().languages

    user = _user(persona)

    assert persona.language == "en"
    assert languages["en"] in user
    assert languages["zh-TW"] not in user


def test_build_messages_signature_rule_when_persona_signs() -> None:
    persona = _persona(201)

    user = _user(persona)

    assert persona.signature
    assert f"署名：{persona.signature}" in user


def test_build_messages_no_signature_rule_without_signature() -> None:
    persona = _persona(203)

    user = _user(persona)

    assert persona.signature is None
    assert "署名" not in user


def test_build_messages_without_facts_forbids_figures() -> None:
    user = _user(_persona(201))

    assert prompt_templates().facts_none in user
    assert "不要寫出具體的股價" in user
    assert "只能引用以下資料" not in user


def test_build_messages_with_facts_lists_each_figure() -> None:
    facts = Facts(price=1085.5, change_pct=-2.3, volume=45210,
                  headlines=["台積電法說會上修全年展望"], notes=["外資連三日買超"])

    user = _user(_persona(201), facts=facts)

    for line in ("- 股價：1085.5", "- 漲跌幅：-2.3%", "- 成交量：45,210 張",
                 "- 新聞：台積電法說會上修全年展望", "- 外資連三日買超"):
        assert line in user


def test_build_messages_with_facts_uses_facts_given_wording() -> None:
    user = _user(_persona(201), facts=Facts(price=1085.0))

    assert "只能引用以下資料中的數字，不得自行捏造其他數字" in user
    assert prompt_templates().facts_none not in user


def test_build_messages_positive_change_carries_plus_sign() -> None:
    assert "- 漲跌幅：+3.5%" in _user(_persona(201), facts=Facts(change_pct=3.5))


def test_build_messages_headline_braces_pass_through() -> None:
    user = _user(_persona(201), facts=Facts(headlines=["營收 {創高}"]))

    assert "- 新聞：營收 {創高}" in user


def test_facts_is_empty_only_without_any_field() -> None:
    assert Facts().is_empty()
    assert not Facts(change_pct=0.0).is_empty()
    assert not Facts(notes=["外資買超"]).is_empty()
