/* Point-in-time market capitalisation per listing and trading day.
   grain: one row per (ticker, date) in prices_daily.
   market_cap = close as traded x shares on the same split basis, where shares is the latest count
   known before that day (shares_as_of, shares_reported_date trace it) times the splits between its
   as-of date and the price date (split_factor). No count known yet: market_cap is null and
   cap_status says why. */
with prices as (
    select ticker, date, close from prices_daily
),

price_basis as (
    select
        p.*,
        coalesce(s.cum_factor, 1.0) as price_split_factor
    from prices as p
    asof left join stg_split_index as s
        on p.ticker = s.ticker and p.date >= s.date
),

with_count as (
    select
        p.*,
        c.shares as shares_reported,
        c.as_of as shares_as_of,
        c.reported_date as shares_reported_date,
        c.source as shares_source,
        p.price_split_factor / c.as_of_split_factor as split_factor
    from price_basis as p
    asof left join (select * from stg_shares_outstanding where share_class = 'all') as c
        on p.ticker = c.ticker and p.date > c.known_date
),

final as (
    select
        ticker,
        date,
        close,
        -- shares on the price's split basis
        round(shares_reported * split_factor)::bigint as shares,
        close * round(shares_reported * split_factor) as market_cap,
        -- traceability
        shares_reported,
        shares_as_of,
        shares_reported_date,
        split_factor,
        shares_source,
        case when shares_reported is null then 'no_share_count' else 'ok' end as cap_status
    from with_count
)

select * from final
