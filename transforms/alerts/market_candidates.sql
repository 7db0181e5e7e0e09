/* Alert candidates for the whole universe and for groups: market_daily and group_daily_moves days on
   or after $since that pass a market_usd_loss / market_pct_drop / group_pct_drop rule.
   grain: one row per (rule, company, date), with the columns of candidates.sql; `company` (and
   `ticker`) is "Market" or "<group> (group)". rank_in_history: the day's rank among that series'
   earlier dollar moves, plus one. */
with series as (
    select 'Market' as company, date, total_market_cap as market_cap, change_usd, change_pct
    from market_daily
    union all
    select group_name || ' (group)', date, total_market_cap, change_usd, change_pct
    from group_daily_moves
),

ranked as (
    select
        *,
        row_number() over (partition by company order by date) - 1 as prior_days
    from series
),

hits as (
    select s.*, r.rule, r.kind
    from ranked as s
    join alert_rules as r on r.company is null
    where s.date >= $since
      and (
          (r.kind = 'market_usd_loss' and s.company = 'Market' and (case r.direction when 'up' then s.change_usd >= -r.threshold when 'both' then abs(s.change_usd) >= abs(r.threshold) else s.change_usd <= r.threshold end))
          or (r.kind = 'market_pct_drop' and s.company = 'Market' and (case r.direction when 'up' then s.change_pct >= -r.threshold when 'both' then abs(s.change_pct) >= abs(r.threshold) else s.change_pct <= r.threshold end))
          or (r.kind = 'group_pct_drop' and s.company like '% (group)' and (case r.direction when 'up' then s.change_pct >= -r.threshold when 'both' then abs(s.change_pct) >= abs(r.threshold) else s.change_pct <= r.threshold end))
      )
),

final as (
    select
        h.rule,
        h.kind,
        h.company,
        h.company as ticker,
        h.date,
        h.change_pct,
        h.change_usd,
        h.market_cap,
        null::bigint as size_rank,
        1 + (
            select count(*) from series as p
            where p.company = h.company and p.date < h.date and p.change_usd < h.change_usd
        ) as rank_in_history,
        h.prior_days
    from hits as h
)

select * from final
