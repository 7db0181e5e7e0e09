/* Every share-count series capwatch values, with its company and how to price it.
   grain: one row per (count_ticker, share_class). The reference rows (ref_share_classes) plus, for
   every other priced ticker, a single-class series (ticker, 'all') valued at its own price. */
with priced as (
    select distinct ticker from prices_daily
),

single_class as (
    select
        p.ticker as company,
        p.ticker as count_ticker,
        'all' as share_class,
        p.ticker as price_ticker,
        1.0 as price_multiplier,
        true as is_listing,
        'single class' as note
    from priced as p
    where p.ticker not in (select price_ticker from ref_share_classes)
),

final as (
    select * from ref_share_classes
    union all
    select * from single_class
)

select * from final
