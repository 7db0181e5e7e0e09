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
        coalesce(b.days, 0) + row_number() over (partition by m.company order by m.date) - 1
            as prior_days
    from company_daily_moves as m
    left join before as b on b.company = m.company
    where m.date >= $since
),

prior_worst as (
    -- the worst loss before each day, for record_loss rules only: a running minimum is this
    -- query's costliest window (seconds over a backfill's decades), so with no such rule enabled
    -- it gets no rows. least() skips nulls: the worst before $since or since then.
    select
        m.company,
        m.date,
        least(b.worst_usd, min(m.change_usd) over (
            partition by m.company order by m.date rows between unbounded preceding and 1 preceding
        )) as prior_worst_usd
    from company_daily_moves as m
    left join before as b on b.company = m.company
    where m.date >= $since
      and exists (select 1 from alert_rules where kind = 'record_loss')
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
    cross join (select distinct company from moves) as m
    left join alert_rules as o on o.rule = r.rule and o.company = m.company
    where r.company is null
),

passing as (
    -- every condition but a top-N rule's size rank, which is ranked below for these rows only
    select m.*, r.rule, r.kind, r.threshold, r.direction, r.top_n
    from moves as m
    join rules as r on r.company = m.company
    -- direction: 'down' passes at or below the threshold, 'up' at or above its mirror, 'both' either
    where (r.kind in ('pct_drop', 'top_n_pct_drop') and (case r.direction when 'up' then m.change_pct >= -r.threshold when 'both' then abs(m.change_pct) >= abs(r.threshold) else m.change_pct <= r.threshold end))
       or (r.kind = 'usd_loss' and (case r.direction when 'up' then m.change_usd >= -r.threshold when 'both' then abs(m.change_usd) >= abs(r.threshold) else m.change_usd <= r.threshold end))
    union all
    select m.*, r.rule, r.kind, r.threshold, r.direction, r.top_n
    from moves as m
    join prior_worst as w on w.company = m.company and w.date = m.date
    join rules as r on r.company = m.company
    where r.kind = 'record_loss' and m.change_usd < 0 and m.change_usd < w.prior_worst_usd
      and m.prior_days >= r.min_history
),

top_caps as (
    -- the N largest caps (N: the largest top_n of any rule) of each day a top-N candidate needs,
    -- the day before its move, over every company: a cap's rank that day is 1 + the caps above
    -- it, which these N give exactly whenever the rank is N or better (no window over all days)
    select date, max(market_cap, (select coalesce(max(top_n), 1) from alert_rules)) as caps
    from company_market_cap_daily
    where market_cap is not null
      and date in (select prev_date from passing where kind = 'top_n_pct_drop')
    group by date
),

size_ranks as (
    select p.company, p.prev_date, 1 + len(list_filter(t.caps, x -> x > c.market_cap)) as size_rank
    from (select distinct company, prev_date from passing where kind = 'top_n_pct_drop') as p
    join company_market_cap_daily as c on c.company = p.company and c.date = p.prev_date
    join top_caps as t on t.date = p.prev_date
    where c.market_cap is not null
),

hits as (
    select p.*, r.size_rank
    from passing as p
    left join size_ranks as r on r.company = p.company and r.prev_date = p.prev_date
    where p.kind <> 'top_n_pct_drop' or r.size_rank <= p.top_n
),

-- Only the moves worse than some hit of the same company can outrank one: a backfill's tens of
-- thousands of hits are ranked against those few, not against every day of every company.
worse as (
    select p.company, p.date, p.change_usd
    from company_daily_moves as p
    join (select company, max(change_usd) as least_bad from hits group by company) as w
        on w.company = p.company
    where p.change_usd < w.least_bad
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
            select count(*) from worse as p
            where p.company = h.company and p.date < h.date and p.change_usd < h.change_usd
        ) as rank_in_history,
        h.prior_days
    from hits as h
)

select * from final
