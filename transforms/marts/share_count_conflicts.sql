-- incremental: ticker
/* Share counts that two sources state differently for the same series and as-of date.
   grain: one row per (ticker, share_class, as_of) stated by more than one source with counts more
   than 0.5 % apart. capwatch never averages them: the share model uses one (stg_shares_checked:
   a filed count before an undated one, SEC's filing before another source's copy), named in
   used_source; `counts` lists what each source said (its newest filing for that date). */
with several as (  -- only dates stated by more than one source (usually none): cheap to find
    select ticker, share_class, as_of
    from shares_outstanding
    where ticker in (select ticker from _changed_tickers)  -- all on a full build
    group by ticker, share_class, as_of
    having count(distinct source) > 1
),

per_source as (
    select
        ticker,
        share_class,
        as_of,
        source,
        max_by(shares, coalesce(reported_date, as_of)) as shares,
        max(reported_date) as reported_date,
        max_by(nullif(accession, ''), coalesce(reported_date, as_of)) as accession
    from shares_outstanding
    semi join several using (ticker, share_class, as_of)
    group by ticker, share_class, as_of, source
),

compared as (
    select
        ticker,
        share_class,
        as_of,
        count(*) as sources,
        max(shares) / min(shares) as max_ratio,
        list(struct_pack(source := source, shares := shares, reported_date := reported_date, accession := accession)
             order by source) as counts
    from per_source
    group by ticker, share_class, as_of
    having count(*) > 1 and max(shares) > 1.005 * min(shares)
),

used as (
    select ticker, share_class, as_of, max_by(source, reported_date) as used_source
    from stg_shares_checked
    group by ticker, share_class, as_of
),

final as (
    select c.ticker, c.share_class, c.as_of, c.sources, c.max_ratio, u.used_source, c.counts
    from compared as c
    left join used as u using (ticker, share_class, as_of)
)

select * from final
