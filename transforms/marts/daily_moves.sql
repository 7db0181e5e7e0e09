-- incremental: date, lookback 31 days
/* Day-over-day change in market capitalisation per listing, split into what the market did and
   what a new share count did.
   grain: one row per (ticker, date) where both that day and the ticker's previous trading day
   have a market cap. Percent columns are in percent (-16.97 means -16.97 %).
   - change_usd / change_pct: the market move, valued at one share count (today's): today's shares
     x (close - previous close put on today's split basis). A true split's ratio is applied on its
     day; a price adjustment (spin-off) is part of the move. Null when the day is held (held_reason).
   - cap_change_usd = market_cap - prev_market_cap: the whole difference between the published caps;
   - count_change_usd = cap_change_usd - change_usd: what a newly known share count added
     (shares_changed marks it); never a market move.
   - held_reason: why the day is not a market move (stg_price_checks: a vendor price error). */
with caps as (
    select ticker, date, close, shares, market_cap, market_cap_at_prev_close
    from market_cap_daily
    where date >= __since__
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

held as (
    select ticker, date, reason from stg_price_checks where date >= __since__
),

final as (
    select
        m.ticker,
        m.date,
        m.prev_date,
        m.close,
        m.prev_close,
        m.shares,
        m.prev_shares,
        m.market_cap,
        m.prev_market_cap,
        case when h.reason is null then m.market_cap - m.market_cap_at_prev_close end as change_usd,
        case when h.reason is null
            then 100 * (m.market_cap - m.market_cap_at_prev_close) / m.market_cap_at_prev_close end as change_pct,
        m.market_cap - m.prev_market_cap as cap_change_usd,
        m.market_cap_at_prev_close - m.prev_market_cap as count_change_usd,
        abs(m.market_cap_at_prev_close - m.prev_market_cap) > 1e-9 * m.prev_market_cap as shares_changed,
        h.reason as held_reason
    from with_previous as m
    left join held as h on h.ticker = m.ticker and h.date = m.date
    where m.market_cap is not null and m.prev_market_cap is not null
)

select * from final
