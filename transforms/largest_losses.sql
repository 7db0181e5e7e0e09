/* One-day market-cap losses, ranked in dollars and in percent, across the universe and per ticker.
   grain: one row per (ticker, date) with change_usd < 0. rank 1 = the largest loss. */
with losses as (
    select ticker, date, prev_date, close, prev_close, market_cap, prev_market_cap, change_usd, change_pct
    from daily_moves
    where change_usd < 0
),

final as (
    select
        *,
        rank() over (order by change_usd) as rank_usd,
        rank() over (order by change_pct) as rank_pct,
        rank() over (partition by ticker order by change_usd) as ticker_rank_usd,
        rank() over (partition by ticker order by change_pct) as ticker_rank_pct
    from losses
)

select * from final
