/* Point-in-time market capitalisation per company and trading day: all share classes summed.
   grain: one row per (company, date) on which any of the company's listings traded.
   Each class is valued at its own listed price, or at the price of the class it converts into
   (ref_share_classes); ADR counts in ordinary shares are divided by the ADR ratio. When every class
   of a multi-class company has a known count the classes are summed (method 'classes'); else its
   'all' total is used where known (method 'total'); else market_cap is null and cap_status names
   the classes without a count. `classes` holds the breakdown behind every number. */
with series_days as (
    select
        s.company,
        s.count_ticker,
        s.share_class,
        s.price_ticker,
        s.price_multiplier,
        s.is_listing,
        p.date,
        p.close,
        p.price_split_factor
    from stg_count_series as s
    join stg_prices as p on p.ticker = s.price_ticker
),

valued as (
    select
        d.*,
        c.shares as shares_reported,
        c.as_of as shares_as_of,
        c.reported_date as shares_reported_date,
        d.price_split_factor / c.basis_split_factor as split_factor,
        round(c.shares * d.price_split_factor / c.basis_split_factor) as shares,
        round(c.shares * d.price_split_factor / c.basis_split_factor) * d.close * d.price_multiplier as value
    from series_days as d
    asof left join stg_shares_outstanding as c
        on d.count_ticker = c.ticker and d.share_class = c.share_class and d.date > c.known_date
),

class_counts as (
    select company, count(*) filter (where share_class <> 'all') as n_classes
    from stg_count_series group by company
),

per_company as (
    select
        v.company,
        v.date,
        min(v.price_ticker) filter (where v.is_listing) as ticker,
        count(v.value) filter (where v.share_class <> 'all') as classes_known,
        sum(v.value) filter (where v.share_class <> 'all') as classes_value,
        max(v.value) filter (where v.share_class = 'all') as total_value,
        string_agg(v.share_class, ',' order by v.share_class) filter (where v.share_class <> 'all' and v.value is null) as classes_missing,
        list(struct_pack(
            share_class := v.share_class, price_ticker := v.price_ticker, close := v.close,
            price_multiplier := v.price_multiplier, shares := v.shares::bigint, shares_reported := v.shares_reported,
            shares_as_of := v.shares_as_of, shares_reported_date := v.shares_reported_date,
            split_factor := v.split_factor, value := v.value
        ) order by v.share_class) as classes
    from valued as v
    group by v.company, v.date
),

final as (
    select
        p.company,
        p.date,
        p.ticker,
        case
            when n.n_classes > 0 and p.classes_known = n.n_classes then p.classes_value
            else p.total_value
        end as market_cap,
        case
            when n.n_classes > 0 and p.classes_known = n.n_classes then 'classes'
            when p.total_value is not null then 'total'
        end as method,
        case
            when (n.n_classes > 0 and p.classes_known = n.n_classes) or p.total_value is not null then 'ok'
            when n.n_classes > 0 then 'no count known for class ' || coalesce(p.classes_missing, '?')
            else 'no_share_count'
        end as cap_status,
        p.classes
    from per_company as p
    join class_counts as n on p.company = n.company
)

select * from final
