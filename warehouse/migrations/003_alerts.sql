-- Alerts: each (rule, company, trading day) is one event, whatever re-runs, retries or backfills do.
create table alert_events (
    rule            varchar not null,
    company         varchar not null,
    date            date not null,
    ticker          varchar not null,
    change_pct      double not null,
    change_usd      double not null,
    market_cap      double,
    rank_in_history integer,
    message         varchar not null,
    notify          boolean not null,      -- false: recorded by a backfill, not sent to anyone
    created_at      timestamptz not null,
    run_id          varchar not null,
    primary key (rule, company, date)
);

-- Every delivery attempt per channel. An event counts as delivered to a channel only when an
-- attempt there has status 'sent' (the endpoint accepted it).
create table alert_deliveries (
    rule            varchar not null,
    company         varchar not null,
    date            date not null,
    channel         varchar not null,      -- the channel URL with secrets removed
    attempt         integer not null,
    attempted_at    timestamptz not null,
    status          varchar not null,      -- sent | failed
    error           varchar,
    run_id          varchar not null
);
