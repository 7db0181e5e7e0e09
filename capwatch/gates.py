"""Great Expectations suites: the raw gate's per-batch suites and the model gate's suites.

GX is heavy to import (seconds): it is imported once per process, on first use, with progress bars
off. Every suite is code here, one obvious place; each expectation carries the plain reason a
quarantined row or a failed gate reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from capwatch.symbols import SYMBOL_PATTERN

_lock = threading.Lock()
_state: dict = {}

# Upper bounds that only a broken value passes: no listed share trades above $10M, no split is 10,000-for-1.
MAX_PRICE = 1e7
MAX_SPLIT_RATIO = 1e4


def _gx():
    """(gx, gxe, batch_definition), created once per process."""
    with _lock:
        if not _state:
            import logging

            import great_expectations as gx
            import great_expectations.expectations as gxe
            from great_expectations.data_context.types.base import ProgressBarsConfig

            logging.getLogger("great_expectations").setLevel(logging.WARNING)
            ctx = gx.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
            asset = ctx.data_sources.add_pandas("capwatch").add_dataframe_asset("frame")
            _state.update(gx=gx, gxe=gxe, ctx=ctx, batch=asset.add_batch_definition_whole_dataframe("whole"), suites={})
        return _state["gx"], _state["gxe"], _state["batch"]


def warm_up() -> None:
    """Import GX ahead of need (e.g. in a thread while Prefect starts)."""
    _gx()


@dataclass
class Check:
    """One expectation and the reason a failing row or gate reports."""

    reason: str
    build: Callable  # gxe -> Expectation


@dataclass
class GateResult:
    suite: str
    rows: int
    evaluated: int
    failures: list[tuple[str, list]] = field(default_factory=list)  # (reason, failing row index labels)
    examples: list[str] = field(default_factory=list)  # a few failing rows, as text

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failed_rows(self) -> int:
        return len({i for _, idx in self.failures for i in idx})


def _price_checks(today: date, sessions: list) -> list[Check]:
    checks = [
        Check("ticker missing", lambda x: x.ExpectColumnValuesToNotBeNull(column="ticker")),
        Check("ticker is not a valid symbol", lambda x: x.ExpectColumnValuesToMatchRegex(column="ticker", regex=SYMBOL_PATTERN)),
        Check("date missing or not a date", lambda x: x.ExpectColumnValuesToNotBeNull(column="date")),
        Check("date in the future", lambda x: x.ExpectColumnValuesToBeBetween(column="date", max_value=pd.Timestamp(today))),
        Check("date is not an NYSE trading day", lambda x: x.ExpectColumnValuesToBeInSet(column="date", value_set=sessions)),
    ]
    for c in ("open", "high", "low", "close"):
        checks.append(Check(f"{c} missing or not a number", lambda x, c=c: x.ExpectColumnValuesToNotBeNull(column=c)))
        checks.append(Check(f"{c} not a finite price > 0", lambda x, c=c: x.ExpectColumnValuesToBeBetween(
            column=c, min_value=0, strict_min=True, max_value=MAX_PRICE)))
    checks += [
        Check("high below open", lambda x: x.ExpectColumnPairValuesAToBeGreaterThanB(column_A="high", column_B="open", or_equal=True, ignore_row_if="either_value_is_missing")),
        Check("high below close", lambda x: x.ExpectColumnPairValuesAToBeGreaterThanB(column_A="high", column_B="close", or_equal=True, ignore_row_if="either_value_is_missing")),
        Check("low above open", lambda x: x.ExpectColumnPairValuesAToBeGreaterThanB(column_A="open", column_B="low", or_equal=True, ignore_row_if="either_value_is_missing")),
        Check("low above close", lambda x: x.ExpectColumnPairValuesAToBeGreaterThanB(column_A="close", column_B="low", or_equal=True, ignore_row_if="either_value_is_missing")),
        Check("volume missing or not a number", lambda x: x.ExpectColumnValuesToNotBeNull(column="volume")),
        Check("volume negative", lambda x: x.ExpectColumnValuesToBeBetween(column="volume", min_value=0, max_value=1e15)),
        Check("duplicate (ticker, date) with different values", lambda x: x.ExpectCompoundColumnsToBeUnique(column_list=["ticker", "date"])),
    ]
    return checks


def _keyed_checks(key: list[str], date_col: str, value_col: str, upper: float, today: date) -> list[Check]:
    return [
        Check("ticker missing", lambda x: x.ExpectColumnValuesToNotBeNull(column="ticker")),
        Check("ticker is not a valid symbol", lambda x: x.ExpectColumnValuesToMatchRegex(column="ticker", regex=SYMBOL_PATTERN)),
        Check(f"{date_col} missing or not a date", lambda x: x.ExpectColumnValuesToNotBeNull(column=date_col)),
        Check(f"{date_col} in the future", lambda x: x.ExpectColumnValuesToBeBetween(column=date_col, max_value=pd.Timestamp(today))),
        Check(f"{value_col} missing or not a number", lambda x: x.ExpectColumnValuesToNotBeNull(column=value_col)),
        Check(f"{value_col} not finite or <= 0", lambda x: x.ExpectColumnValuesToBeBetween(
            column=value_col, min_value=0, strict_min=True, max_value=upper)),
        Check(f"duplicate ({', '.join(key)}) with different values", lambda x: x.ExpectCompoundColumnsToBeUnique(column_list=key)),
    ]


def raw_checks(dataset: str, today: date, sessions: list | None = None) -> list[Check]:
    """The raw gate's checks for one dataset of a batch."""
    if dataset == "prices_daily":
        return _price_checks(today, sessions or [])
    if dataset == "splits":
        # Splits may be announced ahead of their ex-date: no 'future' rule beyond a year.
        return _keyed_checks(["ticker", "date"], "date", "ratio", MAX_SPLIT_RATIO, date(today.year + 1, 12, 31))
    if dataset == "dividends":
        return _keyed_checks(["ticker", "date"], "date", "dividend", MAX_PRICE, date(today.year + 1, 12, 31))
    if dataset == "shares_outstanding":
        # Only what cannot be stored is refused here; implausible counts are the share model's call.
        return _keyed_checks(["ticker", "share_class", "as_of"], "as_of", "shares", 9e18, today)
    raise ValueError(f"no raw suite for {dataset}")


