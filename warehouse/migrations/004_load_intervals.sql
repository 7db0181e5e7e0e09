-- What has been loaded: per ticker, the date ranges a backfill chunk completed. A later backfill
-- fetches only what these do not cover; a killed backfill resumes where it stopped.
create table load_intervals (
    ticker      varchar not null,
    start_date  date not null,
    end_date    date not null,
    run_id      varchar not null,
    loaded_at   timestamptz not null
);
