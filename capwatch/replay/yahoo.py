"""Yahoo-shaped HTTP responses served to the real yfinance code path, without a network.

yfinance hard-codes https URLs (fc.yahoo.com, query1/query2.finance.yahoo.com), so a local HTTP
server cannot stand in for Yahoo. Instead, a ``requests.Session`` with a transport adapter is passed
to yfinance as ``session=``; every request yfinance makes is answered here from in-memory frames.

Used by the ``replay:`` source: ``capwatch demo`` (generated market) and the tests (frames built at
test time from ``../shared/marketdata``). Faults (empty, malformed, HTTP errors, rate limits) can be injected per
ticker to exercise the error paths.
"""

from __future__ import annotations

import json
import threading
import time as _time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import requests
from requests.adapters import BaseAdapter

from capwatch.schema import CSV_DIVIDENDS, CSV_PRICES, CSV_SHARES, CSV_SPLITS

NEW_YORK = ZoneInfo("America/New_York")

# Fault names accepted by ``OfflineYahoo.faults``: ticker -> fault.
FAULTS = (
    "empty",
    "malformed",
    "http500",
    "rate_limit",
    "timeout",
    "nan_rows",
    "negative",
    "duplicate_rows",
    "no_shares",
    "other_symbol",
)


@dataclass
class MarketFrames:
    """One market as Yahoo would serve it.

    prices: date, ticker, open, high, low, close, volume -- on Yahoo's basis, i.e. split-adjusted
        for every split in ``splits`` (what the chart endpoint returns on the download day).
    splits: ticker, date, ratio.
    dividends: ticker, date, dividend (optional).
    shares: ticker, as_of, shares -- the ``shares_out`` fundamentals time series, as-is.
    """

    prices: pd.DataFrame
    splits: pd.DataFrame
    shares: pd.DataFrame
    dividends: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["ticker", "date", "dividend"])
    )

    def __post_init__(self) -> None:
        self._by_ticker = {t: g.sort_values("date") for t, g in self.prices.groupby("ticker")}
        self._splits = {t: g for t, g in self.splits.groupby("ticker")}
        self._divs = {t: g for t, g in self.dividends.groupby("ticker")}
        self._shares = {
            t: g.sort_values("as_of", kind="stable") for t, g in self.shares.groupby("ticker")
        }

    @property
    def tickers(self) -> list[str]:
        return sorted(self._by_ticker)


def _open_ts(d: date) -> int:
    """Epoch seconds of the 09:30 New York open on ``d``: Yahoo stamps daily bars so."""
    return int(datetime.combine(d, time(9, 30), NEW_YORK).timestamp())


def _to_dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.date


def _clean(values: np.ndarray) -> list:
    """JSON list with NaN as null, like Yahoo."""
    return [
        None if (v is None or (isinstance(v, float) and np.isnan(v))) else v
        for v in values.tolist()
    ]


def _chart_meta(ticker: str, first: date | None) -> dict:
    now = int(datetime.now(UTC).timestamp())
    period = {"timezone": "EST", "start": now, "end": now, "gmtoffset": -18000}
    return {
        "currency": "USD",
        "symbol": ticker,
        "exchangeName": "NMS",
        "fullExchangeName": "NasdaqGS",
        "instrumentType": "EQUITY",
        "firstTradeDate": _open_ts(first) if first else None,
        "regularMarketTime": now,
        "hasPrePostMarketData": True,
        "gmtoffset": -18000,
        "timezone": "EST",
        "exchangeTimezoneName": "America/New_York",
        "priceHint": 2,
        "currentTradingPeriod": {"pre": period, "regular": period, "post": period},
        "dataGranularity": "1d",
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }


