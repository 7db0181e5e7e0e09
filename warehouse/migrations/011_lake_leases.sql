-- Leases of a DuckLake warehouse (capwatch/lake.py): which writer holds which tickers (or the
-- models, or the alerts) right now. A lake has no locks; a one-file warehouse never uses this.
create table lake_leases (
    name        varchar not null,       -- a ticker, 'models' or 'alerts'
    owner       varchar not null,       -- host:pid:nonce of the writer
    taken_at    timestamptz not null,
    expires_at  timestamptz not null
);
