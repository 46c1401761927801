"""Canned zh-TW forum posts about the stock a prompt names, and the token arithmetic.

The posts are stitched from sentence pools with a per-variant random generator, so the
same seed and choice index always give the same text, and neighbouring variants
differ. About one variant in five carries stray Simplified words (这个, 软件, 发布,
数据, ...) for the normalizer to fix. The text holds no figures besides the stock code,
so nothing it says can be mistaken for a real price.
"""

from __future__ import annotations

import math
import random
import re

import msgspec

SIMPLIFIED_SHARE = 0.2
DEFAULT_BODY_CHARS = 200
DEFAULT_TITLE_CHARS = 20

# A "token" for the simulator's accounting: one CJK character or mark, a short run of
# Latin letters or digits, or one whitespace character.
_TOKEN = re.compile(r"[A-Za-z]{1,4}|[0-9]{1,3}|\s|.", re.DOTALL)
_UNIT = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uff60]"
                   r"|[A-Za-z0-9]+")
_WIDE = re.compile(r"[^\x00-\x7f]")
_NAMED = re.compile(r"為\s*(?P<name>[^\s（(，,。]{1,12})\s*[（(]\s*(?P<code>[0-9]{4,6}[A-Z]?)")
_CODE = re.compile(r"(?<![0-9.])([0-9]{4})(?![0-9.])")
_TITLE_LIMIT = re.compile(r"標題[^。\n0-9]{0,6}?不超過\s*([0-9]+)\s*個?字")
_BODY_LIMIT = re.compile(r"內文[^。\n0-9]{0,6}?不超過\s*([0-9]+)\s*個?字")
_ANY_LIMIT = re.compile(r"不超過\s*([0-9]+)\s*個?字")

KNOWN_STOCKS = {
    "2330": "台積電", "2317": "鴻海", "2454": "聯發科", "2382": "廣達", "2308": "台達電",
    "2303": "聯電", "2412": "中華電", "2881": "富邦金", "2882": "國泰金", "2891": "中信金",
    "3711": "日月光投控", "2603": "長榮",
}

_TITLES = ("{n}還能抱嗎？", "{n}最近怎麼看", "{n}的心得分享", "關於{n}的一點想法",
           "{n}，我這樣看", "{n}盤後閒聊", "{n}值得長期關注嗎", "{n}近況整理")
_TITLES_WITH_CODE = ("聊聊{n}（{c}）", "{n}（{c}）觀察筆記", "{c} {n}怎麼看")
_OPENINGS = (
    "最近不少朋友在問{n}，今天簡單聊聊我的看法。",
    "{n}這陣子討論度很高，盤中也看到不少人在追。",
    "先說結論，{n}我還是偏向長期持有。",
    "每次{n}一有消息，版上就特別熱鬧。",
    "今天想跟大家分享我對{n}的觀察。",
)
_VIEWS = (
    "從基本面來看，公司的競爭力還在，產業地位也很穩。",
    "法人的動向值得留意，但不用每天盯著籌碼看。",
    "短線的波動很正常，不要被一兩天的漲跌影響心情。",
    "產業的景氣循環大家都知道，重點是公司能不能撐過低潮。",
    "管理層過去的表現一直算穩健，這是我願意持有的原因之一。",
    "營收表現還不錯，不過市場預期本來就高。",
    "新的產品線如果順利放量，後面還有想像空間。",
    "我自己是分批布局，不會一次把資金全部放進去。",
    "股價已經反映了不少好消息，追高要想清楚。",
    "技術面看起來還在整理，量能沒有明顯放大。",
    "外資的看法有分歧，代表市場對前景還沒有共識。",
    "同業的競爭越來越激烈，這點不能忽略。",
    "如果大盤修正，{n}應該也很難獨善其身。",
    "長線來看，我對{n}的產業位置還是有信心。",
    "配息政策一直算穩定，適合想要現金流的朋友。",
    "風險方面，匯率和需求變化都可能影響獲利。",
    "要注意的是，國際情勢變化很快，訊息面要多留意。",
    "估值不算便宜，資金控管比選股更重要。",
    "庫存調整如果拖太久，短期表現可能會比較悶。",
)
# Sentences whose words have common Simplified forms; a Simplified variant opens with one.
_MARKERS = (
    "這個位置我會先觀望，等拉回再考慮加碼。",
    "數據上看，毛利率維持得不錯，營運體質健康。",
    "公司最近發布的消息偏正面，但細節還要再觀察。",
    "軟體和服務的比重慢慢提高，這是我比較期待的部分。",
)
_CLOSINGS = (
    "以上只是個人看法，不是投資建議，大家自己判斷。",
    "歡迎大家一起討論，也想聽聽不同的觀點。",
    "投資還是要量力而為，不要借錢買股票。",
    "你們怎麼看{n}？留言聊聊吧。",
)
_FILLERS = ("參考就好。", "共勉。", "慢慢來。", "先這樣。", "持續追蹤。", "加油。")
_TO_SIMPLIFIED = {
    "這個": "这个", "軟體": "软件", "發布": "发布", "數據": "数据", "關注": "关注",
    "營收": "营收", "觀察": "观察", "風險": "风险", "資金": "资金", "討論": "讨论",
}


