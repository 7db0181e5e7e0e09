-- incremental: date
/* The whole universe per trading day: total market cap and the day's total market move.
   grain: one row per date with at least one company move.
   - total_market_cap: sum of the companies' caps that day (companies with a move that day);
   - change_usd / change_pct: the sum of the companies' market moves (held days left out), and that
     sum against the same companies' value at the previous close (percent);
   - companies, companies_down, down_5_pct, down_10_pct: how many moved, fell, fell > 5 %, > 10 %;
   - held: company-days left out of the total (stg_price_checks, count steps). */
with moves as (
    select * from company_daily_moves where date >= __since__
),

final as (
    select
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
    group by date
)

select * from final
