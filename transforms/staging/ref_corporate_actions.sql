/* Reference: corporate actions whose kind is pinned by hand (edit freely).
   grain: one row per (ticker, date), the ex-date of a row in `splits`.
   Sources (Yahoo, vendor files) record every action that moves the price history as a "split" with
   a ratio. Only a true split (or reverse split) changes the share count; the others change prices
   only, or only another class's count. kind:
     - split            : counts and prices change by the ratio (count x ratio, price / ratio)
     - price_adjustment : prices only (spin-off, special distribution, stock dividend paid in another
                          class): this listing's share count does not change
   Without a row here, stg_corporate_actions decides from the ratio (a simple fraction p/q, q <= 20,
   is a split; anything else is a price adjustment). */
with actions as (
    select * from (values
        -- ticker, ex-date,           kind,               note
        ('IBM',   DATE '2021-11-04', 'price_adjustment', 'Kyndryl spin-off (1 KD per 5 IBM): IBM shares unchanged, price adjusted by 1.046'),
        ('GOOGL', DATE '2014-04-03', 'price_adjustment', 'Class C stock dividend (1 C per A/B share): the class A count did not change')
    ) as t(ticker, date, kind, note)
),

final as (
    select * from actions
)

select * from final
