-- incremental: date
/* Point-in-time market capitalisation per company and trading day: all share classes summed.
   grain: one row per (company, date) on which any of the company's listings traded.
   Each class is valued at its own listed price, or at the price of the class it converts into
   (ref_share_classes); ADR counts in ordinary shares are divided by the ADR ratio. When every class
   of a multi-class company has a known count the classes are summed (method 'classes'); else its
   'all' total is used where known (method 'total'); else market_cap is null and cap_status names
   the classes without a count. `classes` holds the class breakdown of multi-class companies; a
   single-class company's count is traced in market_cap_daily.
   market_cap_at_prev_close = today's shares (same classes, same method) at each listing's previous
   close put on today's split basis: the base company_daily_moves measures the market move from. */
with known_counts as (
    -- the counts that can be the latest known on a day from __since__ on: each series' last one
    -- known before, and those known since (an incremental build's as-of join then sorts a few
    -- counts per series, not every count of decades). The same CTE is in market_cap_daily:
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

series_prices as (
    select
        s.company,
        s.count_ticker,
        s.share_class,
        s.price_ticker,
        s.price_multiplier,
        s.is_listing,
        p.date,
        p.close,
        p.prev_close_on_basis,
        p.price_split_factor
    from stg_count_series as s
    join stg_prices as p on p.ticker = s.price_ticker
    where p.date >= __since__
),

-- A class priced on another listing (Alphabet C at GOOG) is put on the price basis with the
-- company's splits (its count ticker's): a split divides every class alike, and a listing's own
-- split rows may be missing from a vendor file (GOOG's 2022 20-for-1). Only those few rows are
-- joined; every other series keeps its own listing's factor.
other_listing as (
    select x.* replace (coalesce(si.cum_factor, 1.0) as price_split_factor)
    from (select * from series_prices where price_ticker <> count_ticker) as x
    asof left join stg_split_index as si on si.ticker = x.count_ticker and x.date >= si.date
),

series_days as (
    select * from series_prices where price_ticker = count_ticker
    union all by name
    select * from other_listing
),

valued as (
    select
        d.*,
        c.shares as shares_reported,
        c.as_of as shares_as_of,
        c.reported_date as shares_reported_date,
        c.source as shares_source,
        nullif(c.accession, '') as shares_accession,
        c.filing_url as shares_filing_url,
        d.price_split_factor / c.basis_split_factor as split_factor,
        round(c.shares * d.price_split_factor / c.basis_split_factor) as shares,
        round(c.shares * d.price_split_factor / c.basis_split_factor) * d.close * d.price_multiplier as value,
        round(c.shares * d.price_split_factor / c.basis_split_factor) * d.prev_close_on_basis * d.price_multiplier
            as value_at_prev_close
    from series_days as d
    asof left join known_counts as c
        on d.count_ticker = c.ticker and d.share_class = c.share_class and d.date > c.known_date
),

class_counts as (
    select company, count(*) filter (where share_class <> 'all') as n_classes
    from stg_count_series group by company
),

-- Single-class companies (and ADRs): one series, nothing to sum.
single as (
    select
        v.company,
        v.date,
        v.price_ticker as ticker,
        v.value as market_cap,
        v.value_at_prev_close as market_cap_at_prev_close,
        case when v.value is not null then 'total' end as method,
        case when v.value is not null then 'ok' else 'no_share_count' end as cap_status,
        null as classes
    from valued as v
    join class_counts as n on v.company = n.company
    where n.n_classes = 0
),

multi as (
    select
        v.company,
        v.date,
        min(v.price_ticker) filter (where v.is_listing) as ticker,
        any_value(n.n_classes) as n_classes,
        count(v.value) filter (where v.share_class <> 'all') as classes_known,
        sum(v.value order by v.share_class) filter (where v.share_class <> 'all') as classes_value,
        max(v.value) filter (where v.share_class = 'all') as total_value,
        -- a class with no previous close (its first day listed) leaves the company without a base
        case
            when count(v.value_at_prev_close) filter (where v.share_class <> 'all')
                = count(v.value) filter (where v.share_class <> 'all')
                then sum(v.value_at_prev_close order by v.share_class) filter (where v.share_class <> 'all')
        end as classes_value_at_prev_close,
        max(v.value_at_prev_close) filter (where v.share_class = 'all') as total_value_at_prev_close,
        string_agg(v.share_class, ',' order by v.share_class) filter (where v.share_class <> 'all' and v.value is null) as classes_missing,
        list(struct_pack(
            share_class := v.share_class, price_ticker := v.price_ticker, close := v.close,
            price_multiplier := v.price_multiplier, shares := v.shares::bigint, shares_reported := v.shares_reported,
            shares_as_of := v.shares_as_of, shares_reported_date := v.shares_reported_date,
            shares_source := v.shares_source, shares_accession := v.shares_accession,
            shares_filing_url := v.shares_filing_url,
            split_factor := v.split_factor, value := v.value
        ) order by v.share_class) as classes
    from valued as v
    join class_counts as n on v.company = n.company
    where n.n_classes > 0
    group by v.company, v.date
),

multi_final as (
    select
        company,
        date,
        ticker,
        case when classes_known = n_classes then classes_value else total_value end as market_cap,
        case
            when classes_known = n_classes then classes_value_at_prev_close else total_value_at_prev_close
        end as market_cap_at_prev_close,
        case when classes_known = n_classes then 'classes' when total_value is not null then 'total' end as method,
        case
            when classes_known = n_classes or total_value is not null then 'ok'
            else 'no count known for class ' || classes_missing
        end as cap_status,
        classes
    from multi
),

final as (
    select * from single
    union all by name
    select * from multi_final
)

select * from final
