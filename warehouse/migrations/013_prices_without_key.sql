-- file only: a lake has no primary keys to drop (capwatch/lake.py).
-- prices_daily keeps one row per (ticker, date) without a primary-key index. The index was the one
-- cost of a daily run that grew with history: DuckDB loads it whole on the first insert of each
-- open of the file (~0.65 s at 40M rows, ~0.15 s at 9M) and writes it back at each checkpoint.
-- The key stays kept where a lake already keeps it: the loader inserts only keys not stored yet and
-- updates the others in place (capwatch/load.py), one writer holds the file at a time, a batch is
-- de-duplicated before it loads, and `capwatch check` reports any duplicated key.
-- DuckDB cannot drop a primary key, so the table is rebuilt in its stored order.

create table prices_daily_v13 (
    ticker      varchar not null,
    date        date not null,          -- exchange trading date (America/New_York)
    open        double,
    high        double,
    low         double,
    close       double not null,        -- USD per share, as traded that day
    volume      bigint,                 -- shares traded, as traded that day
    source      varchar not null,
    loaded_at   timestamptz not null,
    run_id      varchar not null
);

insert into prices_daily_v13 select * from prices_daily;

drop table prices_daily;

alter table prices_daily_v13 rename to prices_daily;
