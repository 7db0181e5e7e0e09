/* Crash-day report: the day's company moves, largest losses first.
   grain: one row per company that traded on getvariable('report_day') with a market move.
   rank_usd / rank_pct: the loss's rank among every one-day loss in the universe's history;
   company_rank_usd: its rank in the company's own history (1 = the company's worst day in dollars).
   Gains have no ranks. Units: USD, percent. */
select
    m.company,
    m.ticker,
    m.date,
    m.prev_date,
    m.change_usd,
    m.change_pct,
    m.prev_market_cap,
    m.market_cap,
    l.rank_usd,
    l.rank_pct,
    l.company_rank_usd,
    l.company_rank_pct
from company_daily_moves as m
left join largest_losses as l on l.company = m.company and l.date = m.date
where m.date = getvariable('report_day') and m.change_usd is not null
order by m.change_usd, m.company
