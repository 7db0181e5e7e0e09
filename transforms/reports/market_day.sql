/* Crash-day report: the universe and each group on the day (market_daily, group_daily_moves).
   grain: one row for the universe (group_name null) plus one per group. Units: USD, percent. */
select
    null::varchar as group_name, total_market_cap, change_usd, change_pct, companies, companies_down,
    down_5_pct, down_10_pct, held
from market_daily
where date = getvariable('report_day')
union all
select * exclude (date) from (
    select * from group_daily_moves where date = getvariable('report_day') order by change_usd
)
