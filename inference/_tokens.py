"""Token arithmetic without a tokenizer: budgets and estimates from characters.

No tokenizer is downloaded at run time (tiktoken would fetch its tables), so each model
card carries how many tokens one CJK character costs. Latin text is counted at about
four characters a token, which is close for every BPE vocabulary we price.
"""

from __future__ import annotations

import math
import re

from config import ModelCard

_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_LATIN_CHARS_PER_TOKEN = 4.0


def estimate_tokens(text: str, card: ModelCard) -> int:
    """A generous estimate of how many tokens `text` costs with the card's model."""
    cjk = len(_CJK.findall(text))
    other = len(text) - cjk
    return math.ceil(cjk * card.tokens_per_char + other / _LATIN_CHARS_PER_TOKEN)


def max_tokens_for(
    max_words: int, card: ModelCard, *, tolerance: float, title_allowance: int
) -> int:
    """The completion budget for a post of `max_words` characters plus its title line.

    It leaves room for the tolerated overshoot, so a post that obeys the length rule is
    never cut off, while one that rambles stops near the limit instead of at 2000.
    """
    body = math.ceil(max_words * (1 + tolerance) * card.tokens_per_char)
    return body + title_allowance
