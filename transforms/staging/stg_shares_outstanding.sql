-- incremental: ticker
/* Share counts per series as they became known: the point-in-time series market caps use.
   grain: one row per (ticker, share_class, known_date), usable counts only (stg_shares_checked).
   known_date = the report (filing) date where the source gives one, else the as-of date; a count is
   used from the first trading day after it. A count reported late for an as-of date older than one
   already known never replaces the newer count, so history does not change because of a later filing.
   An amendment restating the newest as-of date replaces that count from the amendment's filing date;
   before it, the original filing's count stays the one that was known. */
with usable as (
    select * from stg_shares_checked
    where quarantine_reason is null
      and ticker in (select ticker from _changed_tickers)  -- all on a full build
),

newest_known as (
    select
        *,
        max(as_of) over (
            partition by ticker, share_class order by known_date, as_of
            rows between unbounded preceding and 1 preceding
        ) as newest_as_of_before
    from usable
),

final as (
    select
        ticker,
        share_class,
        as_of,
        known_date,
        reported_date,
        shares,
        basis_split_factor,
        early_post_split,
        source,
        accession,
        form,
        filing_url
    from newest_known
    where newest_as_of_before is null or as_of >= newest_as_of_before
    -- several counts known on the same day: the newest as-of wins
    qualify row_number() over (
        partition by ticker, share_class, known_date order by as_of desc, reported_date desc nulls last, source
    ) = 1
)

select * from final
