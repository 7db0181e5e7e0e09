-- Each model's SQL fingerprint at its last build: a model whose SQL changed is rebuilt in full
-- (with everything downstream), so no history stays computed by the old SQL.
create table model_fingerprints (
    model       varchar primary key,
    fingerprint varchar not null,     -- sha256 of the model's SQL, first 16 hex digits
    built_at    timestamptz not null
);
