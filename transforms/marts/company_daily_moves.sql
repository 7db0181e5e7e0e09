-- incremental: date, lookback 31 days
/* Day-over-day change in company market capitalisation (all share classes), split into the market
   move and the change a new share count made. Feeds largest_losses and alerts.
   grain: one row per (company, date) where that day and the company's previous trading day both
   have a market cap. Percent columns are in percent.
   - change_usd / change_pct: the market move, valued at today's share counts (classes and ADR
     ratios as today): market_cap - market_cap_at_prev_close. Null when the day is held.
   - cap_change_usd: market_cap - prev_market_cap, the whole difference between the published caps;
   - count_change_usd: cap_change_usd - change_usd, what newly known share counts added
     (shares_changed marks it);
   - prev_size_rank: the company's rank by market cap among every company with a cap on prev_date
     (1 = the largest; 1 + the caps above it, ties alike): what top-N alert rules rank by;
   - held_reason: why the day is not a market move: a vendor price error on one of the company's
     listings (stg_price_checks), or a share count that changed by more than 60 % in a day (a count
     or split error more likely than a real change; the step still shows in count_change_usd). */
with caps as (
    select
        company,
        ticker,
        date,
        market_cap,
        market_cap_at_prev_close,
        -- every company of a day is read (the lookback reads whole days), so this is the rank
        -- among the whole universe as stored that day
        case when market_cap is not null
            then rank() over (partition by date order by market_cap desc nulls last) end as size_rank
    from company_market_cap_daily
    where date >= __since__
),

with_previous as (
    select
        *,
        lag(date) over by_company as prev_date,
        lag(market_cap) over by_company as prev_market_cap,
        lag(size_rank) over by_company as prev_size_rank
    from caps
    window by_company as (partition by company order by date)
),

listing_holds as (
    select s.company, c.date, string_agg(c.ticker || ': ' || c.reason, '; ' order by c.ticker) as reason
    from stg_price_checks as c
    join (select distinct company, price_ticker from stg_count_series) as s on s.price_ticker = c.ticker
    where c.date >= __since__
    group by s.company, c.date
),

judged as (
    select
        m.*,
        coalesce(
            h.reason,
            case
                when abs(ln(m.market_cap_at_prev_close / m.prev_market_cap)) > ln(1.6)
                    then printf('share count changed %+.1f%% in a day: a count or split error, not a market move',
                                100 * (m.market_cap_at_prev_close / m.prev_market_cap - 1))
            end
        ) as held_reason
    from with_previous as m
    left join listing_holds as h on h.company = m.company and h.date = m.date
    where m.market_cap is not null and m.prev_market_cap is not null
),

final as (
    select
        company,
        ticker,
        date,
        prev_date,
        market_cap,
        prev_market_cap,
        case when held_reason is null then market_cap - market_cap_at_prev_close end as change_usd,
        case when held_reason is null
            then 100 * (market_cap - market_cap_at_prev_close) / market_cap_at_prev_close end as change_pct,
        market_cap - prev_market_cap as cap_change_usd,
        market_cap_at_prev_close - prev_market_cap as count_change_usd,
        abs(market_cap_at_prev_close - prev_market_cap) > 1e-9 * prev_market_cap as shares_changed,
        prev_size_rank,
        held_reason
    from judged
)

select * from final
