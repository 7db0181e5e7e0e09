-- incremental: date, lookback 60 days
/* The vendor-error guard: listing-days whose price move is not a market move, held out of moves,
   rankings and alerts with a reason (listed in `quarantine`, source model:stg_price_checks).
   grain: one row per held (ticker, date). `move_ratio` = close / prev_close_on_basis.
   Rules, each judged on the ticker's own prices:
   - scale glitch: a jump by about a power of ten or a split-like factor (2, 3, 4, 5, 10, 20, 50,
     100, 1000, or the inverse; within 10 %) away from the price's level of the month before, that
     comes back -- a later jump within 21 calendar days (about 15 sessions) undoing it to within
     10 % -- holds every move from the jump to the return: the prices between were on another
     scale (pence vs pounds, a split applied on some days only);
   - unapplied split: on a split's ex-date the price fell by the split's ratio (within 10 %), so
     the source's history before it was not adjusted for the split;
   - level shift: a jump by a power of ten (within 5 %) that does not come back, on no split's
     ex-date: a unit or basis change. (A real crash that stays down, say -89 %, is none of these.) */
with big_moves as (
    -- the only days worth a look: the price moved 1.8x or more either way (a handful in millions)
    select ticker, date
    from stg_prices
    where date >= __since__ and prev_close_on_basis > 0 and close > 0
      and abs(ln(close / prev_close_on_basis)) > ln(1.8)
),

prices as (
    -- the prices of the tickers that had such a day
    select
        ticker,
        date,
        close,
        prev_close_on_basis,
        close * price_split_factor as level  -- the price in pre-split shares
    from stg_prices
    where date >= __since__ and prev_close_on_basis > 0 and close > 0
      and ticker in (select distinct ticker from big_moves)
),

factors as (
    select unnest([2, 3, 4, 5, 10, 20, 50, 100, 1000]) as factor
),

-- Only days that moved by a split-like factor go further: a handful among millions of rows.
candidate_jumps as (
    select p.*, p.close / p.prev_close_on_basis as move_ratio, ln(p.close / p.prev_close_on_basis) as log_move,
           f.factor
    from prices as p
    join factors as f on abs(abs(ln(p.close / p.prev_close_on_basis)) - ln(f.factor)) < ln(1.1)
),

-- How far each jump took the price from its median over the month before.
recent_levels as (
    select j.ticker, j.date, median(p.level) as recent_level
    from candidate_jumps as j
    join prices as p on p.ticker = j.ticker and p.date >= j.date - interval 30 days and p.date < j.date
    group by j.ticker, j.date
),

jumps as (
    select j.*, ln(j.level / r.recent_level) as log_off_recent
    from candidate_jumps as j
    left join recent_levels as r on r.ticker = j.ticker and r.date = j.date
),

-- A jump away from the recent level, undone by a later jump within 21 days: the first such return
-- closes the run. (A jump back to the recent level is the end of a run, never a start.)
returns as (
    select j.ticker, j.date as jump_date, j.move_ratio, min(r.date) as return_date
    from jumps as j
    join jumps as r
        on r.ticker = j.ticker and r.date > j.date and r.date <= j.date + interval 21 days
        and abs(j.log_move + r.log_move) < ln(1.1)
    where abs(j.log_off_recent - j.log_move) < ln(1.1)
    group by j.ticker, j.date, j.move_ratio
),

scale_glitches as (
    select
        p.ticker,
        p.date,
        'scale glitch: price jumped ' || printf('%.3gx', g.move_ratio) || ' on ' || g.jump_date
            || ' and came back on ' || g.return_date as reason
    from returns as g
    join prices as p on p.ticker = g.ticker and p.date between g.jump_date and g.return_date
),

unapplied_splits as (
    select
        m.ticker,
        m.date,
        printf('unapplied split: price fell %.3gx on the ex-date of a %g-for-1 split', 1 / m.move_ratio, s.ratio)
            || ' (the source''s history before it was not adjusted)' as reason
    from candidate_jumps as m
    join stg_corporate_actions as s on s.ticker = m.ticker and s.date = m.date and s.kind = 'split'
    where abs(m.log_move + ln(s.ratio)) < ln(1.1)
),

level_shifts as (
    select
        j.ticker,
        j.date,
        printf('level shift: price moved %.4gx in a day and stayed, on no split''s ex-date', j.move_ratio)
            || ' (a unit or basis change)' as reason
    from jumps as j
    where j.factor in (10, 100, 1000)
      and abs(abs(j.log_move) - ln(j.factor)) < ln(1.05)
      and not exists (select 1 from returns as g where g.ticker = j.ticker and g.jump_date = j.date)
      and not exists (select 1 from scale_glitches as g where g.ticker = j.ticker and g.date = j.date)
      and not exists (select 1 from stg_corporate_actions as s where s.ticker = j.ticker and s.date = j.date)
),

held as (
    select * from scale_glitches
    union all
    select * from unapplied_splits
    union all
    select * from level_shifts
),

final as (
    select
        h.ticker,
        h.date,
        string_agg(distinct h.reason, '; ' order by h.reason) as reason,
        any_value(p.close / p.prev_close_on_basis) as move_ratio
    from held as h
    join prices as p on p.ticker = h.ticker and p.date = h.date
    group by h.ticker, h.date
)

select * from final
