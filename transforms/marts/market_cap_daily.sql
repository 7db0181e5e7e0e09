-- incremental: date
/* Point-in-time market capitalisation per listing and trading day.
   grain: one row per (ticker, date) in prices_daily.
   market_cap = close as traded x shares of the listing's own class (stg_count_series.is_listing; a
   single-class ticker's 'all' series) x price_multiplier (ADR ratio), where shares is the latest
   usable count known before that day, put on the price's split basis by the splits between the
   count's basis and the price date (split_factor). shares_as_of, shares_reported_date,
   shares_source and, for filed counts, shares_accession / shares_filing_url trace the count. No count known yet: market_cap is null and cap_status says why. Company totals (all
   classes) are in company_market_cap_daily.
   market_cap_at_prev_close = the same shares at the previous close (put on today's split basis):
   what daily_moves measures the day's market move against. */
with known_counts as (
    -- the counts that can be the latest known on a day from __since__ on: each series' last one
    -- known before, and those known since (an incremental build's as-of join then sorts a few
    -- counts per series, not every count of decades). The same CTE is in company_market_cap_daily:
    -- a build's since cannot reach a model through another model
    select c.*
    from stg_shares_outstanding as c
    join (
        select ticker, share_class, max(known_date) as known_date
        from stg_shares_outstanding
        where known_date < __since__
        group by ticker, share_class
    ) as last using (ticker, share_class, known_date)
    union all
    select * from stg_shares_outstanding where known_date >= __since__
),

listing_series as (
    select price_ticker as ticker, count_ticker, share_class, price_multiplier
    from stg_count_series
    where is_listing
),

joined as (
    select p.*, s.count_ticker, s.share_class, coalesce(s.price_multiplier, 1.0) as price_multiplier
    from stg_prices as p
    left join listing_series as s on p.ticker = s.ticker
    where p.date >= __since__
),

-- A listing whose class is counted under another ticker (GOOG: Alphabet's class C, counted under
-- GOOGL) is put on the price basis with the company's splits: a split divides every class alike,
-- and a listing's own split rows may be missing from a vendor file (GOOG's 2022 20-for-1).
other_listing as (
    select x.* replace (coalesce(si.cum_factor, 1.0) as price_split_factor)
    from (select * from joined where count_ticker <> ticker) as x
    asof left join stg_split_index as si on si.ticker = x.count_ticker and x.date >= si.date
),

priced as (
    select * from joined where count_ticker is null or count_ticker = ticker
    union all by name
    select * from other_listing
),

with_count as (
    select
        p.*,
        c.shares as shares_reported,
        c.as_of as shares_as_of,
        c.reported_date as shares_reported_date,
        c.source as shares_source,
        c.accession as shares_accession,
        c.filing_url as shares_filing_url,
        p.price_split_factor / c.basis_split_factor as split_factor
    from priced as p
    asof left join known_counts as c
        on p.count_ticker = c.ticker and p.share_class = c.share_class and p.date > c.known_date
),

final as (
    select
        ticker,
        date,
        close,
        round(shares_reported * split_factor)::bigint as shares,    -- on the price's split basis
        close * round(shares_reported * split_factor) * price_multiplier as market_cap,
        prev_close_on_basis * round(shares_reported * split_factor) * price_multiplier as market_cap_at_prev_close,
        share_class,
        price_multiplier,
        shares_reported,
        shares_as_of,
        shares_reported_date,
        split_factor,
        shares_source,
        nullif(shares_accession, '') as shares_accession,
        shares_filing_url,
        case when shares_reported is null then 'no_share_count' else 'ok' end as cap_status
    from with_count
)

select * from final