def _monthly(g: pd.DataFrame, ts: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Daily bars as Yahoo's ``interval=1mo`` bars: one per calendar month, stamped at its start."""
    month = pd.to_datetime(g["date"]).dt.to_period("M")
    out = g.groupby(month.to_numpy(), sort=True).agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
    )
    stamps = np.array(
        [
            int(datetime.combine(p.start_time.date(), time(0, 0), NEW_YORK).timestamp())
            for p in out.index
        ]
    )
    return out.reset_index(drop=True), stamps


def chart_json(
    frames: MarketFrames,
    ticker: str,
    period1: int | None,
    period2: int | None,
    interval: str = "1d",
) -> dict:
    """The v8 chart response for one ticker and range (events=div,splits): daily bars, or
    monthly ones for ``interval=1mo`` (events keep their own dates)."""
    g = frames._by_ticker.get(ticker)
    if g is None:
        return {
            "chart": {
                "result": None,
                "error": {
                    "code": "Not Found",
                    "description": "No data found, symbol may be delisted",
                },
            }
        }
    days = _to_dates(g["date"])
    ts = np.array([_open_ts(d) for d in days])
    lo = period1 if period1 is not None else -(2**62)
    hi = period2 if period2 is not None else 2**62
    keep = (ts >= lo) & (ts < hi)
    g, ts = g[keep], ts[keep]
    meta = _chart_meta(ticker, days.iloc[0] if len(days) else None)
    if interval == "1mo" and len(g):
        g, ts = _monthly(g, ts)
        meta["dataGranularity"] = "1mo"
    elif interval != "1d":
        raise ValueError(f"offline Yahoo serves interval 1d or 1mo, not {interval!r}")
    result: dict = {"meta": meta}
    if len(g):
        result["timestamp"] = ts.tolist()
        events: dict = {}
        sp = frames._splits.get(ticker)
        if sp is not None:
            sts = np.array([_open_ts(d) for d in _to_dates(sp["date"])])
            in_range = (sts >= lo) & (sts < hi)
            events["splits"] = {
                str(s): {
                    "date": int(s),
                    "numerator": float(r),
                    "denominator": 1.0,
                    "splitRatio": f"{r:g}:1",
                }
                for s, r in zip(sts[in_range], sp["ratio"].to_numpy()[in_range], strict=False)
            }
        dv = frames._divs.get(ticker)
        if dv is not None:
            dts = np.array([_open_ts(d) for d in _to_dates(dv["date"])])
            in_range = (dts >= lo) & (dts < hi)
            events["dividends"] = {
                str(s): {"amount": float(a), "date": int(s)}
                for s, a in zip(dts[in_range], dv["dividend"].to_numpy()[in_range], strict=False)
            }
        if events:
            result["events"] = events
        quote = {c: _clean(g[c].to_numpy(dtype=float)) for c in ("open", "high", "low", "close")}
        quote["volume"] = _clean(g["volume"].to_numpy(dtype=float))
        quote["volume"] = [None if v is None else int(v) for v in quote["volume"]]
        result["indicators"] = {"quote": [quote], "adjclose": [{"adjclose": list(quote["close"])}]}
    else:
        result["indicators"] = {"quote": [{}]}
    return {"chart": {"result": [result], "error": None}}


def timeseries_json(frames: MarketFrames, ticker: str, period1: int, period2: int) -> dict:
    """The fundamentals-timeseries response for ``type=shares_out`` (what get_shares_full reads)."""
    g = frames._shares.get(ticker)
    meta = {"symbol": [ticker], "type": ["shares_out"]}
    if g is None or g.empty:
        return {"timeseries": {"result": [{"meta": meta}], "error": None}}
    ts = np.array(
        [int(datetime.combine(d, time(0, 0), UTC).timestamp()) for d in _to_dates(g["as_of"])]
    )
    keep = (ts >= period1) & (ts <= period2)
    if not keep.any():
        return {"timeseries": {"result": [{"meta": meta}], "error": None}}
    return {
        "timeseries": {
            "result": [
                {
                    "meta": meta,
                    "timestamp": ts[keep].tolist(),
                    "shares_out": [int(v) for v in g["shares"].to_numpy()[keep]],
                }
            ],
            "error": None,
        }
    }


