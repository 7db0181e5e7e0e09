-- incremental: date
/* Closes with the split basis they trade on.
   grain: one row per (ticker, date). price_split_factor = cumulative split factor on that day. */
with prices as (
    select ticker, date, close from prices_daily where date >= __since__
),

final as (
    select
        p.*,
        coalesce(s.cum_factor, 1.0) as price_split_factor
    from prices as p
    asof left join stg_split_index as s
        on p.ticker = s.ticker and p.date >= s.date
)

select * from final
