-- incremental: date, lookback 10 days
/* Every corporate action in `splits`, with its kind.
   grain: one row per (ticker, date) of `splits` (date = ex-date).
   kind (kind_source says which rule decided):
     - pinned in ref_corporate_actions ('reference');
     - else 'price_adjustment' when the ratio is not a simple fraction p/q (q <= 20): 1.046 (IBM's
       Kyndryl spin-off) or 1.998 (Alphabet's class C dividend) is the vendor adjusting prices for a
       distribution, and the share count did not change ('ratio rule');
     - else 'not_in_prices' when the traded price did not fall by the ratio on the ex-date but stayed
       within 10 % of the previous close: the split record is wrong, or the prices were already
       adjusted for it; it is not applied to counts or prices, and is listed in quarantine ('prices');
     - else 'split': counts and prices change by the ratio ('ratio rule'). */
with actions as (
    select ticker, date, ratio from splits where date >= __since__
),

traded as (
    -- the as-traded close on the ex-date against the previous close (within 10 days): one join
    -- over the days that can matter, not a lookup per split into the whole price history
    select
        a.ticker,
        a.date,
        max(p.close) filter (where p.date = a.date) as close,
        max_by(p.close, p.date) filter (where p.date < a.date) as prev_close
    from actions as a
    join prices_daily as p
        on p.ticker = a.ticker and p.date between a.date - interval 10 days and a.date
    where p.date >= __since__
    group by a.ticker, a.date
),

judged as (
    select
        a.*,
        list_bool_or([abs(a.ratio * q - round(a.ratio * q)) <= 1e-4 * a.ratio * q for q in range(1, 21)])
            as simple_fraction,
        t.close / t.prev_close as traded_ratio,
        -- the price stayed within 10 % of the previous close, and not near close / ratio
        coalesce(abs(ln(t.close / t.prev_close)) < ln(1.1)
                 and abs(ln(t.close / t.prev_close * a.ratio)) >= ln(1.1), false) as price_did_not_split
    from actions as a
    left join traded as t on t.ticker = a.ticker and t.date = a.date
),

final as (
    select
        a.ticker,
        a.date,
        a.ratio,
        case
            when r.kind is not null then r.kind
            when not a.simple_fraction then 'price_adjustment'
            when a.price_did_not_split then 'not_in_prices'
            else 'split'
        end as kind,
        case
            when r.kind is not null then 'reference'
            when a.simple_fraction and a.price_did_not_split then 'prices'
            else 'ratio rule'
        end as kind_source,
        a.traded_ratio,
        coalesce(r.note, case
            when a.simple_fraction and a.price_did_not_split
                then printf('split not in the prices: on the ex-date of a %g-for-1 split the traded price moved %+.1f%%',
                            a.ratio, 100 * (a.traded_ratio - 1))
        end) as note
    from judged as a
    left join ref_corporate_actions as r on r.ticker = a.ticker and r.date = a.date
)

select * from final