class OfflineYahoo(BaseAdapter):
    """A transport adapter that answers yfinance's requests from ``MarketFrames``.

    ``faults`` maps a ticker to one of ``FAULTS``; ``fail_times`` lets a fault clear after N hits
    (to test retries). ``requests_seen`` counts requests per ticker and endpoint.
    """

    def __init__(
        self,
        frames: MarketFrames,
        faults: dict[str, str] | None = None,
        fail_times: int | None = None,
        latency: float = 0.0,
        max_rate: float | None = None,
    ):
        super().__init__()
        self.frames = frames
        # Like Yahoo under load: more than ``max_rate`` data requests in any one second are
        # answered 429 Too Many Requests (``rejected`` counts them).
        self.max_rate = max_rate
        self.rejected = 0
        self._recent: deque[float] = deque()
        self.latency = latency  # seconds per data request: a slow network, for resume tests
        self.faults = dict(faults or {})
        self.fail_times = fail_times
        self.requests_seen: Counter[tuple[str, str]] = Counter()
        self.ranges_seen: list[tuple[str, date, date, str]] = []
        self._lock = threading.Lock()

    def _respond(
        self, request: requests.PreparedRequest, status: int, body: bytes | str, ctype: str
    ) -> requests.Response:
        resp = requests.Response()
        resp.status_code = status
        resp._content = body.encode() if isinstance(body, str) else body
        resp.headers["Content-Type"] = ctype
        resp.url = request.url or ""
        resp.request = request
        resp.encoding = "utf-8"
        resp.reason = "OK" if status < 400 else "Error"
        return resp

    def _over_rate(self) -> bool:
        """Would this request be one too many in the last second? (call under the lock)"""
        now = _time.monotonic()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.max_rate:
            return True
        self._recent.append(now)
        return False

    def _fault(self, ticker: str, endpoint: str) -> str | None:
        fault = self.faults.get(ticker)
        if fault is None:
            return None
        if self.fail_times is not None and self.requests_seen[(ticker, endpoint)] > self.fail_times:
            return None
        return fault

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        url = urlparse(request.url or "")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.netloc == "fc.yahoo.com":
            resp = self._respond(request, 404, "", "text/html")
            resp.headers["Set-Cookie"] = "A3=offline; Domain=.yahoo.com; Path=/"
            return resp
        if url.path.endswith("/v1/test/getcrumb"):
            return self._respond(request, 200, "offline-crumb", "text/plain")
        if "/v8/finance/chart/" in url.path:
            ticker = url.path.rsplit("/", 1)[1]
            endpoint = "chart"
        elif "/fundamentals-timeseries/" in url.path:
            ticker = url.path.rsplit("/", 1)[1]
            endpoint = "timeseries"
        elif "/quoteSummary/" in url.path:  # yfinance's fallback when the chart gives no timezone
            ticker = url.path.rsplit("/", 1)[1]
            body = {
                "quoteSummary": {
                    "result": None,
                    "error": {
                        "code": "Not Found",
                        "description": f"Quote not found for symbol: {ticker}",
                    },
                }
            }
            return self._respond(request, 404, json.dumps(body), "application/json")
        else:
            return self._respond(request, 404, "{}", "application/json")
        with self._lock:
            if self.max_rate and self._over_rate():
                self.rejected += 1
                return self._respond(request, 429, "Too Many Requests", "text/plain")
            self.requests_seen[(ticker, endpoint)] += 1
            fault = self._fault(ticker, endpoint)
        if self.latency:
            _time.sleep(self.latency)
        if fault == "timeout":
            raise requests.exceptions.ReadTimeout(f"offline Yahoo: simulated timeout for {ticker}")
        if fault == "rate_limit":
            return self._respond(request, 429, "Too Many Requests", "text/plain")
        if fault == "http500":
            return self._respond(request, 500, "Internal Server Error", "text/plain")
        if fault == "malformed" and endpoint == "chart":
            return self._respond(
                request, 200, '{"chart": {"result": [{"meta": ', "application/json"
            )
        if endpoint == "timeseries":
            if fault == "no_shares":
                body = {
                    "timeseries": {
                        "result": [{"meta": {"symbol": [ticker], "type": ["shares_out"]}}],
                        "error": None,
                    }
                }
            else:
                body = timeseries_json(
                    self.frames,
                    ticker,
                    int(query.get("period1", 0)),
                    int(query.get("period2", 2**62)),
                )
            return self._respond(request, 200, json.dumps(body), "application/json")
        p1 = int(query["period1"]) if "period1" in query else None
        p2 = int(query["period2"]) if "period2" in query else None
        if p1 is not None:
            with self._lock:  # what each chart request asked for: ticker, from, to, interval
                self.ranges_seen.append(
                    (
                        ticker,
                        datetime.fromtimestamp(p1, UTC).date(),
                        datetime.fromtimestamp(p2 or 0, UTC).date(),
                        query.get("interval", "1d"),
                    )
                )
        if query.get("range") == "1d":  # yfinance asks this to learn the ticker's timezone
            p1 = p2 = 0
        if (
            fault == "other_symbol"
        ):  # the chart of another listed symbol, as Yahoo would describe it
            ticker = next(t for t in self.frames.tickers if t != ticker)
        body = chart_json(self.frames, ticker, p1, p2, query.get("interval", "1d"))
        if body["chart"]["result"] is None:
            return self._respond(request, 404, json.dumps(body), "application/json")
        if fault == "empty":
            body["chart"]["result"][0].pop("timestamp", None)
            body["chart"]["result"][0]["indicators"] = {"quote": [{}]}
        elif fault in ("nan_rows", "negative"):
            # Every third bar: missing values, or a negative close.
            q = body["chart"]["result"][0]["indicators"].get("quote", [{}])[0]
            for col in ("open", "high", "low", "close") if fault == "nan_rows" else ("close",):
                if col in q:
                    q[col] = [
                        (None if fault == "nan_rows" else -v) if i % 3 == 0 and v is not None else v
                        for i, v in enumerate(q[col])
                    ]
        elif fault == "duplicate_rows":
            # The first bar sent twice, the copy with another close.
            r = body["chart"]["result"][0]
            if r.get("timestamp"):
                r["timestamp"].insert(1, r["timestamp"][0])
                q = r["indicators"]["quote"][0]
                for col in q:
                    q[col].insert(
                        1,
                        q[col][0] * (1.5 if col == "close" else 1)
                        if q[col][0] is not None
                        else None,
                    )
                r["indicators"]["adjclose"][0]["adjclose"].insert(1, q["close"][1])
        return self._respond(request, 200, json.dumps(body), "application/json")

    def close(self) -> None:
        pass


def frames_from_csv(directory: str | Path) -> MarketFrames:
    """Yahoo's view of a market laid out as ``../shared/marketdata`` (prices already on Yahoo's basis)."""
    d = Path(directory)
    prices = CSV_PRICES.read(d)
    prices["date"] = pd.to_datetime(prices["date"])
    splits = CSV_SPLITS.read(d)[["ticker", "date", "ratio"]]
    splits["date"] = pd.to_datetime(splits["date"])
    shares = CSV_SHARES.read(d)
    # Yahoo's shares_out series is one company-level figure per date.
    shares = shares[shares["share_class"].fillna("all") == "all"][["ticker", "as_of", "shares"]]
    shares["as_of"] = pd.to_datetime(shares["as_of"])
    dividends = CSV_DIVIDENDS.read(d)[["ticker", "date", "dividend"]]
    dividends["date"] = pd.to_datetime(dividends["date"])
    return MarketFrames(prices=prices, splits=splits, shares=shares, dividends=dividends)
