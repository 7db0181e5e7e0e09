-- incremental: date, lookback 31 days
/* Day-over-day change in market capitalisation per listing.
   grain: one row per (ticker, date) where both that day and the ticker's previous trading day
   have a market cap. change_pct is in percent (-16.97 means -16.97 %). */
with caps as (
    select ticker, date, close, shares, market_cap from market_cap_daily where date >= __since__
),

with_previous as (
    select
        *,
        lag(date) over by_ticker as prev_date,
        lag(close) over by_ticker as prev_close,
        lag(shares) over by_ticker as prev_shares,
        lag(market_cap) over by_ticker as prev_market_cap
    from caps
    window by_ticker as (partition by ticker order by date)
),

final as (
    select
        ticker,
        date,
        prev_date,
        close,
        prev_close,
        shares,
        prev_shares,
        market_cap,
        prev_market_cap,
        market_cap - prev_market_cap as change_usd,
        100 * (market_cap - prev_market_cap) / prev_market_cap as change_pct
    from with_previous
    where market_cap is not null and prev_market_cap is not null
)

select * from final
