/* Cumulative split factor per ticker: product of every split ratio with ex-date on or before `date`.
   grain: one row per split, key (ticker, date). A price or count on date d is on the basis of the
   last row with date <= d; dividing two such factors converts between bases. */
with splits as (
    select ticker, date, ratio from splits
),

final as (
    select
        ticker,
        date,
        ratio,
        product(ratio) over (
            partition by ticker order by date rows between unbounded preceding and current row
        ) as cum_factor
    from splits
)

select * from final
