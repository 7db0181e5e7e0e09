-- The universe, point in time: which tickers capwatch tracks, since when, and why one left.
-- A ticker's membership is one row per stretch it was in: it leaves (left_on, left_reason) but is
-- never deleted, so delisted companies stay in the backfill universe, in history and in rankings
-- (a crash history without the companies that crashed out of existence is survivorship-biased).
-- Empty table: the universe is capwatch/universe.toml (or CAPWATCH_TICKERS).
create table universe_members (
    ticker       varchar not null,
    first_seen   date not null,         -- the day it entered (first sync or add that named it)
    last_seen    date not null,         -- the last sync that still listed it
    left_on      date,                  -- null while it is a member
    left_reason  varchar,               -- why it left: not in SEC's file any more, renamed to X, removed by hand
    cik          bigint,
    name         varchar,
    exchange     varchar,
    added_by     varchar not null,      -- 'sec sync' or 'manual'
    primary key (ticker, first_seen)
);