class StockRef(msgspec.Struct, frozen=True):
    name: str
    code: str = ""


class PostLimits(msgspec.Struct, frozen=True):
    body_chars: int = DEFAULT_BODY_CHARS
    title_chars: int = DEFAULT_TITLE_CHARS


def tokenize(text: str) -> list[str]:
    """Split text into the simulator's tokens; joining them gives the text back."""
    return _TOKEN.findall(text)


def text_units(text: str) -> int:
    """Forum length: CJK characters and marks, plus Latin words."""
    return len(_UNIT.findall(text))


def estimate_prompt_tokens(contents: list[str]) -> int:
    """A deterministic prompt size: wide characters count one, Latin four to a token."""
    total = 3  # the assistant turn's priming
    for text in contents:
        wide = len(_WIDE.findall(text))
        total += 4 + wide + math.ceil((len(text) - wide) / 4)
    return total


def parse_prompt(text: str) -> tuple[StockRef, PostLimits]:
    """The stock and length limits a prompt asks for, with defaults where it is silent."""
    title_limit = _TITLE_LIMIT.search(text)
    body_limit = _BODY_LIMIT.search(text)
    if body_limit is None:
        others = [int(m.group(1)) for m in _ANY_LIMIT.finditer(text)
                  if title_limit is None or m.start(1) != title_limit.start(1)]
        body_chars = max(others, default=DEFAULT_BODY_CHARS)
    else:
        body_chars = int(body_limit.group(1))
    title_chars = int(title_limit.group(1)) if title_limit else DEFAULT_TITLE_CHARS
    limits = PostLimits(body_chars=max(body_chars, 1), title_chars=max(title_chars, 1))
    return _find_stock(_ANY_LIMIT.sub("", text)), limits


def _find_stock(text: str) -> StockRef:
    named = _NAMED.search(text)
    if named:
        return StockRef(named.group("name"), named.group("code"))
    code = _CODE.search(text)
    if code:
        return StockRef(KNOWN_STOCKS.get(code.group(1), f"{code.group(1)} 這檔"), code.group(1))
    for known_code, name in KNOWN_STOCKS.items():
        if name in text:
            return StockRef(name, known_code)
    return StockRef("這檔股票")


def is_simplified_variant(variant_seed: int) -> bool:
    """Whether this variant carries stray Simplified words (about one in five)."""
    return random.Random(variant_seed * 7919 + 1).random() < SIMPLIFIED_SHARE


def compose_post(stock: StockRef, limits: PostLimits, variant_seed: int) -> str:
    """A title line naming the stock, then a body of about 70-95% of the length limit."""
    rng = random.Random(variant_seed)
    title = _title(stock, limits.title_chars, rng)
    simplified = is_simplified_variant(variant_seed)
    sentences = _body(stock.name, limits.body_chars, rng, simplified=simplified)
    lines: list[str] = [title, ""]
    for index, sentence in enumerate(sentences):
        lines[-1] += sentence
        if index < len(sentences) - 1 and rng.random() < 0.4:
            lines.append("")
    return "\n".join(lines)


def _title(stock: StockRef, max_chars: int, rng: random.Random) -> str:
    templates = _TITLES + (_TITLES_WITH_CODE if stock.code else ())
    titles = [t.format(n=stock.name, c=stock.code) for t in templates]
    fitting = [t for t in titles if len(t) <= max_chars]
    return rng.choice(fitting) if fitting else stock.name[:max_chars]


def _body(name: str, limit: int, rng: random.Random, *, simplified: bool) -> list[str]:
    def fill(template: str) -> str:
        return (_simplify(template) if simplified else template).replace("{n}", name)

    upper = max(1, math.floor(limit * 0.95))
    target = max(1, round(limit * rng.uniform(0.70, 0.95)))
    closing = fill(rng.choice(_CLOSINGS))
    middle: list[str] = []
    for _ in range(min(2 + limit // 300, 20)):  # long limits go round the pool again
        middle += rng.sample(_VIEWS, len(_VIEWS))
    opening = [rng.choice(_OPENINGS), *([rng.choice(_MARKERS)] if simplified else [])]
    candidates = [fill(t) for t in (*opening, *middle)]
    chosen: list[str] = []
    used = 0
    reserve = text_units(closing)
    for sentence in candidates:
        size = text_units(sentence)
        if used + reserve >= target:
            break
        if used + size + reserve <= upper:
            chosen.append(sentence)
            used += size
    fillers = [fill(t) for t in rng.sample(_FILLERS, 2)]  # at most two, before the closing
    for filler in fillers:
        size = text_units(filler)
        if used + reserve < target and used + size + reserve <= upper:
            chosen.append(filler)
            used += size
    if used + reserve <= upper:
        chosen.append(closing)
        used += reserve
    if not chosen:
        chosen.append(closing[:upper])
    return chosen


def _simplify(sentence: str) -> str:
    for traditional, simplified in _TO_SIMPLIFIED.items():
        sentence = sentence.replace(traditional, simplified)
    return sentence
