-- incremental: date, lookback 366 days, full build by year
/* Each company's one-day moves, one row per calendar year: what the alert rules and the day
   report need of a company's whole history, without reading every day of it (a daily run's cost
   must not grow with the decades stored: bench/WHOLE_MARKET.md).
   grain: one row per (company, year) with a row in company_daily_moves.
   date = the year's last day, whatever the company's last move: an incremental build replaces the
   years from its since on, each recomputed whole (the lookback reaches back to the year's start);
   a full build runs a year at a time (`full build by year`).
   - days: the company's rows in company_daily_moves that year (held days included);
   - worst_usd: its largest dollar loss that year (market moves only; null if none).
   The losses themselves, one row each, are in company_losses. */
select
    company,
    year(date) as year,
    make_date(year(date), 12, 31) as date,
    count(*) as days,
    min(change_usd) as worst_usd
from company_daily_moves
where date >= __since__ and date < __until__
group by company, year(date)
