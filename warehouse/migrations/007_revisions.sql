-- Corrections keep what they replace: every stored raw row that a later load changes is copied here
-- first (old_row, provenance included), so any stored day can be restored and "what did we know at
-- time T" answered (prices_known_at below).
create table revisions (
    table_name  varchar not null,       -- prices_daily, splits, dividends, shares_outstanding
    ticker      varchar not null,
    date        date not null,          -- the row's date (as_of for share counts)
    old_row     varchar not null,       -- the replaced row as JSON, provenance included
    new_row     varchar not null,       -- the values written over it, as JSON
    run_id      varchar not null,       -- the load run that replaced it
    revised_at  timestamptz not null
);

-- prices_daily as it was known at a moment: each row's version loaded by then and not yet replaced.
--   select * from prices_known_at(TIMESTAMPTZ '2026-01-05 00:00:00+00') where ticker = 'NVDA';
create macro prices_known_at(ts) as table
    with versions as (
        select ticker, date, open, high, low, close, volume, source, loaded_at, null::timestamptz as replaced_at
        from prices_daily
        union all
        select
            ticker,
            date,
            json_extract(old_row, '$.open')::double,
            json_extract(old_row, '$.high')::double,
            json_extract(old_row, '$.low')::double,
            json_extract(old_row, '$.close')::double,
            json_extract(old_row, '$.volume')::bigint,
            json_extract_string(old_row, '$.source'),
            json_extract_string(old_row, '$.loaded_at')::timestamptz,
            revised_at
        from revisions
        where table_name = 'prices_daily'
    )
    select ticker, date, open, high, low, close, volume, source, loaded_at
    from versions
    where loaded_at <= ts and (replaced_at is null or replaced_at > ts);
