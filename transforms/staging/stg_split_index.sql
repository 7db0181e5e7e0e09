/* Cumulative split factor per ticker: product of every true split's ratio with ex-date on or before
   `date` (stg_corporate_actions.kind = 'split'; price adjustments such as spin-offs do not change the
   share count, so they are not part of the basis).
   grain: one row per split, key (ticker, date). A price or count on date d is on the basis of the
   last row with date <= d; dividing two such factors converts between bases. */
with splits as (
    select ticker, date, ratio from stg_corporate_actions where kind = 'split'
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
