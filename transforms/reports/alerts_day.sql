/* Crash-day report: the alerts that fired for the day and what was delivered.
   grain: one row per alert event (rule, company) of getvariable('report_day'). */
select
    e.rule,
    e.company,
    e.ticker,
    e.message,
    e.notify,
    e.withdrawn_at is not null as withdrawn,
    count(d.channel) filter (where d.status = 'sent') as deliveries_sent,
    count(d.channel) filter (where d.status in ('failed', 'uncertain')) as deliveries_failed
from alert_events as e
left join alert_deliveries as d on d.rule = e.rule and d.company = e.company and d.date = e.date
where e.date = getvariable('report_day')
group by all
order by any_value(e.change_usd), e.rule
