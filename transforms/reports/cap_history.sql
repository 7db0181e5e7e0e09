/* Crash-day report: market cap of the day's largest losers over the months around the day.
   grain: one row per (company, date) for the companies in getvariable('report_companies'),
   from 120 calendar days before getvariable('report_day') to 60 after. Units: USD. */
select company, date, market_cap, date = getvariable('report_day') as is_report_day
from company_market_cap_daily
where company in (select unnest(getvariable('report_companies')))
  and date between getvariable('report_day') - interval 120 day and getvariable('report_day') + interval 60 day
  and market_cap is not null
order by company, date
