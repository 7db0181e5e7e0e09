-- incremental: date, lookback 366 days, full build by year
/* Every one-day loss in the universe (company_daily_moves.change_usd < 0, as in largest_losses),
   grouped by calendar year and size: a loss's rank among all of history is 1 + the losses in
   larger size keys (a sum over these rows) + the larger ones in its own key (compared one by one
   in `losses`), with no read of every day stored (transforms/reports/day_losses.sql).
   grain: one row per (year, measure, size_key). measure 'usd' (change_usd, USD) or 'pct'
   (change_pct, percent); size_key = floor(ln(-loss) * 1000): grows with the loss, in steps of
   0.1 %. n = the losses in the group, losses = their values.
   date = the year's last day: an incremental build replaces the years from its since on, whole. */
with losses as (
    select date, 'usd' as measure, change_usd as loss
    from company_daily_moves
    where date >= __since__ and date < __until__ and change_usd < 0
    union all
    select date, 'pct' as measure, change_pct as loss
    from company_daily_moves
    where date >= __since__ and date < __until__ and change_usd < 0 and change_pct < 0
)

select
    year(date) as year,
    make_date(year(date), 12, 31) as date,
    measure,
    floor(ln(-loss) * 1000)::bigint as size_key,
    count(*) as n,
    list(loss) as losses
from losses
group by year(date), measure, floor(ln(-loss) * 1000)::bigint
