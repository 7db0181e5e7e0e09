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
