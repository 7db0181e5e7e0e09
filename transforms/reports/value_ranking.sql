/* Crash-day report: the most valuable companies before and after the day.
   grain: one row per company among the top 10 by market cap on the previous trading day or on the
   day itself; rank_before / rank_after = its place by market cap on each (1 = most valuable).
   The previous trading day is getvariable('report_prev_day') (set with report_day): constants, so
   only those two days' row groups are read, not every day stored. */
with days as (
    select getvariable('report_prev_day')::date as before_day, getvariable('report_day')::date as report_day
),

ranked as (
    select
        c.company,
        c.date,
        c.market_cap,
        rank() over (partition by c.date order by c.market_cap desc) as place
    from company_market_cap_daily as c
    where c.date between coalesce(getvariable('report_prev_day')::date, getvariable('report_day')::date)
          and getvariable('report_day')::date
      and c.date in (getvariable('report_prev_day')::date, getvariable('report_day')::date)
      and c.market_cap is not null
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
