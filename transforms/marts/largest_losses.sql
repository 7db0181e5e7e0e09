-- view
/* One-day company market-move losses (company_daily_moves.change_usd: never a count change, never a
   held day), ranked in dollars and in percent, across the universe and per company.
   grain: one row per (company, date) with change_usd < 0. rank 1 = the largest loss.
   ticker is the company's main listing; close / prev_close are that listing's. */
with losses as (
    select company, ticker, date, prev_date, market_cap, prev_market_cap, change_usd, change_pct
    from company_daily_moves
    where change_usd < 0
),

with_close as (
    select l.*, p.close, prev.close as prev_close
    from losses as l
    left join prices_daily as p on p.ticker = l.ticker and p.date = l.date
    left join prices_daily as prev on prev.ticker = l.ticker and prev.date = l.prev_date
),

final as (
    select
        *,
        rank() over (order by change_usd) as rank_usd,
        rank() over (order by change_pct) as rank_pct,
        rank() over (partition by company order by change_usd) as company_rank_usd,
        rank() over (partition by company order by change_pct) as company_rank_pct
    from with_close
)

select * from final
