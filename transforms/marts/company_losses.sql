-- incremental: date, stored by company, date
/* Every one-day loss of each company (company_daily_moves.change_usd < 0, as in largest_losses),
   one row per loss, stored in company order: a loss's rank within its company's history counts
   the company's larger losses here (transforms/reports/day_losses.sql, transforms/alerts/
   candidates.sql). A query of a few companies then reads only their row groups (DuckDB reads a
   list column whole in every row group it opens, so yearly lists per company cost every loss
   stored: 0.44 s of a 25-year daily run's alert step, bench/WHOLE_MARKET_NOTES.md). The days an
   incremental build replaces are appended after the sorted rows, so the rows of the daily runs
   since the last full build are read by every query; and its delete of those days reads the
   date of every loss (no row group is in date order): 0.07 s at 6,000 x 25 years.
   grain: one row per (company, date) with change_usd < 0. change_usd in USD, change_pct in
   percent (null when the cap change has no percent). */
select
    company,
    date,
    change_usd,
    change_pct
from company_daily_moves
where date >= __since__ and change_usd < 0
