"""Great Expectations suites for the raw gate, one per dataset of a batch, and the record of every
suite run (``validation_runs``).

GX is heavy to import (seconds): it is imported once per process, on first use, with progress bars
off. Every raw suite is code here, one obvious place; each expectation carries the plain reason a
quarantined row reports. (The model audits are SQL: ``transforms/audits``, run by
``capwatch.validate.audits``.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pandas as pd

from capwatch.schema import DIVIDENDS, SHARES, SPLITS, Table
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
            # GX fingerprints every pandas batch under 1 GB (an md5 of every cell, ~0.2 s per
            # 1.3M-row chunk: 7 s of a whole-market backfill's writer) only to label it; nothing
            # here reads the label. The module constant is the engine's only switch for it.
            from great_expectations.execution_engine import pandas_execution_engine

            pandas_execution_engine.HASH_THRESHOLD = 0
            ctx = gx.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
            asset = ctx.data_sources.add_pandas("capwatch").add_dataframe_asset("frame")
            _state.update(
                gx=gx,
                gxe=gxe,
                ctx=ctx,
                batch=asset.add_batch_definition_whole_dataframe("whole"),
                suites={},
            )
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
    failures: list[tuple[str, list]] = field(
        default_factory=list
    )  # (reason, failing row index labels)
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
        Check(
            "ticker is not a valid symbol",
            lambda x: x.ExpectColumnValuesToMatchRegex(column="ticker", regex=SYMBOL_PATTERN),
        ),
        Check(
            "date missing or not a date", lambda x: x.ExpectColumnValuesToNotBeNull(column="date")
        ),
        Check(
            "date in the future",
            lambda x: x.ExpectColumnValuesToBeBetween(column="date", max_value=pd.Timestamp(today)),
        ),
        # Membership in ~4,000 sessions is computed once (validate._coerce adds on_trading_day):
        # a GX value set of Timestamps that size costs more than the rest of the suite together.
        Check(
            "date is not an NYSE trading day",
            lambda x: x.ExpectColumnValuesToBeInSet(column="on_trading_day", value_set=[True]),
        ),
    ]
    for c in ("open", "high", "low", "close"):
        checks.append(
            Check(
                f"{c} missing or not a number",
                lambda x, c=c: x.ExpectColumnValuesToNotBeNull(column=c),
            )
        )
        checks.append(
            Check(
                f"{c} not a finite price > 0",
                lambda x, c=c: x.ExpectColumnValuesToBeBetween(
                    column=c, min_value=0, strict_min=True, max_value=MAX_PRICE
                ),
            )
        )
    checks += [
        Check(
            "high below open",
            lambda x: x.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="high",
                column_B="open",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
        ),
        Check(
            "high below close",
            lambda x: x.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="high",
                column_B="close",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
        ),
        Check(
            "low above open",
            lambda x: x.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="open",
                column_B="low",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
        ),
        Check(
            "low above close",
            lambda x: x.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="close",
                column_B="low",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
        ),
        Check(
            "volume missing or not a number",
            lambda x: x.ExpectColumnValuesToNotBeNull(column="volume"),
        ),
        Check(
            "volume negative",
            lambda x: x.ExpectColumnValuesToBeBetween(column="volume", min_value=0, max_value=1e15),
        ),
        Check(
            "duplicate (ticker, date) with different values",
            lambda x: x.ExpectCompoundColumnsToBeUnique(column_list=["ticker", "date"]),
        ),
    ]
    return checks


def _keyed_checks(table: Table, value_col: str, upper: float, today: date) -> list[Check]:
    key, date_col = list(table.batch_keys), table.date_column
    return [
        Check("ticker missing", lambda x: x.ExpectColumnValuesToNotBeNull(column="ticker")),
        Check(
            "ticker is not a valid symbol",
            lambda x: x.ExpectColumnValuesToMatchRegex(column="ticker", regex=SYMBOL_PATTERN),
        ),
        Check(
            f"{date_col} missing or not a date",
            lambda x: x.ExpectColumnValuesToNotBeNull(column=date_col),
        ),
        Check(
            f"{date_col} in the future",
            lambda x: x.ExpectColumnValuesToBeBetween(
                column=date_col, max_value=pd.Timestamp(today)
            ),
        ),
        Check(
            f"{value_col} missing or not a number",
            lambda x: x.ExpectColumnValuesToNotBeNull(column=value_col),
        ),
        Check(
            f"{value_col} not finite or <= 0",
            lambda x: x.ExpectColumnValuesToBeBetween(
                column=value_col, min_value=0, strict_min=True, max_value=upper
            ),
        ),
        Check(
            f"duplicate ({', '.join(key)}) with different values",
            lambda x: x.ExpectCompoundColumnsToBeUnique(column_list=key),
        ),
    ]


def raw_checks(dataset: str, today: date) -> list[Check]:
    """The raw gate's checks for one dataset of a batch."""
    if dataset == "prices_daily":
        return _price_checks(today)
    if dataset == "splits":
        # Splits may be announced ahead of their ex-date: no 'future' rule beyond a year.
        return _keyed_checks(SPLITS, "ratio", MAX_SPLIT_RATIO, date(today.year + 1, 12, 31))
    if dataset == "dividends":
        return _keyed_checks(DIVIDENDS, "dividend", MAX_PRICE, date(today.year + 1, 12, 31))
    if dataset == "shares_outstanding":
        # Only what cannot be stored is refused here; implausible counts are the share model's call.
        return _keyed_checks(SHARES, "shares", 9e18, today)
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
            exp.meta = {
                "reason": check.reason
            }  # GX reorders results; the reason travels with each one
            suite.add_expectation(exp)
        # The validator behind Batch.validate and ValidationDefinition.run, used directly: each
        # batch fetch fingerprints the whole frame (an md5 of every cell, ~0.5 s per 3M rows), and
        # get_batch() followed by Batch.validate() fetches it twice.
        validator = Validator(
            batch_definition=batch_definition,
            batch_parameters={"dataframe": frame},
            result_format={"result_format": result_format},
        )
        return validator.validate_expectation_suite(suite).results

    # A pass/fail pass first (cheap); the failing rows are only collected for what failed.
    failed = {
        r.expectation_config.meta["reason"]
        for r in validate(checks, "BOOLEAN_ONLY")
        if not r.success
    }
    if not failed:
        return result
    order = {c.reason: n for n, c in enumerate(checks)}
    for res in sorted(
        validate([c for c in checks if c.reason in failed], "COMPLETE"),
        key=lambda r: order[r.expectation_config.meta["reason"]],
    ):
        if not res.success:
            idx = res.result.get("unexpected_index_list") or []
            idx = [i if not isinstance(i, dict) else next(iter(i.values())) for i in idx]
            result.failures.append((res.expectation_config.meta["reason"], idx))
            sample = frame.loc[idx[:3]] if idx else frame.head(3)
            result.examples += [
                ", ".join(f"{k}={v}" for k, v in row.items()) for _, row in sample.iterrows()
            ]
    return result


def record_validation(con, results: list[GateResult], run_id: str) -> None:
    """Keep each suite's outcome in ``validation_runs`` (data quality over time, in SQL)."""
    now = datetime.now(UTC)
    for r in results:
        con.execute(
            "insert into validation_runs values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                r.suite,
                r.passed,
                r.rows,
                r.failed_rows,
                r.evaluated,
                [reason for reason, _ in r.failures],
                now,
            ],
        )
