-- incremental: date, lookback 31 days
/* Day-over-day change in company market capitalisation (all share classes).
   grain: one row per (company, date) where that day and the company's previous trading day both
   have a market cap. change_pct is in percent. Feeds largest_losses and alerts. */
with caps as (
    select company, ticker, date, market_cap from company_market_cap_daily where date >= __since__
),

with_previous as (
    select
        *,
        lag(date) over by_company as prev_date,
        lag(market_cap) over by_company as prev_market_cap
    from caps
    window by_company as (partition by company order by date)
),

final as (
    select
        company,
        ticker,
        date,
        prev_date,
        market_cap,
        prev_market_cap,
        market_cap - prev_market_cap as change_usd,
        100 * (market_cap - prev_market_cap) / prev_market_cap as change_pct
    from with_previous
    where market_cap is not null and prev_market_cap is not null
)

select * from final
