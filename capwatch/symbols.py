"""The symbol rule: every ticker is checked here before any I/O or SQL touches it."""

from __future__ import annotations

import re

# Yahoo spellings: letters and digits, with '.', '-', '=' or '^' inside (BRK-B, RDS.A, ^GSPC).
SYMBOL_PATTERN = r"^\^?[A-Z0-9][A-Z0-9.\-=]{0,14}$"
_SYMBOL = re.compile(SYMBOL_PATTERN)


class InvalidSymbol(ValueError):
    """A ticker symbol that capwatch refuses to use."""


def check_symbol(raw: str) -> str:
    """Return the normalised symbol, or raise ``InvalidSymbol`` naming it and the rule."""
    if not isinstance(raw, str):
        raise InvalidSymbol(f"ticker {raw!r}: not a string")
    symbol = raw.strip().upper()
    if not _SYMBOL.fullmatch(symbol) or ".." in symbol:
        raise InvalidSymbol(
            f"ticker {raw!r}: not a valid symbol (1-16 of A-Z 0-9 . - = ^, e.g. NVDA, BRK-B); rejected before any request"
        )
    return symbol
