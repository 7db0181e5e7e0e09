import pytest

from capwatch.symbols import InvalidSymbol, check_symbol


@pytest.mark.parametrize(
    "good,norm", [("NVDA", "NVDA"), ("brk-b", "BRK-B"), ("RDS.A", "RDS.A"), ("^GSPC", "^GSPC")]
)
def test_valid_symbols(good, norm):
    assert check_symbol(good) == norm


@pytest.mark.parametrize(
    "bad", ["NVDA'; DROP TABLE prices_daily;--", "../../etc", "", "A B", "X" * 20, "NV/DA", "A..B"]
)
def test_invalid_symbols_are_named(bad):
    with pytest.raises(InvalidSymbol, match="not a valid symbol"):
        check_symbol(bad)


def test_a_list_of_symbols_keeps_the_first_of_each_and_names_the_bad_ones():
    from capwatch.extract import split_valid_symbols

    raw = ["nvda", "AAPL", " NVDA ", "brk-b", "NV/DA", "BRK-B", "aapl", "GC=F"]
    good, bad = split_valid_symbols(raw)
    assert good == ["NVDA", "AAPL", "BRK-B", "GC=F"]
    assert [(p.ticker, p.dataset) for p in bad] == [("NV/DA", "symbol")]
    assert "not a valid symbol" in bad[0].message
