/* Crash-day report: the day's company moves, largest losses first.
   grain: one row per company that traded on getvariable('report_day') with a market move.
   rank_usd / rank_pct: the loss's rank among every one-day loss in the universe's history, as in
   largest_losses (1 + the losses larger than it); company_rank_usd / company_rank_pct: the same
   within the company's own history (1 = the company's worst day). Gains have no ranks.
   Units: USD, percent.
   Ranked with one read of the history and no sort of it (a window over every loss took seconds
   a day at whole-market size): a loss's key grows with its size (the log of its size in steps of
   0.1 %); a day's loss is outranked by every loss with a higher key (counted per key in one hash
   aggregate) and by the larger ones that share its key (compared one by one). */
with day as (
    select company, ticker, date, prev_date, change_usd, change_pct, prev_market_cap, market_cap
    from company_daily_moves
    where date = getvariable('report_day') and change_usd is not null
),

-- Inlined at each use: materialized, 6,000 x 25 years of losses spill under a 1 GB cap (4x slower).
keyed as not materialized (
    select
        company,
        date,
        change_usd,
        change_pct,
        floor(ln(-change_usd) * 1000)::bigint as usd_key,
        case when change_pct < 0 then floor(ln(-change_pct) * 1000)::bigint end as pct_key
    from company_daily_moves
    where change_usd < 0
),

day_keyed as (
    select * from keyed where date = getvariable('report_day')
),

usd_above as (
    -- per key: the losses in higher keys (larger losses)
    select usd_key, coalesce(sum(n) over (order by usd_key desc rows between unbounded preceding and 1 preceding), 0) as n
    from (select usd_key, count(*) as n from keyed group by usd_key)
),

pct_above as (
    select pct_key, coalesce(sum(n) over (order by pct_key desc rows between unbounded preceding and 1 preceding), 0) as n
    from (select pct_key, count(*) as n from keyed where pct_key is not null group by pct_key)
),

usd_same as (
    select d.company, count(*) as n
    from day_keyed as d
    join keyed as h on h.usd_key = d.usd_key and h.change_usd < d.change_usd
    group by d.company
),

pct_same as (
    select d.company, count(*) as n
    from day_keyed as d
    join keyed as h on h.pct_key = d.pct_key and h.change_pct < d.change_pct
    group by d.company
),

own as (
    select
        d.company,
        count(*) filter (where h.change_usd < d.change_usd) as usd_n,
        count(*) filter (where h.change_pct < d.change_pct) as pct_n
    from day_keyed as d
    join keyed as h on h.company = d.company
    group by d.company
),

ranked as (
    select
        d.company,
        1 + ua.n + coalesce(us.n, 0) as rank_usd,
        1 + pa.n + coalesce(ps.n, 0) as rank_pct,
        1 + o.usd_n as company_rank_usd,
        1 + o.pct_n as company_rank_pct
    from day_keyed as d
    join usd_above as ua on ua.usd_key = d.usd_key
    left join pct_above as pa on pa.pct_key = d.pct_key
    left join usd_same as us on us.company = d.company
    left join pct_same as ps on ps.company = d.company
    join own as o on o.company = d.company
)

select
    m.company,
    m.ticker,
    m.date,
    m.prev_date,
    m.change_usd,
    m.change_pct,
    m.prev_market_cap,
    m.market_cap,
    r.rank_usd,
    r.rank_pct,
    r.company_rank_usd,
    r.company_rank_pct
from day as m
left join ranked as r on r.company = m.company
order by m.change_usd, m.company
