/* Crash-day report: market cap of the day's largest losers over the months around the day.
   grain: one row per (company, date) for the companies in getvariable('report_companies'),
   from 120 calendar days before getvariable('report_day') to 60 after. Units: USD. */
select company, date, market_cap, date = getvariable('report_day') as is_report_day
from company_market_cap_daily
where company in (select unnest(getvariable('report_companies')))
  -- date arithmetic, not intervals: a timestamp bound would cast every stored date and read them all
  and date between getvariable('report_day')::date - 120 and getvariable('report_day')::date + 60
  and market_cap is not null
order by company, date
