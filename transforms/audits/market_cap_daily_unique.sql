-- audit: market_cap_daily has duplicate (ticker, date)
/* Returns the offending rows (zero rows = pass): one row per (ticker, date) stored more than once. */
select ticker || ' ' || date as key, count(*)::varchar as detail
from market_cap_daily
where date >= __since__
group by ticker, date
having count(*) > 1
