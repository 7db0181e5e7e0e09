-- incremental: date, lookback 31 days
/* Closes with the split basis they trade on, and the previous close put on that basis.
   grain: one row per (ticker, date). price_split_factor = cumulative split factor on that day;
   prev_close_on_basis = the ticker's previous close x (its factor / today's factor): what the
   previous close was worth in today's shares, so close / prev_close_on_basis - 1 is the day's price
   move with a true split's ratio applied on its ex-date (a price adjustment such as a spin-off is
   part of the move). */
with prices as (
    select ticker, date, close from prices_daily where date >= __since__
),

with_basis as (
    select
        p.*,
        coalesce(s.cum_factor, 1.0) as price_split_factor
    from prices as p
    asof left join stg_split_index as s
        on p.ticker = s.ticker and p.date >= s.date
),

final as (
    select
        ticker,
        date,
        close,
        price_split_factor,
        lag(close * price_split_factor) over by_ticker / price_split_factor as prev_close_on_basis
    from with_basis
    window by_ticker as (partition by ticker order by date)
)

select * from final
