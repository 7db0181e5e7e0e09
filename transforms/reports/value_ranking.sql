/* Crash-day report: the most valuable companies before and after the day.
   grain: one row per company among the top 10 by market cap on the previous trading day or on the
   day itself; rank_before / rank_after = its place by market cap on each (1 = most valuable). */
with days as (
    select max(date) filter (where date < getvariable('report_day')) as before_day,
           max(date) filter (where date = getvariable('report_day')) as report_day
    from market_daily
),

ranked as (
    select
        c.company,
        c.date,
        c.market_cap,
        rank() over (partition by c.date order by c.market_cap desc) as place
    from company_market_cap_daily as c, days as d
    where c.date in (d.before_day, d.report_day) and c.market_cap is not null
),

final as (
    select
        company,
        max(place) filter (where date = (select before_day from days)) as rank_before,
        max(place) filter (where date = (select report_day from days)) as rank_after,
        max(market_cap) filter (where date = (select before_day from days)) as market_cap_before,
        max(market_cap) filter (where date = (select report_day from days)) as market_cap_after
    from ranked
    group by company
    having least(rank_before, rank_after) <= 10
)

select * from final order by rank_after nulls last, rank_before
