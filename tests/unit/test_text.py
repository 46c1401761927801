"""From raw model text to title and body: length, Taiwan Traditional, markdown, title."""

from __future__ import annotations

import pytest

from posting._text import (
    Draft,
    normalize,
    split_title,
    strip_markdown,
    text_length,
    to_taiwan_traditional,
)

pytestmark = pytest.mark.timeout(10)


def test_text_length_counts_each_cjk_character() -> None:
    assert text_length("台積電今天上漲") == 7


def test_text_length_counts_each_latin_word_once() -> None:
    assert text_length("TSMC rallied after earnings") == 4


def test_text_length_counts_numbers_as_one_word() -> None:
    assert text_length("台積電 TSMC 上漲 3.5%") == 3 + 1 + 2 + 1


def test_text_length_ignores_whitespace_and_ascii_punctuation() -> None:
    assert text_length("Hello, world!") == 2
    assert text_length(" \n\t ,.!?;:()") == 0


def test_text_length_counts_full_width_marks() -> None:
    assert text_length("上漲。") == 3
    assert text_length("（２３３０）") == 6


def test_to_taiwan_traditional_converts_simplified_clause() -> None:
    assert to_taiwan_traditional("这个软件很好用。") == "這個軟體很好用。"


@pytest.mark.parametrize("clause", ["台股", "半導體設備", "公布", "半導體設備公布了。",
                                    "台股今天上漲。"])
def test_to_taiwan_traditional_keeps_taiwan_clause(clause: str) -> None:
    assert to_taiwan_traditional(clause) == clause


def test_to_taiwan_traditional_converts_only_the_simplified_clause() -> None:
    text = "台股大漲，这个软件不错。"

    assert to_taiwan_traditional(text) == "台股大漲，這個軟體不錯。"


def test_strip_markdown_removes_headings() -> None:
    assert strip_markdown("# 台積電\n## 觀察重點") == "台積電\n觀察重點"


def test_strip_markdown_removes_bold() -> None:
    assert strip_markdown("**外資**連三日買超") == "外資連三日買超"


def test_strip_markdown_removes_latin_italics() -> None:
    assert strip_markdown("foreign flows *really* matter") == "foreign flows really matter"


def test_strip_markdown_removes_italics_between_cjk() -> None:
    assert strip_markdown("今天*特別*注意量能") == "今天特別注意量能"


def test_strip_markdown_removes_bullets() -> None:
    assert strip_markdown("- 外資買超\n* 投信賣超\n+ 自營商持平") == "外資買超\n投信賣超\n自營商持平"


def test_strip_markdown_removes_numbered_list_prefix() -> None:
    assert strip_markdown("1. 開場\n2. 結尾") == "開場\n結尾"


def test_strip_markdown_keeps_link_text() -> None:
    assert strip_markdown("詳見[公開資訊觀測站](https://mops.twse.com.tw)") == "詳見公開資訊觀測站"


def test_strip_markdown_drops_code_fences() -> None:
    text = "前言\n```text\n內容\n```\n結尾"

    assert strip_markdown(text) == "前言\n內容\n結尾"


@pytest.mark.parametrize("rule", ["---", "***", "___", "- - -"])
def test_strip_markdown_drops_horizontal_rules(rule: str) -> None:
    assert strip_markdown(f"上段\n{rule}\n下段") == "上段\n下段"


def test_strip_markdown_keeps_numbers_in_sentences() -> None:
    text = "上漲 3.5% 後，第 1. 點要注意\n2330 漲了 1.5%"

    assert strip_markdown(text) == text


def test_split_title_takes_first_non_empty_line() -> None:
    draft = split_title("\n\n台積電衝高\n\n內文一\n內文二\n")

    assert draft == Draft(title="台積電衝高", body="內文一\n內文二")


@pytest.mark.parametrize("line", ["標題：台積電衝高", "標題: 台積電衝高", "标题：台積電衝高",
                                  "「台積電衝高」", "標題：「台積電衝高」"])
def test_split_title_strips_label_and_quotes(line: str) -> None:
    assert split_title(f"{line}\n內文").title == "台積電衝高"


def test_split_title_strips_english_label() -> None:
    assert split_title('Title: "TSMC rallies"\nBody').title == "TSMC rallies"


def test_split_title_collapses_blank_runs_in_body() -> None:
    assert split_title("標題\n內文一\n\n\n\n內文二").body == "內文一\n\n內文二"


@pytest.mark.parametrize("text", ["", "  \n \n"])
def test_split_title_empty_input_gives_empty_draft(text: str) -> None:
    assert split_title(text) == Draft(title="", body="")


def test_split_title_single_line_has_empty_body() -> None:
    assert split_title("只有標題") == Draft(title="只有標題", body="")


def test_normalize_zh_tw_converts_and_splits() -> None:
    draft = normalize("# 这个软件\n**这个软件**很好用", language="zh-TW")

    assert draft == Draft(title="這個軟體", body="這個軟體很好用")


def test_normalize_en_skips_opencc() -> None:
    draft = normalize("# 这个软件\n**Flows** matter", language="en")

    assert draft == Draft(title="这个软件", body="Flows matter")
