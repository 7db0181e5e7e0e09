-- Share counts traced to their filings, from several sources side by side (SEC EDGAR beside the
-- price source): each count keeps its accession (the filing's SEC id; '' where the source has
-- none), form and a link to the filing. A filing and its amendment for the same as-of date are two
-- rows, so the original stays the count known until the amendment was filed.
-- The key grows by `accession`: DuckDB cannot alter a primary key, so the table is rebuilt.

create table shares_outstanding_v9 (
    ticker        varchar not null,
    share_class   varchar not null,     -- 'all' = company figure; 'A', 'B', ... = one class
    as_of         date not null,        -- date the count is stated for
    shares        bigint not null,      -- as reported (on the basis of its filing, not split-adjusted)
    reported_date date,                 -- when it became public (SEC filing date); null if unknown
    source        varchar not null,     -- sec, yahoo, csv:DIR, ...
    loaded_at     timestamptz not null,
    run_id        varchar not null,
    accession     varchar not null default '',  -- SEC accession number, e.g. 0001045810-24-000316
    form          varchar,              -- 10-Q, 10-K, 10-K/A, 20-F, ...
    filing_url    varchar,              -- where the count is stated (filing index or cover page)
    primary key (ticker, share_class, as_of, source, accession)
);

insert into shares_outstanding_v9
select ticker, share_class, as_of, shares, reported_date, source, loaded_at, run_id, '', null, null
from shares_outstanding;

drop table shares_outstanding;

alter table shares_outstanding_v9 rename to shares_outstanding;
