/* Reference: which group (sector) each company belongs to, for group_daily_moves and group alert
   rules. Edit freely; a company may sit in one group. Companies not listed are in no group.
   grain: one row per company (the name company_daily_moves uses: the ticker for single-class
   companies, the company name for multi-class ones and ADRs, see ref_share_classes). */
with groups as (
    select * from (values
        -- company,              group_name
        ('NVDA',               'Semiconductors'),
        ('AVGO',               'Semiconductors'),
        ('AMD',                'Semiconductors'),
        ('MU',                 'Semiconductors'),
        ('MRVL',               'Semiconductors'),
        ('INTC',               'Semiconductors'),
        ('QCOM',               'Semiconductors'),
        ('TXN',                'Semiconductors'),
        ('TSMC',               'Semiconductors'),
        ('Arm Holdings',       'Semiconductors'),
        ('MSFT',               'Software'),
        ('ORCL',               'Software'),
        ('CRM',                'Software'),
        ('ADBE',               'Software'),
        ('PLTR',               'Software'),
        ('Alphabet',           'Internet and media'),
        ('Meta Platforms',     'Internet and media'),
        ('AMZN',               'Internet and media'),
        ('NFLX',               'Internet and media'),
        ('AAPL',               'Hardware and networking'),
        ('CSCO',               'Hardware and networking'),
        ('IBM',                'Hardware and networking'),
        ('VRT',                'Energy and power'),
        ('CEG',                'Energy and power'),
        ('XOM',                'Energy and power'),
        ('TSLA',               'Consumer'),
        ('WMT',                'Consumer'),
        ('COST',               'Consumer'),
        ('Berkshire Hathaway', 'Financials'),
        ('JPM',                'Financials'),
        ('V',                  'Financials'),
        ('Mastercard',         'Financials'),
        ('LLY',                'Health care'),
        ('UNH',                'Health care'),
        ('JNJ',                'Health care')
    ) as t(company, group_name)
),

final as (
    select * from groups
)

select * from final
