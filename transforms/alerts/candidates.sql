/* Alert candidates: company moves on or after $since that pass a rule.
   grain: one row per (rule, company, date). Input: the temp table alert_rules (rule, kind,
   threshold, top_n, min_history, company, direction) -- company null for a rule's default, set for an
   override. rank_in_history counts the company's larger dollar losses before that day, plus one.
   size_rank (top-N rules only) is company_daily_moves.prev_size_rank: the company's cap of the
   previous trading day ranked among every company's cap that day, the whole universe as stored,
   never only the companies that moved (or were fetched) on the day itself.
   Nothing here reads every day stored: the years before $since's year come from
   company_moves_yearly (a company's days, one row a year) and company_losses (the losses of the
   companies with a hit only, stored by company). */
with thresholds as (
    -- every threshold a rule applies: its own and its overrides', with the rule's kind and direction
    select kind, direction, threshold from alert_rules where company is null
    union all
    select r.kind, r.direction, o.threshold
    from alert_rules as o
    join alert_rules as r on r.rule = o.rule and r.company is null
    where o.company is not null
),

bounds as (
    -- the loosest threshold of each kind and direction (the directions as in `passing` below): a
    -- move beyond none of them passes no rule. A backfill's decades of every company are thus cut to
    -- the few moves that may pass before anything is joined, ranked or counted.
    select
        max(threshold) filter (where kind in ('pct_drop', 'top_n_pct_drop') and coalesce(direction, '') not in ('up', 'both')) as pct_down,
        min(-threshold) filter (where kind in ('pct_drop', 'top_n_pct_drop') and direction = 'up') as pct_up,
        min(abs(threshold)) filter (where kind in ('pct_drop', 'top_n_pct_drop') and direction = 'both') as pct_both,
        max(threshold) filter (where kind = 'usd_loss' and coalesce(direction, '') not in ('up', 'both')) as usd_down,
        min(-threshold) filter (where kind = 'usd_loss' and direction = 'up') as usd_up,
        min(abs(threshold)) filter (where kind = 'usd_loss' and direction = 'both') as usd_both,
        coalesce(bool_or(kind = 'record_loss'), false) as record_loss
    from thresholds
),

maybe as (
    select
        m.company,
        m.ticker,
        m.date,
        m.prev_date,
        m.market_cap,
        m.prev_market_cap,
        m.change_usd,
        m.change_pct,
        m.prev_size_rank
    from company_daily_moves as m
    cross join bounds as b
    where m.date >= $since
      and (m.change_pct <= b.pct_down or m.change_pct >= b.pct_up or abs(m.change_pct) >= b.pct_both
           or m.change_usd <= b.usd_down or m.change_usd >= b.usd_up or abs(m.change_usd) >= b.usd_both
           or (b.record_loss and m.change_usd < 0))
),

-- prior_days: the company's days before a move, without reading every day stored (a daily run's
-- evaluation costs the same after 5 or 25 years of history): the days of the years before the
-- move's year from company_moves_yearly, that year's days before it one by one.
years_before as (
    select
        company,
        year,
        coalesce(sum(days) over (
            partition by company order by year rows between unbounded preceding and 1 preceding
        ), 0) as days
    from company_moves_yearly
    where company in (select company from maybe)
),

by_window as (
    -- how to count a candidate's earlier days in its year: joined to them (a few hundred each),
    -- quick while candidates are few; or a window over (company, date) alone, which costs less once
    -- they are more than ~5 % of the days (a record_loss rule makes every loss one)
    select (select count(*) from maybe) * 20 > count(*) as yes
    from company_daily_moves
    where date >= make_date(year($since::date)::integer, 1, 1)
),

earlier_in_year as (
    select p.company, p.date, count(*) as days
    from maybe as p
    join company_daily_moves as d
        on d.company = p.company and year(d.date) = year(p.date) and d.date < p.date
    where d.date >= make_date(year($since::date)::integer, 1, 1)
      and not (select yes from by_window)
    group by p.company, p.date
    union all
    select company, date, row_number() over (partition by company, year(date) order by date) - 1
    from company_daily_moves
    where date >= make_date(year($since::date)::integer, 1, 1)
      and (select yes from by_window)
),

moves as (
    select p.*, coalesce(y.days, 0) + coalesce(e.days, 0) as prior_days
    from maybe as p
    left join years_before as y on y.company = p.company and y.year = year(p.date)
    left join earlier_in_year as e on e.company = p.company and e.date = p.date
),

-- the worst loss before $since, per company, for record_loss rules only
before as (
    select company, min(worst_usd) as worst_usd
    from (
        select company, worst_usd
        from company_moves_yearly
        where year < year($since::date)
        union all
        select company, change_usd
        from company_daily_moves
        where date >= make_date(year($since::date)::integer, 1, 1) and date < $since
    )
    where (select record_loss from bounds)
    group by company
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
      and (select record_loss from bounds)
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

hits as (
    select p.* exclude (prev_size_rank), case when p.kind = 'top_n_pct_drop' then p.prev_size_rank end as size_rank
    from passing as p
    where p.kind <> 'top_n_pct_drop' or p.prev_size_rank <= p.top_n
),

-- Only the moves worse than some hit of the same company can outrank one: a backfill's tens of
-- thousands of hits are ranked against those few, not against every day of every company. Years
-- before $since's year come from company_losses (a falling hit is only outranked by losses); its
-- days since then, and every day of a company with a rising hit (smaller gains outrank it too, and
-- company_losses holds only losses), from company_daily_moves.
least_bad as (
    select company, max(change_usd) as least_bad from hits group by company
),

worse as (
    select p.company, p.date, p.change_usd
    from company_daily_moves as p
    join least_bad as w on w.company = p.company
    where p.date >= make_date(year($since::date)::integer, 1, 1) and p.change_usd < w.least_bad
    union all
    select p.company, p.date, p.change_usd
    from company_daily_moves as p
    join (select * from least_bad where least_bad >= 0) as w on w.company = p.company
    where p.date < make_date(year($since::date)::integer, 1, 1) and p.change_usd < w.least_bad
),

worse_years as (
    -- company_losses is stored by company: only the row groups of companies with a hit are read
    select l.company, l.change_usd
    from company_losses as l
    join (select * from least_bad where least_bad < 0) as w on w.company = l.company
    where l.date < make_date(year($since::date)::integer, 1, 1) and l.change_usd < w.least_bad
),

hit_years as (
    -- per falling hit: the company's larger losses in the years before $since's year
    select h.company, h.change_usd, count(*) as n
    from (select distinct company, change_usd from hits) as h
    join worse_years as y on y.company = h.company and y.change_usd < h.change_usd
    group by h.company, h.change_usd
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
        ) + coalesce(y.n, 0) as rank_in_history,
        h.prior_days
    from hits as h
    left join hit_years as y on y.company = h.company and y.change_usd = h.change_usd
)

select * from final
