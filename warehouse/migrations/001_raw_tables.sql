-- Raw tables: what the sources delivered, stored as traded (never rewritten by later splits).
-- Every row carries provenance: which source, when it was loaded, and by which run.

create table prices_daily (
    ticker      varchar not null,
    date        date not null,          -- exchange trading date (America/New_York)
    open        double,
    high        double,
    low         double,
    close       double not null,        -- USD per share, as traded that day
    volume      bigint,                 -- shares traded, as traded that day
    source      varchar not null,
    loaded_at   timestamptz not null,
    run_id      varchar not null,
    primary key (ticker, date)
);

create table splits (
    ticker      varchar not null,
    date        date not null,          -- ex-date: first trading day on the post-split basis
    ratio       double not null,        -- new shares per old share (10 = 10-for-1)
    source      varchar not null,
    loaded_at   timestamptz not null,
    run_id      varchar not null,
    primary key (ticker, date)
);

create table dividends (
    ticker      varchar not null,
    date        date not null,          -- ex-date
    dividend    double not null,        -- USD per share, as traded that day
    source      varchar not null,
    loaded_at   timestamptz not null,
    run_id      varchar not null,
    primary key (ticker, date)
);

create table shares_outstanding (
    ticker        varchar not null,
    share_class   varchar not null,     -- 'all' = company figure; 'A', 'B', ... = one class
    as_of         date not null,        -- date the count is stated for
    shares        bigint not null,      -- as reported (on the basis of its filing, not split-adjusted)
    reported_date date,                 -- when it became public (SEC filing date); null if unknown
    source        varchar not null,
    loaded_at     timestamptz not null,
    run_id        varchar not null,
    primary key (ticker, share_class, as_of, source)
);

-- Rows refused at the door or set aside by a model, with the reason. Nothing is silently dropped.
create table quarantine (
    ticker          varchar,
    date            date,
    dataset         varchar not null,   -- prices_daily, splits, shares_outstanding, ...
    reason          varchar not null,
    value           varchar,            -- the offending row or value, as text
    source          varchar,
    run_id          varchar not null,
    quarantined_at  timestamptz not null
);

-- One row per load transaction (a chunk of tickers over a date range).
create table load_runs (
    run_id          varchar not null,
    flow            varchar not null,
    source          varchar not null,
    tickers         varchar[] not null,
    start_date      date,
    end_date        date,
    rows_inserted   bigint not null,
    rows_updated    bigint not null,
    rows_unchanged  bigint not null,
    rows_quarantined bigint not null,
    problems        varchar[] not null,
    loaded_at       timestamptz not null
);
