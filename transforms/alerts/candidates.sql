/* Alert candidates: company moves on or after $since that pass a rule.
   grain: one row per (rule, company, date). Input: the temp table alert_rules (rule, kind,
   threshold, top_n, min_history, company) -- company null for a rule's default, set for an
   override. rank_in_history counts the company's larger dollar losses before that day, plus one. */
with moves as (
    select
        company,
        ticker,
        date,
        market_cap,
        prev_market_cap,
        change_usd,
        change_pct,
        rank() over (partition by date order by prev_market_cap desc) as size_rank,
        min(change_usd) over (
            partition by company order by date rows between unbounded preceding and 1 preceding
        ) as prior_worst_usd,
        row_number() over (partition by company order by date) - 1 as prior_days
    from company_daily_moves
),

recent as (
    select * from moves where date >= $since
),

rules as (
    select
        r.rule,
        r.kind,
        r.top_n,
        r.min_history,
        m.company,
        coalesce(o.threshold, r.threshold) as threshold
    from alert_rules as r
    cross join (select distinct company from recent) as m
    left join alert_rules as o on o.rule = r.rule and o.company = m.company
    where r.company is null
),

hits as (
    select m.*, r.rule, r.kind, r.threshold
    from recent as m
    join rules as r on r.company = m.company
    where (r.kind = 'pct_drop' and m.change_pct <= r.threshold)
       or (r.kind = 'usd_loss' and m.change_usd <= r.threshold)
       or (r.kind = 'top_n_pct_drop' and m.size_rank <= r.top_n and m.change_pct <= r.threshold)
       or (r.kind = 'record_loss' and m.change_usd < 0 and m.change_usd < m.prior_worst_usd
           and m.prior_days >= r.min_history)
),

final as (
    select
        h.rule,
        h.kind,
        h.company,
        h.ticker,
        h.date,
        h.change_pct,
        h.change_usd,
        h.market_cap,
        h.size_rank,
        1 + (
            select count(*) from company_daily_moves as p
            where p.company = h.company and p.date < h.date and p.change_usd < h.change_usd
        ) as rank_in_history,
        h.prior_days
    from hits as h
)

select * from final
