/* Reference: how a share-count series values into a company (share classes and depositary receipts).
   grain: one row per count series, key (count_ticker, share_class).
   A series is the counts stored in shares_outstanding under (ticker = count_ticker, share_class).
   Its value on a day = count (on the price's split basis) x close of price_ticker x price_multiplier,
   where price_multiplier is how many price_ticker units one counted share is worth:
     - an unlisted class convertible 1:1 into a listed one is valued at that listing's price (1.0);
     - a depositary receipt: counts are ordinary shares, the price is per ADS, so 1 / (ordinary per ADS);
     - Berkshire class A = 1,500 class B (since the 2010-01-21 50-for-1 split of B).
   is_listing marks the class a ticker itself trades (used for the per-listing market_cap_daily).
   Classes a filing states that are not listed here are stored but not valued (Palantir's class F:
   founder voting shares without economic rights). Visa is not listed: its class B and C shares
   convert into class A at rates that change over time, which a static multiplier cannot express.
   Tickers not listed here are single-class: series (T, 'all') valued at T's own price. A multi-class
   company's 'all' series is its total, used on days when the class breakdown is incomplete. */
with classes as (
    select * from (values
        -- company,            count_ticker, share_class, price_ticker, price_multiplier, is_listing, note
        ('Alphabet',           'GOOGL', 'A',   'GOOGL', 1.0,       true,  'Class A, listed as GOOGL'),
        ('Alphabet',           'GOOGL', 'B',   'GOOGL', 1.0,       false, 'Class B, unlisted, converts 1:1 into A'),
        ('Alphabet',           'GOOGL', 'C',   'GOOG',  1.0,       true,  'Class C, listed as GOOG'),
        ('Alphabet',           'GOOGL', 'all', 'GOOGL', 1.0,       false, 'company total (A+B+C)'),
        ('Meta Platforms',     'META',  'A',   'META',  1.0,       true,  'Class A, listed as META'),
        ('Meta Platforms',     'META',  'B',   'META',  1.0,       false, 'Class B, unlisted, converts 1:1 into A'),
        ('Meta Platforms',     'META',  'all', 'META',  1.0,       false, 'company total (A+B)'),
        ('Berkshire Hathaway', 'BRK-B', 'A',   'BRK-B', 1500.0,    false, 'Class A = 1,500 class B'),
        ('Berkshire Hathaway', 'BRK-B', 'B',   'BRK-B', 1.0,       true,  'Class B, listed as BRK-B'),
        ('Mastercard',         'MA',    'A',   'MA',    1.0,       true,  'Class A, listed as MA'),
        ('Mastercard',         'MA',    'B',   'MA',    1.0,       false, 'Class B, unlisted, converts 1:1 into A'),
        ('Mastercard',         'MA',    'all', 'MA',    1.0,       false, 'company total (A+B)'),
        ('Palantir',           'PLTR',  'A',   'PLTR',  1.0,       true,  'Class A, listed as PLTR'),
        ('Palantir',           'PLTR',  'B',   'PLTR',  1.0,       false, 'Class B, unlisted, converts 1:1 into A'),
        ('Palantir',           'PLTR',  'all', 'PLTR',  1.0,       false, 'company total (A+B; class F carries votes, no economic interest)'),
        ('TSMC',               'TSM',   'all', 'TSM',   1.0 / 5.0, true,  'ADR: 1 ADS = 5 ordinary shares; counts are ordinary shares'),
        ('Arm Holdings',       'ARM',   'all', 'ARM',   1.0,       true,  'ADR: 1 ADS = 1 ordinary share')
    ) as t(company, count_ticker, share_class, price_ticker, price_multiplier, is_listing, note)
),

final as (
    select * from classes
)

select * from final
