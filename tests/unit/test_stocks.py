from __future__ import annotations

import pytest

from posting._errors import UnknownStock
from posting._stocks import Stock, StockDirectory

TSMC = Stock(code="2330", name="台積電", market="TWSE", industry="半導體業")


@pytest.fixture(scope="module")
def directory() -> StockDirectory:
    return StockDirectory.load()


def test_load_builds_directory_from_bundled_tables() -> None:
    loaded = StockDirectory.load()

    assert isinstance(loaded, StockDirectory)
    assert len(loaded) > 0


def test_load_counts_over_1500_listings(directory: StockDirectory) -> None:
    assert len(directory) > 1500


@pytest.mark.parametrize("query", ["2330", " 2330 ", "２３３０", "台積電"])
def test_resolve_accepts_code_spacing_width_and_name(
    directory: StockDirectory, query: str
) -> None:
    assert directory.resolve(query) == TSMC


def test_resolve_ignores_code_case(directory: StockDirectory) -> None:
    bond_etf = directory.resolve("00679b")

    assert bond_etf.code == "00679B"
    assert bond_etf.industry == "ETF"


def test_resolve_finds_etf_by_code(directory: StockDirectory) -> None:
    etf = directory.resolve("00878")

    assert etf.name == "國泰永續高股息"
    assert etf.market == "TWSE"


def test_resolve_marks_tpex_listing(directory: StockDirectory) -> None:
    stock = directory.resolve("1240")

    assert stock == Stock(code="1240", name="茂生農經", market="TPEx", industry="農業科技業")


def test_resolve_skips_warrants(directory: StockDirectory) -> None:
    import twstock

    warrant = next(row for row in twstock.codes.values() if "權證" in row.type)

    with pytest.raises(UnknownStock):
        directory.resolve(warrant.code)


def test_resolve_unknown_code_suggests_near_codes(directory: StockDirectory) -> None:
    with pytest.raises(UnknownStock) as caught:
        directory.resolve("99999")

    assert caught.value.query == "99999"
    assert 0 < len(caught.value.suggestions) <= 5
    for suggestion in caught.value.suggestions:
        assert directory.resolve(suggestion.split(" ")[0]).label == suggestion


@pytest.mark.parametrize("query", ["台積", "台基電"])
def test_resolve_misspelled_name_suggests_match(directory: StockDirectory, query: str) -> None:
    with pytest.raises(UnknownStock) as caught:
        directory.resolve(query)

    assert "2330 台積電" in caught.value.suggestions
    assert len(caught.value.suggestions) <= 5
    assert caught.value.field == "stock"


@pytest.mark.parametrize("query", ["", "   "])
def test_resolve_blank_query_raises_without_suggestions(
    directory: StockDirectory, query: str
) -> None:
    with pytest.raises(UnknownStock) as caught:
        directory.resolve(query)

    assert caught.value.suggestions == []


def test_search_code_prefix_puts_matches_first(directory: StockDirectory) -> None:
    found = directory.search("233", limit=5)

    assert found[0] == TSMC
    assert all(s.code.startswith("233") for s in found)


def test_search_name_returns_listings_containing_it(directory: StockDirectory) -> None:
    found = directory.search("國泰", limit=20)

    assert len(found) == 20
    assert all("國泰" in s.name for s in found)


def test_search_misspelled_name_falls_back_to_fuzzy(directory: StockDirectory) -> None:
    found = directory.search("台基電", limit=5)

    assert TSMC in found


def test_search_blank_query_returns_nothing(directory: StockDirectory) -> None:
    assert directory.search("  ") == []
    assert directory.search("2330", limit=0) == []
