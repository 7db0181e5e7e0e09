-- incremental: date
/* Each group's (ref_groups) day: total market cap and the total market move of its companies.
   grain: one row per (group_name, date). Columns as market_daily, per group. */
with moves as (
    select g.group_name, m.*
    from company_daily_moves as m
    join ref_groups as g on g.company = m.company
    where m.date >= __since__
),

final as (
    select
        group_name,
        date,
        -- exact sums (to the cent, as DECIMAL): floating-point addition is not associative, and
        -- the same data must give the same table however the engine splits the work; unlike an
        -- ordered sum, this streams (no buffering of every row of a day)
        sum(market_cap::decimal(38, 2))::double as total_market_cap,
        sum(change_usd::decimal(38, 2))::double as change_usd,
        100 * sum(change_usd::decimal(38, 2))::double
            / sum((market_cap - change_usd)::decimal(38, 2))::double as change_pct,
        count(change_usd) as companies,
        count(*) filter (where change_usd < 0) as companies_down,
        count(*) filter (where change_pct <= -5) as down_5_pct,
        count(*) filter (where change_pct <= -10) as down_10_pct,
        count(*) filter (where held_reason is not null) as held
    from moves
    group by group_name, date
)

select * from final
