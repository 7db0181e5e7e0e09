-- audit: market_cap_daily has a market cap <= 0
/* Returns the offending rows (zero rows = pass): a listing-day valued at zero, below, or NaN. */
select ticker || ' ' || date as key, market_cap::varchar as detail
from market_cap_daily
where date >= __since__ and (market_cap <= 0 or isnan(market_cap))
