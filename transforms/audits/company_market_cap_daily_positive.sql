-- audit: company_market_cap_daily has a market cap <= 0
/* Returns the offending rows (zero rows = pass): a company-day valued at zero, below, or NaN. */
select company || ' ' || date as key, market_cap::varchar as detail
from company_market_cap_daily
where date >= __since__ and (market_cap <= 0 or isnan(market_cap))
