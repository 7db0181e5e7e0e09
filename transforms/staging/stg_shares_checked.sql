-- incremental: ticker
/* Every stored share count, checked before anything is multiplied by it.
   grain: one row per (ticker, share_class, as_of); quarantine_reason is null for a usable count.
   grain note: a filing and its amendment for one as-of date are two rows (two report dates).
   Rules (all point-in-time: a count is judged only against counts known before it):
   - several sources for one as-of date: the filed counts (with a report date) win over undated
     ones (Yahoo's series); for one report date, SEC's own filing before another source's copy;
     counts that disagree between sources are listed in share_count_conflicts, never averaged;
   - a count outside 1e4..1e12 shares is implausible for any listing (a value filed in millions, or
     with extra zeros);
   - the count, put on today's split basis, is compared with the median of the previous four
     plausible counts on that basis; more than 1.5x off either way is more than a split explains;
   - a count filed after a split for an as-of date before it may already be on the post-split basis
     (NFLX 2015-06-30): whichever basis (as-of or report date) agrees with the recent counts is used.
   Counts stored under a listing whose company is counted under another ticker (SEC states Alphabet's
   counts for GOOG as for GOOGL; ref_share_classes counts Alphabet under GOOGL) are neither judged
   nor used. */
with counts as (
    select
        ticker,
        share_class,
        as_of,
        shares,
        reported_date,
        source,
        accession,
        form,
        filing_url,
        coalesce(reported_date, as_of) as known_date,
        bool_or(reported_date is not null) over (partition by ticker, share_class, as_of) as as_of_filed
    from shares_outstanding
    where ticker in (select ticker from _changed_tickers)  -- all on a full build
      and ticker not in (
        select price_ticker from ref_share_classes
        where price_ticker not in (select count_ticker from ref_share_classes)
    )
),

one_per_as_of as (
    select * exclude (as_of_filed) from counts
    where reported_date is not null or not as_of_filed
    qualify row_number() over (
        partition by ticker, share_class, as_of, reported_date
        order by source not like 'sec%', source, accession
    ) = 1
),

latest_split as (
    select ticker, max_by(cum_factor, date) as cum_factor from stg_split_index group by ticker
),

with_bases as (
    select
        c.*,
        coalesce(sa.cum_factor, 1.0) as as_of_factor,
        coalesce(sk.cum_factor, 1.0) as known_factor,
        coalesce(sl.cum_factor, 1.0) as latest_factor
    from one_per_as_of as c
    asof left join stg_split_index as sa on c.ticker = sa.ticker and c.as_of >= sa.date
    asof left join stg_split_index as sk on c.ticker = sk.ticker and c.known_date >= sk.date
    left join latest_split as sl on c.ticker = sl.ticker
),

normalized as (
    select
        *,
        shares between 1e4 and 1e12 as plausible,
        shares * latest_factor / as_of_factor as latest_basis_if_as_of,
        shares * latest_factor / known_factor as latest_basis_if_known
    from with_bases
),

with_recent as (
    select
        *,
        median(latest_basis_if_as_of) filter (where plausible) over (
            partition by ticker, share_class order by known_date, as_of
            rows between 4 preceding and 1 preceding
        ) as recent_median
    from normalized
),

judged as (
    select
        *,
        known_factor <> as_of_factor and recent_median is not null
        and abs(ln(latest_basis_if_known / recent_median)) < abs(ln(latest_basis_if_as_of / recent_median))
            as early_post_split
    from with_recent
),

chosen as (
    select
        *,
        case when early_post_split then known_factor else as_of_factor end as basis_split_factor,
        case when early_post_split then latest_basis_if_known else latest_basis_if_as_of end as latest_basis_shares
    from judged
),

final as (
    select
        ticker,
        share_class,
        as_of,
        known_date,
        reported_date,
        shares,
        source,
        accession,
        form,
        filing_url,
        basis_split_factor,         -- cumulative split factor of the basis the count is stated on
        early_post_split,
        latest_basis_shares,
        recent_median,
        case
            when not plausible
                then printf('count %d is outside any plausible range (1e4..1e12 shares)', shares)
            when recent_median is not null
                and (latest_basis_shares > 1.5 * recent_median or latest_basis_shares < recent_median / 1.5)
                then printf('count %d is %.4gx the median of the previous counts on the same split basis: more than a split explains',
                            shares, latest_basis_shares / recent_median)
        end as quarantine_reason
    from chosen
)

select * from final
