-- audit: a single-class company's move is not its listing's price move
/* Returns the offending rows (zero rows = pass). For a company with one listing and one count
   series, the published market move must be exactly the price move of its listing (close against
   the previous close on today's split basis): anything else is a fault of the models. */
with single_listing as (
    select company, price_ticker
    from stg_count_series
    where company not in (select company from stg_count_series where share_class <> 'all')
),

final as (
    select
        m.company || ' ' || m.date as key,
        printf('move %+.4f%%, price move %+.4f%%', m.change_pct, 100 * (p.close / p.prev_close_on_basis - 1)) as detail
    from company_daily_moves as m
    join single_listing as s on s.company = m.company
    join stg_prices as p on p.ticker = s.price_ticker and p.date = m.date
    where m.date >= __since__
      and p.date >= __since__  -- implied by the join; said so the scan of stg_prices skips history
      and m.change_pct is not null
      and abs(m.change_pct - 100 * (p.close / p.prev_close_on_basis - 1)) > 1e-6
)

select * from final