def run_checks(suite_name: str, frame: pd.DataFrame, checks: list[Check]) -> GateResult:
    """Validate ``frame`` with one GX suite; failures carry the failing rows' index labels."""
    gx, gxe, batch_definition = _gx()
    result = GateResult(suite=suite_name, rows=len(frame), evaluated=len(checks))
    if frame.empty:
        return result
    suite = gx.ExpectationSuite(name=suite_name)
    order = {}
    for n, check in enumerate(checks):
        exp = check.build(gxe)
        exp.meta = {"reason": check.reason}  # GX reorders results; the reason travels with each one
        suite.add_expectation(exp)
        order[check.reason] = n
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    validation = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    for res in sorted(validation.results, key=lambda r: order[r.expectation_config.meta["reason"]]):
        if not res.success:
            idx = res.result.get("unexpected_index_list") or []
            idx = [i if not isinstance(i, dict) else next(iter(i.values())) for i in idx]
            result.failures.append((res.expectation_config.meta["reason"], idx))
            sample = frame.loc[idx[:3]] if idx else frame.head(3)
            result.examples += [", ".join(f"{k}={v}" for k, v in row.items()) for _, row in sample.iterrows()]
    return result


def model_checks_frames(con) -> list[tuple[str, pd.DataFrame, list[Check]]]:
    """The model gate's suites, on frames read from the freshly built (uncommitted) models."""
    caps = con.execute("select ticker, date, market_cap from market_cap_daily").df()
    company = con.execute("select company, date, market_cap from company_market_cap_daily").df()
    # Audits return the offending rows (zero rows = pass).
    # A company's cap moving > 60 % while its traded price moved less than half as much: a share
    # count or a split that is wrong (a real split moves the traded price, and not the cap).
    jumps = con.execute("""
        select m.company, m.date, m.change_pct, 100 * (p.close / q.close - 1) as traded_price_pct
        from company_daily_moves m
        join prices_daily p on p.ticker = m.ticker and p.date = m.date
        join prices_daily q on q.ticker = m.ticker and q.date = m.prev_date
        where abs(m.change_pct) > 60 and abs(traded_price_pct) < abs(m.change_pct) / 2
    """).df()
    inconsistent = con.execute("""
        select d.ticker, d.date
        from daily_moves d
        left join market_cap_daily c on c.ticker = d.ticker and c.date = d.date
        left join market_cap_daily p on p.ticker = d.ticker and p.date = d.prev_date
        where c.market_cap is distinct from d.market_cap or p.market_cap is distinct from d.prev_market_cap
    """).df()
    positive = lambda col: (lambda x: x.ExpectColumnValuesToBeBetween(column=col, min_value=0, strict_min=True))
    return [
        ("model_market_cap_daily", caps, [
            Check("market_cap_daily has duplicate (ticker, date)", lambda x: x.ExpectCompoundColumnsToBeUnique(column_list=["ticker", "date"])),
            Check("market_cap_daily has a market cap <= 0", positive("market_cap")),
        ]),
        ("model_company_market_cap_daily", company, [
            Check("company_market_cap_daily has duplicate (company, date)", lambda x: x.ExpectCompoundColumnsToBeUnique(column_list=["company", "date"])),
            Check("company_market_cap_daily has a market cap <= 0", positive("market_cap")),
        ]),
        ("model_unexplained_jumps", jumps, [
            Check("company market cap moved > 60 % in a day while its price did not", lambda x: x.ExpectTableRowCountToEqual(value=0)),
        ]),
        ("model_daily_moves_consistent", inconsistent, [
            Check("daily_moves disagrees with market_cap_daily", lambda x: x.ExpectTableRowCountToEqual(value=0)),
        ]),
    ]


class ModelGateFailed(RuntimeError):
    """A model gate failed: the new models were not published."""


def model_gate(con) -> list[GateResult]:
    """Run every model suite on the built, not yet committed, models."""
    return [run_checks(name, frame, checks) for name, frame, checks in model_checks_frames(con)]


def describe_failures(results: list[GateResult]) -> str:
    lines = []
    for r in results:
        for reason, _idx in r.failures:
            lines.append(f"{r.suite}: {reason}" + (f" (e.g. {'; '.join(r.examples[:3])})" if r.examples else ""))
    return "\n".join(lines)
