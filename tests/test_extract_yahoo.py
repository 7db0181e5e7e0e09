"""The real yfinance code path, fed Yahoo-shaped responses built from ../shared/marketdata."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from capwatch.extract import SourceUnreachable, split_factor_after
from capwatch.extract.csv import CsvSource
from capwatch.extract.yahoo import YahooSource


def test_yahoo_prices_come_back_as_traded(shared_frames, offline_yahoo, shared_dir):
    src, adapter = offline_yahoo(shared_frames)
    out = src.fetch(["NVDA", "AAPL"], date(2024, 6, 3), date(2025, 1, 31))
    assert out.problems == []
    nvda = out.prices[out.prices.ticker == "NVDA"].set_index("date")
    # Before the 2024-06-10 10-for-1 split NVDA traded at ~$1,209; Yahoo serves 120.888.
    assert nvda.loc[pd.Timestamp("2024-06-07"), "close"] == pytest.approx(1208.88)
    assert nvda.loc[pd.Timestamp("2024-06-10"), "close"] == pytest.approx(121.79)
    assert nvda.loc[pd.Timestamp("2025-01-27"), "close"] == pytest.approx(118.42)
    assert nvda.index.min() == pd.Timestamp("2024-06-03") and nvda.index.max() == pd.Timestamp(
        "2025-01-31"
    )
    # The split comes with its ratio; the chart request reached to today so later splits are known too.
    splits = out.splits.set_index(["ticker", "date"])["ratio"]
    assert splits[("NVDA", pd.Timestamp("2024-06-10"))] == 10
    # Share counts from get_shares_full, reaching back far enough to value the first day.
    shares = out.shares[out.shares.ticker == "NVDA"].set_index("as_of")["shares"]
    assert shares[pd.Timestamp("2024-05-24")] == 2_460_000_000
    assert shares.index.min() < pd.Timestamp("2024-06-03")
    assert (
        adapter.requests_seen[("NVDA", "chart")] >= 1
        and adapter.requests_seen[("NVDA", "timeseries")] == 1
    )


def test_yahoo_and_csv_sources_agree(shared_frames, offline_yahoo, shared_dir):
    src, _ = offline_yahoo(shared_frames)
    y = src.fetch(["NVDA", "TSLA"], date(2020, 1, 1), date(2023, 1, 1))
    c = CsvSource(shared_dir).fetch(["NVDA", "TSLA"], date(2020, 1, 1), date(2023, 1, 1))
    cols = ["ticker", "date", "open", "high", "low", "close", "volume"]
    yp = y.prices[cols].sort_values(["ticker", "date"], ignore_index=True)
    cp = c.prices[cols].sort_values(["ticker", "date"], ignore_index=True)
    pd.testing.assert_frame_equal(
        yp.astype({"volume": float}), cp.astype({"volume": float}), check_dtype=False, rtol=1e-9
    )


def test_unknown_ticker_is_named_and_does_not_sink_the_batch(shared_frames, offline_yahoo):
    src, _ = offline_yahoo(shared_frames)
    out = src.fetch(["NVDA", "NOSUCH", "ORCL"], date(2025, 1, 2), date(2025, 1, 31))
    assert set(out.prices.ticker) == {"NVDA", "ORCL"}
    assert [(p.ticker, p.dataset) for p in out.problems] == [("NOSUCH", "prices")]
    assert "unknown or delisted" in out.problems[0].message


def test_rate_limit_is_retried_with_backoff(shared_frames, offline_yahoo):
    src, adapter = offline_yahoo(
        shared_frames, faults={"NVDA": "rate_limit"}, fail_times=2, retries=4
    )
    out = src.fetch(["NVDA"], date(2025, 1, 2), date(2025, 1, 31))
    assert out.problems == []
    assert len(out.prices) == 20
    assert adapter.requests_seen[("NVDA", "chart")] >= 3


def test_timeouts_give_up_with_a_clear_problem(shared_frames, offline_yahoo):
    src, _ = offline_yahoo(shared_frames, faults={"NVDA": "timeout"}, retries=1)
    out = src.fetch(["NVDA", "AAPL"], date(2025, 1, 2), date(2025, 1, 31))
    assert set(out.prices.ticker) == {"AAPL"}
    assert any(p.ticker == "NVDA" and "Timeout" in p.message for p in out.problems)


def test_malformed_and_empty_responses_name_the_ticker(shared_frames, offline_yahoo):
    src, _ = offline_yahoo(shared_frames, faults={"NVDA": "malformed", "AAPL": "empty"})
    out = src.fetch(["NVDA", "AAPL", "MSFT"], date(2025, 1, 2), date(2025, 1, 31))
    assert set(out.prices.ticker) == {"MSFT"}
    msgs = {p.ticker: p.message for p in out.problems if p.dataset == "prices"}
    assert msgs["NVDA"].startswith("malformed response from Yahoo, not JSON (")
    assert msgs["AAPL"] == "Yahoo returned no prices for 2025-01-02..2025-01-31 (empty download)"


def test_no_network_says_yahoo_is_unreachable():
    import requests

    class NoNetwork(requests.adapters.BaseAdapter):
        def send(self, request, **kw):
            raise requests.exceptions.ConnectionError(
                "Failed to resolve 'query2.finance.yahoo.com' (Name or service not known)"
            )

        def close(self):
            pass

    s = requests.Session()
    s.mount("https://", NoNetwork())
    with pytest.raises(SourceUnreachable, match="capwatch demo"):
        YahooSource(session=s, retries=0).fetch(["NVDA"], date(2025, 1, 2), date(2025, 1, 31))


def test_split_factor_after():
    dates = pd.Series(pd.to_datetime(["2021-07-19", "2021-07-20", "2024-06-07", "2024-06-10"]))
    sd = np.array(["2021-07-20", "2024-06-10"], dtype="datetime64[ns]")
    assert split_factor_after(dates, sd, np.array([4.0, 10.0])).tolist() == [40.0, 10.0, 10.0, 1.0]
