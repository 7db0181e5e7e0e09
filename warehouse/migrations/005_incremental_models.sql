-- Incremental models: each load records the earliest date it changed; each model build records
-- itself, so the next build recomputes only from the earliest change loaded since the last one.
alter table load_runs add column earliest_change date;

create table model_builds (
    run_id      varchar not null,
    since       date,                 -- null: a full rebuild
    built_at    timestamptz not null
);
