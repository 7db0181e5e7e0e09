/* Share counts per listing as they became known: the point-in-time series market caps use.
   grain: one row per (ticker, share_class, known_date).
   known_date = the report (filing) date where the source gives one, else the as-of date; a count is
   used from the first trading day after it. A count reported late for an as-of date older than one
   already known never replaces the newer count, so history does not change because of a later filing. */
with counts as (
    select
        ticker,
        share_class,
        as_of,
        shares,
        reported_date,
        source,
        coalesce(reported_date, as_of) as known_date
    from shares_outstanding
),

-- One count per as-of date: a filed count (with a report date) beats an undated one; then the first filed.
one_per_as_of as (
    select * from counts
    qualify row_number() over (
        partition by ticker, share_class, as_of
        order by reported_date is null, reported_date, source
    ) = 1
),

newest_known as (
    select
        *,
        max(as_of) over (
            partition by ticker, share_class order by known_date, as_of
            rows between unbounded preceding and 1 preceding
        ) as newest_as_of_before
    from one_per_as_of
),

usable as (
    select * from newest_known
    where newest_as_of_before is null or as_of > newest_as_of_before
    -- several counts known on the same day: the newest as-of wins
    qualify row_number() over (partition by ticker, share_class, known_date order by as_of desc) = 1
),

-- The split basis the count is stated on: splits with ex-date on or before its as-of date.
with_basis as (
    select
        u.*,
        coalesce(s.cum_factor, 1.0) as as_of_split_factor
    from usable as u
    asof left join stg_split_index as s
        on u.ticker = s.ticker and u.as_of >= s.date
),

final as (
    select
        ticker,
        share_class,
        as_of,
        known_date,
        reported_date,
        shares,
        as_of_split_factor,
        source
    from with_basis
)

select * from final
