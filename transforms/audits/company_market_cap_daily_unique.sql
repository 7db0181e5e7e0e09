-- audit: company_market_cap_daily has duplicate (company, date)
/* Returns the offending rows (zero rows = pass): one row per (company, date) stored more than once. */
select company || ' ' || date as key, count(*)::varchar as detail
from company_market_cap_daily
where date >= __since__
group by company, date
having count(*) > 1
