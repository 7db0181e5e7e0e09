-- audit: company market cap moved > 60 % in a day while its price did not
/* Returns the offending rows (zero rows = pass). A cap moving > 60 % while the traded price moved
   less than half as much points at a wrong share count or split: a real split moves the traded
   price, and not the cap. */
select
    m.company || ' ' || m.date as key,
    printf('cap %+.1f%%, traded price %+.1f%%', m.change_pct, 100 * (p.close / q.close - 1)) as detail
from company_daily_moves as m
join prices_daily as p on p.ticker = m.ticker and p.date = m.date
join prices_daily as q on q.ticker = m.ticker and q.date = m.prev_date
where m.date >= __since__
  and abs(m.change_pct) > 60
  and abs(100 * (p.close / q.close - 1)) < abs(m.change_pct) / 2
