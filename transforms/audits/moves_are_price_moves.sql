-- audit: a single-class company's move is not its listing's price move
/* Returns the offending rows (zero rows = pass). For a company with one listing and one count
   series, the published market move must be exactly the price move of its listing (close against
   the previous close on today's split basis): anything else is a fault of the models. */
with single_listing as (
    select company, price_ticker
    from stg_count_series
    where company not in (select company from stg_count_series where share_class <> 'all')
),

recent_moves as (
    select m.company, m.date, m.change_pct, s.price_ticker
    from company_daily_moves as m
    join single_listing as s on s.company = m.company
    where m.date >= __since__ and m.change_pct is not null
),

final as (
    select
        m.company || ' ' || m.date as key,
        printf('move %+.4f%%, price move %+.4f%%', m.change_pct, 100 * (p.close / p.prev_close_on_basis - 1)) as detail
    from recent_moves as m
    -- one join on (ticker, date): joined on the date alone first, an incremental build's
    -- uncommitted rows led DuckDB to pair every listing with every other (54M rows at 1,500)
    join stg_prices as p on p.ticker = m.price_ticker and p.date = m.date
    where p.date >= __since__  -- implied by the join; said so the scan of stg_prices skips history
      and abs(m.change_pct - 100 * (p.close / p.prev_close_on_basis - 1)) > 1e-6
)

select * from final
