-- One row per Great Expectations suite run: the raw gate per batch, the model gate per model build.
create table validation_runs (
    run_id          varchar not null,
    suite           varchar not null,     -- raw_prices_daily, raw_shares_outstanding, model_market_cap_daily, ...
    passed          boolean not null,
    rows_checked    bigint not null,
    rows_failed     bigint not null,
    expectations    integer not null,
    failed          varchar[] not null,   -- the failed expectations, as plain reasons
    validated_at    timestamptz not null
);
