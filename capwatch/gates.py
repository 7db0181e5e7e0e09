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


def _price_checks(today: date) -> list[Check]:
    checks = [
        Check("ticker missing", lambda x: x.ExpectColumnValuesToNotBeNull(column="ticker")),
        Check("ticker is not a valid symbol", lambda x: x.ExpectColumnValuesToMatchRegex(column="ticker", regex=SYMBOL_PATTERN)),
        Check("date missing or not a date", lambda x: x.ExpectColumnValuesToNotBeNull(column="date")),
        Check("date in the future", lambda x: x.ExpectColumnValuesToBeBetween(column="date", max_value=pd.Timestamp(today))),
        # Membership in ~4,000 sessions is computed once (validate._coerce adds on_trading_day):
        # a GX value set of Timestamps that size costs more than the rest of the suite together.
        Check("date is not an NYSE trading day", lambda x: x.ExpectColumnValuesToBeInSet(column="on_trading_day", value_set=[True])),
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


def raw_checks(dataset: str, today: date) -> list[Check]:
    """The raw gate's checks for one dataset of a batch."""
    if dataset == "prices_daily":
        return _price_checks(today)
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
    from great_expectations.validator.v1_validator import Validator

    result = GateResult(suite=suite_name, rows=len(frame), evaluated=len(checks))
    if frame.empty:
        return result

    def validate(selected: list[Check], result_format: str):
        suite = gx.ExpectationSuite(name=suite_name)
        for check in selected:
            exp = check.build(gxe)
            exp.meta = {"reason": check.reason}  # GX reorders results; the reason travels with each one
            suite.add_expectation(exp)
        # The validator behind Batch.validate and ValidationDefinition.run, used directly: each
        # batch fetch fingerprints the whole frame (an md5 of every cell, ~0.5 s per 3M rows), and
        # get_batch() followed by Batch.validate() fetches it twice.
        validator = Validator(batch_definition=batch_definition, batch_parameters={"dataframe": frame},
                              result_format={"result_format": result_format})
        return validator.validate_expectation_suite(suite).results

    # A pass/fail pass first (cheap); the failing rows are only collected for what failed.
    failed = {r.expectation_config.meta["reason"] for r in validate(checks, "BOOLEAN_ONLY") if not r.success}
    if not failed:
        return result
    order = {c.reason: n for n, c in enumerate(checks)}
    for res in sorted(validate([c for c in checks if c.reason in failed], "COMPLETE"),
                      key=lambda r: order[r.expectation_config.meta["reason"]]):
        if not res.success:
            idx = res.result.get("unexpected_index_list") or []
            idx = [i if not isinstance(i, dict) else next(iter(i.values())) for i in idx]
            result.failures.append((res.expectation_config.meta["reason"], idx))
            sample = frame.loc[idx[:3]] if idx else frame.head(3)
            result.examples += [", ".join(f"{k}={v}" for k, v in row.items()) for _, row in sample.iterrows()]
    return result


# The model gate's audits: each query returns the offending rows (zero rows = pass), SQLMesh-style;
# the GX suite then expects no row of each audit. Reading whole model tables into pandas would cost
# more than building them.
def _cap_table_audits(table: str, key: str) -> dict[str, str]:
    """What every market-cap table must hold: one row per (key, date), caps > 0."""
    return {
        f"{table} has duplicate ({key}, date)": f"""
        select {key} || ' ' || date as key, count(*)::varchar as detail
        from {table} where date >= __since__ group by {key}, date having count(*) > 1""",
        f"{table} has a market cap <= 0": f"""
        select {key} || ' ' || date as key, market_cap::varchar as detail
        from {table} where date >= __since__ and (market_cap <= 0 or isnan(market_cap))""",
    }


MODEL_AUDITS = {
    **_cap_table_audits("market_cap_daily", "ticker"),
    **_cap_table_audits("company_market_cap_daily", "company"),
    # A cap moving > 60 % while the traded price moved less than half as much: a wrong share count
    # or split (a real split moves the traded price, and not the cap).
    "company market cap moved > 60 % in a day while its price did not": """
        select m.company || ' ' || m.date as key,
               printf('cap %+.1f%%, traded price %+.1f%%', m.change_pct, 100 * (p.close / q.close - 1)) as detail
        from company_daily_moves m
        join prices_daily p on p.ticker = m.ticker and p.date = m.date
        join prices_daily q on q.ticker = m.ticker and q.date = m.prev_date
        where m.date >= __since__ and abs(m.change_pct) > 60 and abs(100 * (p.close / q.close - 1)) < abs(m.change_pct) / 2""",
    "daily_moves disagrees with market_cap_daily": """
        select d.ticker || ' ' || d.date as key, 'market_cap ' || d.market_cap as detail
        from daily_moves d
        left join market_cap_daily c on c.ticker = d.ticker and c.date = d.date
        left join market_cap_daily p on p.ticker = d.ticker and p.date = d.prev_date
        where d.date >= __since__
          and (c.market_cap is distinct from d.market_cap or p.market_cap is distinct from d.prev_market_cap)""",
}


_AUDITED = ("company_market_cap_daily", "market_cap_daily", "company_daily_moves", "daily_moves")


def model_checks_frames(con, suffix: str = "", since: date | None = None) -> list[tuple[str, pd.DataFrame, list[Check]]]:
    """The model gate's suite, on the audits' offending rows from the built, unpublished models
    (``<model><suffix>``); an incremental build is audited from ``since`` on (the rest was audited
    when it was built)."""
    import re

    frames = []
    for reason, sql in MODEL_AUDITS.items():
        sql = sql.replace("__since__", f"DATE '{(since or date(1, 1, 1)).isoformat()}'")
        if suffix:
            sql = re.sub(r"\b(" + "|".join(_AUDITED) + r")\b", rf"\1{suffix}", sql)
        f = con.execute(sql).df()
        f.insert(0, "audit", reason)
        frames.append(f)
    audits = pd.concat(frames, ignore_index=True)
    checks = [Check(reason, lambda x, r=reason: x.ExpectColumnValuesToNotBeInSet(column="audit", value_set=[r]))
              for reason in MODEL_AUDITS]
    return [("model_audits", audits, checks)]


class ModelGateFailed(RuntimeError):
    """A model gate failed: the new models were not published."""


def model_gate(con, suffix: str = "", since: date | None = None) -> list[GateResult]:
    """Run the model suite on the built, unpublished models."""
    results = []
    for name, frame, checks in model_checks_frames(con, suffix, since):
        result = run_checks(name, frame, checks)
        result.rows = int(con.execute(f"select count(*) from market_cap_daily{suffix}").fetchone()[0])  # rows audited
        results.append(result)
    return results


def describe_failures(results: list[GateResult]) -> str:
    lines = []
    for r in results:
        for reason, _idx in r.failures:
            lines.append(f"{r.suite}: {reason}" + (f" (e.g. {'; '.join(r.examples[:3])})" if r.examples else ""))
    return "\n".join(lines)
