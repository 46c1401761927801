"""Directory of TWSE (上市) and TPEx (上櫃) listings, for resolving what a user typed.

The listings come from the code tables that `twstock` ships as CSV files, so building the
directory never touches the network. Only ordinary shares and ETFs are kept: warrants,
preferred shares, ETNs, TDRs and the innovation board would crowd the fuzzy matches with
names nobody posts about.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import msgspec
from rapidfuzz import fuzz, process

from posting._errors import UnknownStock

_MARKETS: Mapping[str, str] = {"上市": "TWSE", "上櫃": "TPEx"}
_KINDS = frozenset({"股票", "ETF"})
_MAX_SUGGESTIONS = 5
# Below this rapidfuzz score (0-100) a match is noise: for a two-character name it means
# only one character in common.
_FUZZY_CUTOFF = 60.0


class Stock(msgspec.Struct, frozen=True):
    """One listing. `market` is "TWSE" or "TPEx"; ETFs have industry "ETF"."""

    code: str
    name: str
    market: str
    industry: str

    @property
    def label(self) -> str:
        """`2330 台積電`: how suggestions and pickers show a listing."""
        return f"{self.code} {self.name}"


class _CodeInfo(Protocol):
    """The fields of twstock's `StockCodeInfo` rows that the directory reads."""

    @property
    def type(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def market(self) -> str: ...
    @property
    def group(self) -> str: ...


class StockDirectory:
    """Looks listings up by code or name; build it once with `load()` and share it."""

    def __init__(self, stocks: Iterable[Stock]) -> None:
        self._stocks = tuple(sorted(stocks, key=lambda s: (len(s.code), s.code)))
        self._codes = [_key(s.code) for s in self._stocks]
        self._names = [_key(s.name) for s in self._stocks]
        self._by_code = dict(zip(self._codes, self._stocks, strict=True))
        self._by_name = dict(zip(self._names, self._stocks, strict=True))

    @classmethod
    def load(cls) -> StockDirectory:
        """Build the directory from twstock's bundled tables."""
        # Imported here: twstock reads its CSV tables on import, which is the heavy part.
        import twstock

        return cls(_listings(twstock.codes))

    def __len__(self) -> int:
        return len(self._stocks)

    def resolve(self, query: str) -> Stock:
        """Return the listing whose code or exact name is `query`.

        Whitespace, full-width characters and letter case are ignored, so `２３３０`,
        ` 2330 ` and `00679b` all resolve. Anything else raises `UnknownStock` with up to
        five close matches.
        """
        key = _key(query)
        stock = self._by_code.get(key) or self._by_name.get(key)
        if stock is not None:
            return stock
        suggestions = self._fuzzy(key, _MAX_SUGGESTIONS) if key else []
        raise UnknownStock(query, [s.label for s in suggestions])

    def search(self, query: str, *, limit: int = 10) -> list[Stock]:
        """Suggest listings for an autocomplete box, best first.

        Code prefixes come first, then names containing the query, then fuzzy matches to
        fill up to `limit`. A blank query gives no suggestions.
        """
        key = _key(query)
        if not key or limit <= 0:
            return []
        found = dict.fromkeys(self._substring_matches(key))
        if len(found) < limit:
            found.update(dict.fromkeys(self._fuzzy(key, limit)))
        return list(found)[:limit]

    def _substring_matches(self, key: str) -> list[Stock]:
        by_code = [s for s, code in zip(self._stocks, self._codes) if code.startswith(key)]
        hits = [(name.find(key), len(name), s) for s, name in zip(self._stocks, self._names)]
        by_name = [s for at, _, s in sorted(hits, key=lambda h: h[:2]) if at >= 0]
        return by_code + by_name

    def _fuzzy(self, key: str, limit: int) -> list[Stock]:
        choices, scorer = self._fuzzy_field(key)
        matches = process.extract(
            key, choices, scorer=scorer, limit=limit, score_cutoff=_FUZZY_CUTOFF
        )
        return [self._stocks[index] for _, _, index in matches]

    def _fuzzy_field(self, key: str) -> tuple[list[str], Callable[..., Any]]:
        # A code-like query is matched against codes only: comparing `99999` with names
        # scores zero everywhere, and names would drown out near-miss codes.
        if key.isascii() and key.isalnum() and any(c.isdigit() for c in key):
            return self._codes, fuzz.ratio
        return self._names, fuzz.WRatio


def _key(text: str) -> str:
    """The form codes and names are compared in: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", text).strip().casefold()


def _listings(table: Mapping[str, _CodeInfo]) -> list[Stock]:
    return [_to_stock(row) for row in table.values() if _is_listed(row)]


def _is_listed(row: _CodeInfo) -> bool:
    return row.market in _MARKETS and row.type in _KINDS


def _to_stock(row: _CodeInfo) -> Stock:
    # twstock leaves `group` empty for ETFs; "ETF" reads better than a blank industry.
    industry = row.group or row.type
    return Stock(code=row.code, name=row.name, market=_MARKETS[row.market], industry=industry)
