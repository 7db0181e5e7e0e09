"""What yfinance's ``repair=True`` costs and changes, on Yahoo-shaped responses served offline.

    uv run --with scikit-learn python -m bench.repair

repair needs scikit-learn, which capwatch does not lock: run this with it added for the one command.
Ten tickers, 18 months of daily bars; one has a 100x day (pence vs pounds), one a unit change that
stays (a level shift). Prints the time, the requests the offline Yahoo answered, and what repair
did to those two cases. The figures are written down in bench/RESULTS.md.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from datetime import date

import numpy as np
import pandas as pd


def main() -> None:
    import yfinance as yf

    from capwatch.calendar import trading_days
    from capwatch.replay import offline_session
    from capwatch.replay.yahoo import MarketFrames, OfflineYahoo

    warnings.filterwarnings("ignore")
    try:
        t0 = time.perf_counter()
        import sklearn.linear_model  # noqa: F401 - what repair imports

        sk_import = time.perf_counter() - t0
    except ImportError:
        raise SystemExit(
            "scikit-learn is not installed: run `uv run --with scikit-learn python -m bench.repair`"
        ) from None
    yf.set_tz_cache_location(tempfile.mkdtemp())
    days = list(trading_days(date(2025, 1, 2), date(2026, 6, 30)))

    def walk(seed: int) -> list[float]:
        rng = np.random.default_rng(seed)
        return list(np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days)))), 4))

    closes = {f"T{i}": walk(i) for i in range(10)}
    closes["T0"][200] *= 100  # a 100x day
    closes["T1"][150:] = [c / 100 for c in closes["T1"][150:]]  # a unit change that stays
    rows = [
        (t, d, c, c * 1.01, c * 0.99, c, 1_000_000)
        for t, v in closes.items()
        for d, c in zip(days, v, strict=True)
    ]
    frames = MarketFrames(
        prices=pd.DataFrame(
            rows, columns=["ticker", "date", "open", "high", "low", "close", "volume"]
        ),
        splits=pd.DataFrame(columns=["ticker", "date", "ratio"]),
        shares=pd.DataFrame(
            {"ticker": list(closes), "as_of": pd.Timestamp("2024-11-01"), "shares": 10**9}
        ),
    )
    print(f"scikit-learn import: {sk_import:.2f} s")
    for repair in (False, True, False, True):  # twice each: the second pass has warm caches
        adapter = OfflineYahoo(frames)
        session = offline_session(adapter)
        yf.data.YfData.cache_get.cache_clear()
        t0 = time.perf_counter()
        out = {
            t: yf.Ticker(t, session=session).history(
                start="2025-01-02", end="2026-07-01", auto_adjust=False, repair=repair
            )
            for t in closes
        }
        took = time.perf_counter() - t0
        glitch = float(out["T0"]["Close"].iloc[200])
        before_shift = float(out["T1"]["Close"].iloc[149])
        print(
            f"repair={repair!s:<5} {took:5.2f} s for {len(closes)} tickers, {sum(adapter.requests_seen.values())} "
            f"requests; 100x day close {glitch:,.2f} (true {closes['T0'][200] / 100:,.2f}); close before the "
            f"level shift {before_shift:,.2f} (served {closes['T1'][149]:,.2f})"
        )


if __name__ == "__main__":
    main()
