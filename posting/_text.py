"""From raw model text to a clean title and body, and how long a text is.

Length is counted the way a forum counts it: each CJK character or full-width mark is
one, each run of Latin letters or digits is one word, whitespace and ASCII punctuation
are free. For zh-TW text that is a character count; for English, a word count.
"""

from __future__ import annotations

import re
from functools import cache

import msgspec
import opencc

_UNIT = re.compile(
    r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60]"
    r"|[A-Za-z0-9]+(?:[.,'’%-][A-Za-z0-9]+)*"
)
_CLAUSE = re.compile(r"[^，。！？；、\n,.!?;]+[，。！？；、\n,.!?;]*")
_TITLE_LABEL = re.compile(r"^(?:標題|标题|title)\s*[:：]\s*", re.IGNORECASE)
_MD_LINE_PREFIX = re.compile(r"^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+(?!\d)|\d+\.\s+(?=\S))")
_MD_INLINE = (
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links and images keep their text
    (re.compile(r"(\*\*|__)(.+?)\1"), r"\2"),
    (re.compile(r"(?<![A-Za-z0-9_*])\*(?!\s)(.+?)(?<!\s)\*(?![A-Za-z0-9_*])"), r"\1"),
    (re.compile(r"`{1,3}([^`]*)`{1,3}"), r"\1"),
    (re.compile(r"~~(.+?)~~"), r"\1"),
)
_FENCE = re.compile(r"^\s*(```|~~~)")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")


class Draft(msgspec.Struct, kw_only=True):
    title: str
    body: str


def text_length(text: str) -> int:
    """Forum length: CJK characters plus Latin words."""
    return len(_UNIT.findall(text))


# The same rule as source text, for the review page's editor to count with (the
# pattern is also valid as a JavaScript RegExp with the `u` flag).
LENGTH_UNIT_PATTERN = _UNIT.pattern


def warm_up() -> None:
    """Load OpenCC's dictionaries now (about 0.1 s) rather than inside a generation."""
    _converters()


@cache
def _converters() -> tuple[opencc.OpenCC, opencc.OpenCC]:
    return opencc.OpenCC("s2t"), opencc.OpenCC("s2twp")


def to_taiwan_traditional(text: str) -> str:
    """Convert stray Simplified clauses with OpenCC s2twp; leave Traditional ones alone.

    s2twp also rewrites some correct Taiwan wording (台股 → 臺股, 設備 → 裝置), so only
    clauses holding a character that s2t changes on its own are converted; phrases such
    as 公布 do not count, and neither does 台, which Taiwan writes every day.
    """
    s2t, s2twp = _converters()

    def simplified(char: str) -> bool:
        return char != "台" and s2t.convert(char) != char

    def convert(match: re.Match[str]) -> str:
        clause = match.group(0)
        if s2t.convert(clause) == clause:  # the common case, one call per clause
            return clause
        return s2twp.convert(clause) if any(map(simplified, clause)) else clause

    return _CLAUSE.sub(convert, text)


def strip_markdown(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if _FENCE.match(line) or _RULE.match(line):
            continue
        line = _MD_LINE_PREFIX.sub("", line)
        for pattern, replacement in _MD_INLINE:
            line = pattern.sub(replacement, line)
        lines.append(line.rstrip())
    return "\n".join(lines)


def split_title(text: str) -> Draft:
    """The first non-empty line is the title; the rest, trimmed, is the body."""
    lines = text.strip().splitlines()
    if not lines:
        return Draft(title="", body="")
    title = _TITLE_LABEL.sub("", lines[0].strip()).strip("「」\"' ")
    body = "\n".join(lines[1:]).strip()
    body = re.sub(r"\n{3,}", "\n\n", body)
    return Draft(title=title, body=body)


def normalize(raw: str, *, language: str) -> Draft:
    """Strip markdown, convert to Taiwan Traditional where the persona writes zh-TW, split."""
    text = strip_markdown(raw)
    if language == "zh-TW":
        text = to_taiwan_traditional(text)
    return split_title(text)
