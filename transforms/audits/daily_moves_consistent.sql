-- audit: daily_moves disagrees with market_cap_daily
/* Returns the offending rows (zero rows = pass): a move whose caps are not the caps of its two days. */
select d.ticker || ' ' || d.date as key, 'market_cap ' || d.market_cap as detail
from daily_moves as d
left join market_cap_daily as c on c.ticker = d.ticker and c.date = d.date
left join market_cap_daily as p on p.ticker = d.ticker and p.date = d.prev_date
where d.date >= __since__
  and (c.market_cap is distinct from d.market_cap or p.market_cap is distinct from d.prev_market_cap)
