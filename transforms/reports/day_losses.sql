/* Crash-day report: the day's company moves, largest losses first.
   grain: one row per company that traded on getvariable('report_day') with a market move.
   rank_usd / rank_pct: the loss's rank among every one-day loss in the universe's history, as in
   largest_losses (1 + the losses larger than it); company_rank_usd / company_rank_pct: the same
   within the company's own history (1 = the company's worst day). Gains have no ranks.
   Units: USD, percent.
   Ranked without reading every day stored (a daily run's report must not cost more with each
   year of history): a loss's key grows with its size (the log of its size in steps of 0.1 %); a
   day's loss is outranked by every loss with a higher key (counted per key and year in
   loss_sizes_yearly) and by the larger ones that share its key (compared one by one, from that
   key's lists); a company's own ranks count its larger losses in company_losses (stored by
   company: the row groups of the companies ranked). The same ranks as largest_losses, ties
   included.
   getvariable('report_ranked'), when set: only the day's N largest losses in dollars are ranked
   (the report shows its top N; each ranked company reads its own years of losses), the others'
   ranks are null. Unset: every loss is ranked. */
with day as (
    select company, ticker, date, prev_date, change_usd, change_pct, prev_market_cap, market_cap
    from company_daily_moves
    where date = getvariable('report_day') and change_usd is not null
),

day_keyed as (
    select
        company,
        change_usd,
        change_pct,
        floor(ln(-change_usd) * 1000)::bigint as usd_key,
        case when change_pct < 0 then floor(ln(-change_pct) * 1000)::bigint end as pct_key
    from day
    where change_usd < 0
    qualify row_number() over (order by change_usd, company)
        <= coalesce(getvariable('report_ranked'), 9223372036854775807)
),

above as (
    -- per measure and key: the losses in higher keys (larger losses)
    select
        measure,
        size_key,
        coalesce(sum(n) over (
            partition by measure order by size_key desc rows between unbounded preceding and 1 preceding
        ), 0) as n
    from (select measure, size_key, sum(n) as n from loss_sizes_yearly group by measure, size_key)
),

usd_same as (
    select d.company, sum(len(list_filter(s.losses, x -> x < d.change_usd))) as n
    from day_keyed as d
    join loss_sizes_yearly as s on s.measure = 'usd' and s.size_key = d.usd_key
    group by d.company
),

pct_same as (
    select d.company, sum(len(list_filter(s.losses, x -> x < d.change_pct))) as n
    from day_keyed as d
    join loss_sizes_yearly as s on s.measure = 'pct' and s.size_key = d.pct_key
    group by d.company
),

own as (
    -- company_losses is stored by company: only the ranked companies' row groups are read
    select
        d.company,
        count(l.change_usd) filter (where l.change_usd < d.change_usd) as usd_n,
        count(l.change_pct) filter (where l.change_pct < d.change_pct) as pct_n
    from day_keyed as d
    left join company_losses as l on l.company = d.company
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
    join above as ua on ua.measure = 'usd' and ua.size_key = d.usd_key
    left join above as pa on pa.measure = 'pct' and pa.size_key = d.pct_key
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
