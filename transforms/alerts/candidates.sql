/* Alert candidates: company moves on or after $since that pass a rule.
   grain: one row per (rule, company, date). Input: the temp table alert_rules (rule, kind,
   threshold, top_n, min_history, company, direction) -- company null for a rule's default, set for an
   override. rank_in_history counts the company's larger dollar losses before that day, plus one.
   size_rank (for top-N rules) ranks the company's cap of the previous trading day among every
   company's cap that day in company_market_cap_daily: the whole universe as stored, never only
   the companies that moved (or were fetched) on the day itself. */
with before as (
    -- what came before $since, per company, in one pass (no window over the whole history)
    select company, min(change_usd) as worst_usd, count(*) as days
    from company_daily_moves
    where date < $since
    group by company
),

moves as (
    select
        m.company,
        m.ticker,
        m.date,
        m.prev_date,
        m.market_cap,
        m.prev_market_cap,
        m.change_usd,
        m.change_pct,
        -- least() skips nulls: the worst loss before the day, before $since or since then
        least(b.worst_usd, min(m.change_usd) over (
            partition by m.company order by m.date rows between unbounded preceding and 1 preceding
        )) as prior_worst_usd,
        coalesce(b.days, 0) + row_number() over (partition by m.company order by m.date) - 1
            as prior_days
    from company_daily_moves as m
    left join before as b on b.company = m.company
    where m.date >= $since
),

size_ranks as (
    select company, date, rank() over (partition by date order by market_cap desc) as size_rank
    from company_market_cap_daily
    where market_cap is not null
      and date >= (select coalesce(max(date), $since) from company_market_cap_daily where date < $since)
),

recent as (
    select m.*, r.size_rank
    from moves as m
    left join size_ranks as r on r.company = m.company and r.date = m.prev_date
    where m.date >= $since
),

rules as (
    select
        r.rule,
        r.kind,
        r.top_n,
        r.min_history,
        r.direction,
        m.company,
        coalesce(o.threshold, r.threshold) as threshold
    from alert_rules as r
    cross join (select distinct company from recent) as m
    left join alert_rules as o on o.rule = r.rule and o.company = m.company
    where r.company is null
),

hits as (
    select m.*, r.rule, r.kind, r.threshold, r.direction
    from recent as m
    join rules as r on r.company = m.company
    -- direction: 'down' passes at or below the threshold, 'up' at or above its mirror, 'both' either
    where (r.kind = 'pct_drop' and (case r.direction when 'up' then m.change_pct >= -r.threshold when 'both' then abs(m.change_pct) >= abs(r.threshold) else m.change_pct <= r.threshold end))
       or (r.kind = 'usd_loss' and (case r.direction when 'up' then m.change_usd >= -r.threshold when 'both' then abs(m.change_usd) >= abs(r.threshold) else m.change_usd <= r.threshold end))
       or (r.kind = 'top_n_pct_drop' and m.size_rank <= r.top_n and (case r.direction when 'up' then m.change_pct >= -r.threshold when 'both' then abs(m.change_pct) >= abs(r.threshold) else m.change_pct <= r.threshold end))
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
