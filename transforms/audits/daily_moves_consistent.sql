-- audit: daily_moves disagrees with market_cap_daily
/* Returns the offending rows (zero rows = pass): a move whose caps are not the caps of its two
   days, or whose parts (market move + count change) do not add up to the cap change. */
select d.ticker || ' ' || d.date as key, 'market_cap ' || d.market_cap as detail
from daily_moves as d
left join market_cap_daily as c on c.ticker = d.ticker and c.date = d.date
left join market_cap_daily as p on p.ticker = d.ticker and p.date = d.prev_date
where d.date >= __since__
  and (
      c.market_cap is distinct from d.market_cap
      or p.market_cap is distinct from d.prev_market_cap
      or (d.change_usd is not null
          and abs(d.change_usd + d.count_change_usd - d.cap_change_usd) > 1e-6 * abs(d.prev_market_cap))
  )
